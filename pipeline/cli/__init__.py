"""The `imgpipe` command: everyday commands against the local stack or a deployed one.

`main` imports the commands only when called, so `pipeline.cli.ops` (which the reliability
suite uses) does not pull in every command's imports.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.cli.commands import main as run

    return run(argv)
