"""A progress bar on stderr: redrawn in place on a terminal, one line per step elsewhere."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


class ProgressBar:
    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label, self.done = total, label, 0
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()

    def __call__(self, item: str) -> None:
        self.done += 1
        filled = WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (WIDTH - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total} {item}"
        if self._tty:
            self._stream.write("\r\033[K" + line[:120])
            if self.done >= self.total:
                self._stream.write("\n")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
