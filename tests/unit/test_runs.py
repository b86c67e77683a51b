"""pipeline/local/runs.py: a log folder per run, `latest` naming the newest."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.local.runs import LATEST, new_run_dir

NOON = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def test_each_run_gets_its_own_folder_even_in_the_same_second(tmp_path):
    runs = tmp_path / "runs"
    first = new_run_dir(runs, NOON)
    second = new_run_dir(runs, NOON)
    assert (first.name, second.name) == ("20261202T120000Z", "20261202T120000Z-1")
    assert first.is_dir() and second.is_dir() and not any(second.iterdir())
    # AND latest names the newest, relatively (the folder can move)
    assert (runs / LATEST).readlink().as_posix() == second.name
    assert (runs / LATEST).resolve() == second.resolve()


def test_latest_moves_on_to_a_later_run(tmp_path):
    runs = tmp_path / "runs"
    new_run_dir(runs, NOON)
    later = new_run_dir(runs, NOON.replace(hour=13))
    assert (runs / LATEST).resolve() == later.resolve()
    assert sorted(p.name for p in runs.iterdir()) == [
        "20261202T120000Z",
        "20261202T130000Z",
        LATEST,
    ]
