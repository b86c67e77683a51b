"""What the budget tests run in a kept child or a fresh interpreter: allocations that
report what they reached, and the budgets to run them under. Module functions, so a kept
child (forked from the test run) and a fresh `python -c` both find them by name."""

from __future__ import annotations

import contextlib
import time
from typing import NoReturn

from lambda_pkg import budget
from lambda_pkg.budget import Budget, Worker

MIB = 1024 * 1024


def allocate_until_refused() -> NoReturn:
    """Touch memory 16 MB at a time until an allocation fails."""
    held = []
    while True:
        held.append(b"x" * (16 * MIB))


def allocate_then_report() -> tuple[int, int]:
    """Resident MB when called and at the peak, having allocated until refused."""
    started = status_mb("VmRSS")
    with contextlib.suppress(MemoryError):
        allocate_until_refused()
    return started, status_mb("VmHWM")


def touch_report(child_mb: int) -> tuple[int, int, int, int]:
    """Run in a fresh interpreter: this process's MB, the function's memory leaving the
    child `child_mb`, and the child's resident MB before and at its peak."""
    worker = Worker()
    memory_mb = leaving(child_mb)
    worker.start(memory_mb)
    started_mb, peak_mb = worker.call(soon(30, memory_mb), allocate_then_report)
    worker.stop()
    return rss_mb(), memory_mb, started_mb, peak_mb


def soon(seconds: float, memory_mb: int | None = None) -> Budget:
    return Budget(time.monotonic() + seconds, memory_mb)


def leaving(child_mb: int) -> int:
    """A function memory size that leaves `child_mb` to a child, given this process's size
    now (the test run's own grows as it goes)."""
    return rss_mb() + budget.MEMORY_RESERVE_MB + child_mb


def rss_mb() -> int:
    return status_mb("VmRSS")


def status_mb(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(f"{field}:"))
    return int(line.split()[1]) // 1024
