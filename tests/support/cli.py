"""`imgpipe` as the end-to-end tests run it: the repo's own code, in a process of its own."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO

IMGPIPE = [sys.executable, "-m", "pipeline"]
STARTED = "Ctrl-C stops."  # the last line `imgpipe local` prints once it serves


def imgpipe(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*IMGPIPE, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
