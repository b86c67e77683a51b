"""A local stack in a process of its own, as `imgpipe local` runs one, its saved state and
logs under a directory the test owns: for tests that stop it (SIGTERM) or kill it (SIGKILL).

    python -m tests.support.stack_process DIR [--fresh] [--fault-raise KEY]

Prints one JSON line (endpoint, pid) once it is up; the state goes to DIR/state.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pipeline.local.runner import LocalStack
from tests.support.local_stack import FAST_RETRIES


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--fault-raise", default="")
    parser.add_argument("--profile", default="thumbnail")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    faults = {"IMGPIPE_FAULT_RAISE": args.fault_raise} if args.fault_raise else {}
    stack = LocalStack(
        args.profile,
        workers=2,
        retry_delays_s=FAST_RETRIES,
        fault_environment=faults,
        write_state=False,
        state_dir=args.directory / "state",
        fresh=args.fresh,
    )
    stack.log_dir = args.directory / "logs"  # never the project's .build/

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with stack:
        print(json.dumps({"endpoint": stack.endpoint}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
