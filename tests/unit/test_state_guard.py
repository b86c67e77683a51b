"""tests/support/state_guard.py, which fails a test run that writes into the project's
.build/local (tests/conftest.py): it sees what a run adds, changes or removes, and leaves
out what a developer's own live stack writes meanwhile."""

from __future__ import annotations

import subprocess
import sys

from pipeline.cli.targets import Target
from pipeline.local.instance import Process
from pipeline.program.names import resource_names
from tests.support.state_guard import changes, snapshot


def test_added_changed_and_removed_files_are_reported(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "old.log").write_text("x")
    (tmp_path / "gone.json").write_text("{}")
    before = snapshot(tmp_path)
    (tmp_path / "logs" / "old.log").write_text("xy")
    (tmp_path / "gone.json").unlink()
    (tmp_path / "runs" / "t1").mkdir(parents=True)
    (tmp_path / "runs" / "t1" / "worker-0.log").write_text("line")
    found = changes(before, snapshot(tmp_path), tmp_path)
    assert found == ["gone.json", "logs/old.log", "runs", "runs/t1", "runs/t1/worker-0.log"]


def test_a_live_stack_of_the_developer_is_left_out_and_a_dead_one_is_not(tmp_path):
    before = snapshot(tmp_path)
    run = tmp_path / "runs" / "20261202T120000Z"
    run.mkdir(parents=True)
    (run / "worker-0.log").write_text("line")
    saved = Target(
        names=resource_names("imgpipe", "local"),
        endpoint="http://127.0.0.1:1",
        server=Process.current(),
        log_dir=str(run),
    )
    (tmp_path / "local.json").write_text(saved.to_json())
    # its snapshot of the emulator's state, written every 2 s while the tests run
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "manifest.json").write_text("{}")
    assert changes(before, snapshot(tmp_path), tmp_path) == ["runs"]
    # WHEN that stack's process is gone, its files count against the run
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = Target(names=saved.names, endpoint=saved.endpoint, server=Process(gone.pid))
    (tmp_path / "local.json").write_text(dead.to_json())
    found = changes(before, snapshot(tmp_path), tmp_path)
    assert {"runs/20261202T120000Z/worker-0.log", "state/manifest.json"} <= set(found)
