"""One local stack per state folder: which process serves it, whether it still does, and
the lock that keeps a second `imgpipe local` out.

The lock (`flock` on `<state dir>/<stack>.lock`) is what `imgpipe local` relies on: the
kernel drops it when the process ends, even on SIGKILL, so a crash never blocks the next
start. Commands that only read the state file check its process instead: the PID and when
the kernel started it, so a PID that another program got since does not pass for the stack.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

# /proc/<pid>/stat after the command name's closing parenthesis: state is the first field,
# the start time (clock ticks after boot) the twentieth (proc(5): fields 3 and 22).
_STATE_FIELD = 0
_START_FIELD = 19


class AlreadyRunning(RuntimeError):
    """Another process serves this stack from the same state folder."""


class UnusableFolder(RuntimeError):
    """The state folder cannot be made or written (a read-only file system, say)."""


@dataclass(frozen=True)
class Process:
    pid: int
    started: int | None = None  # clock ticks after boot; None where /proc cannot tell

    @classmethod
    def current(cls) -> Process:
        return cls(os.getpid(), _stat(os.getpid())[1])

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        state, started = _stat(self.pid)
        if state == "Z":  # killed, not yet reaped by its parent: it serves nothing
            return False
        return self.started is None or started is None or started == self.started


def _stat(pid: int) -> tuple[str | None, int | None]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None, None
    return fields[_STATE_FIELD], int(fields[_START_FIELD])


class InstanceLock:
    """Held by the process that serves a stack; the file keeps that process's PID."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """True if this process holds the lock now; False if another process does;
        UnusableFolder if the folder cannot hold a lock."""
        if self._fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UnusableFolder(
                f"cannot use {self.path.parent} as the state folder ({exc.strerror}): "
                "pick one this user can write with --state-dir"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The PID the lock file names (the holder's, while it is held)."""
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        # The file stays: removing it would let a process that opened it a moment ago lock
        # an unlinked file while a third one locks a new file of the same name.
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
