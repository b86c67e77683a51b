"""The memory of a function process and the processes it forked, counted as Lambda does.

Lambda's memory size is a limit on the whole execution environment, the handler's process
and any it forks together, each page counted once; past it the kernel kills a process
(the biggest) and Lambda reports `Runtime exited with error: signal: killed`. Here that is
the proportional set size (Pss, /proc/<pid>/smaps_rollup) summed over the process tree: a
page two processes share (a forked child's copy-on-write pages) counts half in each.
Resident set sizes would count it twice; RLIMIT_AS limits one process's address space,
which Python with boto3 and Pillow maps at 2-50x what it touches (137 MB mapped for 3 MB
resident, measured in a forked render), and it makes an allocation fail instead of a kill.
Pss costs a walk of the page tables (38 ms for a 1 GB process here); the resident sizes in
/proc/<pid>/status cost nothing and their sum is never below it: `tree_kb` reads them, and
`tree_pss_kb` only when their sum is past the limit.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

PROC = Path("/proc")


def tree_kb(pid: int) -> dict[int, int]:
    """Resident kB (VmRSS) of `pid` and every process under it: what they share counted in
    each (those that vanish while read are left out)."""
    return _tree(pid, "status", "VmRSS")


def tree_pss_kb(pid: int) -> dict[int, int]:
    """Proportional kB (Pss) of `pid` and every process under it: what they share counted
    once between them."""
    return _tree(pid, "smaps_rollup", "Pss")


def _tree(pid: int, name: str, field: str) -> dict[int, int]:
    usage: dict[int, int] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        size = _field_kb(current, name, field)
        if size is None:
            continue
        usage[current] = size
        pending.extend(_children(current))
    return usage


def peak_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM), which the kernel keeps between our looks."""
    return _field_kb(pid, "status", "VmHWM") or 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError):
                found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _field_kb(pid: int, name: str, field: str) -> int | None:
    try:
        text = (PROC / str(pid) / name).read_text()
    except OSError:  # exited (or never existed)
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None
