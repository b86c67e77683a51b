"""The `imgpipe` command: everyday commands against the local stack or a deployed one.

`main` imports the commands only when called, so `pipeline.cli.ops` (which the reliability
suite uses) does not pull in every command's imports.

Ctrl-C ends any command with one line and exit status 130 (128 + SIGINT, as shells report
it), wherever it lands, imports included. `imgpipe local` is the exception: Ctrl-C is how it
is meant to stop, so once serving it shuts down and exits 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from pipeline.cli.commands import main as run

        return run(argv)
    except KeyboardInterrupt:
        print("\nimgpipe: interrupted", file=sys.stderr)
        return INTERRUPTED
