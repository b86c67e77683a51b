"""The project's own `.build/local` belongs to the developer's stacks: a test run must not
add, change or remove anything there (tests get $IMGPIPE_STATE_DIR, a temporary folder).

A stack the developer runs meanwhile writes there too; its state file names its run
folder, so its files are not counted against the tests."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from pipeline.local.instance import Process

Snapshot = dict[str, tuple[int, int]]
SAVED_STATE = "state"  # where a stack keeps what it restores: LocalStack.saved_state_dir


def snapshot(root: Path) -> Snapshot:
    """Every file and folder under `root`: path -> (mtime ns, size); a folder's time moves
    with its entries, which count themselves, so folders count by their existence only."""
    if not root.exists():
        return {}
    found = {}
    for path in root.rglob("*"):
        try:
            status = path.lstat()
        except FileNotFoundError:  # removed while walking
            continue
        folder = stat.S_ISDIR(status.st_mode)
        found[str(path.relative_to(root))] = (
            (0, 0) if folder else (status.st_mtime_ns, status.st_size)
        )
    return found


def changes(before: Snapshot, after: Snapshot, root: Path) -> list[str]:
    """What was added, changed or removed, less what live stacks outside the tests own."""
    touched = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    mine = _owned_by_live_stacks(root)
    return sorted(p for p in touched if not any(p == o or p.startswith(o + "/") for o in mine))


def _owned_by_live_stacks(root: Path) -> set[str]:
    owned = set()
    for state in root.glob("*.json") if root.exists() else ():
        try:
            data = json.loads(state.read_text())
            if not Process(int(data["pid"]), data.get("pid_started")).alive():
                continue
            # its snapshots too: `imgpipe local` saves state/ every 2 s while it changes
            owned |= {state.name, state.with_suffix(".lock").name, "runs/latest", SAVED_STATE}
            owned.add(str(Path(data["log_dir"]).relative_to(root.absolute())))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return owned
