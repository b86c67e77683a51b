"""A command in a terminal of its own (a pseudo-terminal), as a person runs it: its output
as the screen shows it, keys typed into it (Ctrl-C is the terminal's SIGINT to the whole
foreground process group, not a signal sent to one process), and how it ended."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import time
from collections.abc import Sequence
from pathlib import Path

CTRL_C = b"\x03"


class Terminal:
    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.pid, self._fd = pty.fork()
        if self.pid == 0:  # the child: its own session, the terminal its controlling one
            os.chdir(cwd)
            os.execvpe(argv[0], list(argv), env or dict(os.environ))
        self._screen = bytearray()
        self.status: int | None = None

    @property
    def screen(self) -> str:
        return self._screen.decode(errors="replace").replace("\r\n", "\n")

    def wait_for(self, text: str, timeout_s: float) -> str:
        """Read until `text` shows; AssertionError (with the screen) if it does not."""
        deadline = time.monotonic() + timeout_s
        while text not in self.screen:
            if time.monotonic() > deadline or self._read(deadline - time.monotonic()) < 0:
                raise AssertionError(f"{text!r} not on screen within {timeout_s} s:\n{self.screen}")
        return self.screen

    def type(self, keys: bytes) -> None:
        os.write(self._fd, keys)

    def ctrl_c_after(self, text: str, timeout_s: float = 180) -> int:
        """Press Ctrl-C once `text` shows; the exit status. Killed if anything fails."""
        try:
            self.wait_for(text, timeout_s)
            self.type(CTRL_C)
            return self.wait_exit(60)
        finally:
            self.kill()

    def wait_exit(self, timeout_s: float) -> int:
        """The exit status (128 + N for a signal N, as a shell shows it), reading the screen
        to the end; killed and AssertionError if it does not end in time."""
        deadline = time.monotonic() + timeout_s
        while self.status is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.status = os.waitstatus_to_exitcode(status)
                self.status = 128 - self.status if self.status < 0 else self.status
                break
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"still running after {timeout_s} s:\n{self.screen}")
            self._read(0.1)
        while self._read(0.2) > 0:
            pass
        os.close(self._fd)
        return self.status

    def hang_up(self, timeout_s: float) -> int:
        """Close the terminal, as closing its window does (the kernel sends SIGHUP); the
        exit status. Nothing is read after: the screen is gone."""
        os.close(self._fd)
        deadline = time.monotonic() + timeout_s
        while self.status is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                self.status = 128 - code if code < 0 else code
            elif time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"still running {timeout_s} s after the hang-up")
            else:
                time.sleep(0.1)
        return self.status

    def kill(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)

    def _read(self, timeout_s: float) -> int:
        """Bytes read within `timeout_s` (0: nothing new yet), -1 at the end of output."""
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout_s))
        if not ready:
            return 0
        try:
            chunk = os.read(self._fd, 65536)
        except OSError:  # EIO: every process writing to the terminal has gone
            return -1
        self._screen += chunk
        return len(chunk) or -1
