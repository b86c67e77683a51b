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


def test_a_latest_that_is_a_real_folder_is_left_alone_and_nothing_piles_up(tmp_path):
    # GIVEN runs/latest made a folder of its own (a copy, say)
    runs = tmp_path / "runs"
    (runs / LATEST).mkdir(parents=True)
    (runs / LATEST / "kept.log").write_text("mine")
    # WHEN two runs start
    first = new_run_dir(runs, NOON)
    second = new_run_dir(runs, NOON.replace(hour=13))
    # THEN the folder is untouched and only the run folders were added
    assert (runs / LATEST / "kept.log").read_text() == "mine"
    assert sorted(p.name for p in runs.iterdir()) == sorted([first.name, second.name, LATEST])
