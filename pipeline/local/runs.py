"""Each run of a local stack logs into a folder of its own, `<state dir>/runs/<UTC time>/`,
with `runs/latest` pointing at the newest: one run's lines never mix with another's."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from pathlib import Path

LATEST = "latest"


def new_run_dir(runs: Path, now: datetime | None = None) -> Path:
    """A new, empty folder named for `now` (a suffix when two runs start in one second)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    runs.mkdir(parents=True, exist_ok=True)
    for number in itertools.count():
        folder = runs / (stamp if number == 0 else f"{stamp}-{number}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        _point_latest(runs, folder.name)
        return folder
    raise AssertionError("unreachable")


def _point_latest(runs: Path, name: str) -> None:
    # A relative link, swapped in by rename so a reader never finds it missing.
    staged = runs / f".{LATEST}-{name}"
    try:
        staged.unlink(missing_ok=True)
        staged.symlink_to(name)
        os.replace(staged, runs / LATEST)
    except OSError:  # no symbolic links here, or `latest` is a folder someone made
        staged.unlink(missing_ok=True)  # the folders are still there, by time
