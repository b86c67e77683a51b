"""pipeline/local/instance.py: whether a stack's process still runs; one holder per lock."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline.cli import commands
from pipeline.local.instance import InstanceLock, Process

HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipeline.local.instance import InstanceLock
assert InstanceLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_this_process_is_alive_and_a_reaped_one_is_not():
    assert Process.current().alive()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not Process(child.pid).alive()


def test_a_killed_process_not_yet_reaped_is_not_alive():
    # GIVEN a child killed whose exit status nobody collected (a zombie: its PID exists)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = Process(child.pid, Process.current().started).started
    child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, left unreaped
    try:
        assert not Process(child.pid, started).alive()
    finally:
        child.wait()


def test_a_pid_taken_by_another_program_does_not_pass_for_the_stack():
    # GIVEN the state file's PID, now a different process (another start time)
    me = Process.current()
    assert me.started is not None
    assert not Process(me.pid, me.started + 1).alive()


def test_one_holder_per_lock_and_free_again_on_release(tmp_path):
    first, second = InstanceLock(tmp_path / "local.lock"), InstanceLock(tmp_path / "local.lock")
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    assert second.holder() == os.getpid()
    first.release()
    assert second.acquire()
    second.release()


def test_the_lock_is_free_once_its_holder_is_killed(tmp_path):
    # GIVEN another process holding the lock
    path = tmp_path / "local.lock"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline() == "held\n"
        lock = InstanceLock(path)
        assert not lock.acquire() and lock.holder() == holder.pid
        # WHEN it is killed (no clean-up runs), THEN the lock is free
        holder.kill()
        holder.wait()
        assert lock.acquire()
        lock.release()
    finally:
        holder.kill()
        holder.wait()


def test_a_state_folder_that_cannot_be_written_is_one_line(tmp_path, capsys):
    # A read-only file system or another user's folder, as a path under a regular file
    # (refused to root too): the lock cannot be made there
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert commands.main(["local", "--state-dir", str(blocked / "state")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"imgpipe: cannot use {blocked / 'state'} as the state folder (")
    assert "--state-dir" in line
