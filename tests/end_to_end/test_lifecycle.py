"""One local stack per state folder, and the one-line answers when something is in the
way: a second `imgpipe local`, a stack that crashed, an endpoint nothing answers at, a busy
port; each run's logs in a folder of its own."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading

import pytest

from pipeline.cli import ops
from pipeline.cli.targets import state_file
from pipeline.local.emulator import Emulator, PortInUse
from pipeline.local.instance import InstanceLock
from pipeline.local.runner import LocalStack
from pipeline.local.runs import LATEST
from tests.support import REPO, images
from tests.support.cli import IMGPIPE, STARTED, imgpipe
from tests.support.local_stack import new_stack, wait_final
from tests.support.terminal import CTRL_C, Terminal


def local(*args: str) -> Terminal:
    return Terminal([*IMGPIPE, "local", "--workers", "1", *args], REPO)


def stop(terminal: Terminal) -> None:
    terminal.type(CTRL_C)
    assert terminal.wait_exit(60) == 0, terminal.screen


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_a_second_local_is_refused_naming_the_first_and_a_second_folder_works(tmp_path):
    first = local()
    second = None
    try:
        endpoint = re.search(r"endpoint\s+(\S+)", first.wait_for(STARTED, 180)).group(1)
        # WHEN a second `imgpipe local` starts from the same folder
        refused = imgpipe("local", "--workers", "1", timeout=60)
        # THEN it exits at once, naming the first and what to do
        line = one_line(refused.stderr)
        assert refused.returncode == 2 and not refused.stdout
        assert f"PID {first.pid}, endpoint {endpoint}" in line
        assert f"kill {first.pid}" in line and "--state-dir DIR" in line
        # AND the first keeps its state file: the commands still reach it
        assert state_file().is_file()
        assert imgpipe("ls").returncode == 0
        # AND a second stack with a state folder of its own starts, and its commands find it
        second = local("--state-dir", str(tmp_path / "second"))
        other = re.search(r"endpoint\s+(\S+)", second.wait_for(STARTED, 180)).group(1)
        assert other != endpoint
        listed = imgpipe("ls", "--state-dir", str(tmp_path / "second"))
        assert listed.returncode == 0, listed.stderr
        stop(second)
        assert imgpipe("ls").returncode == 0
        stop(first)
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert not state_file().exists()


def test_after_a_crash_every_command_says_so_in_one_line_and_local_starts_again():
    crashed = local()
    try:
        crashed.wait_for(STARTED, 180)
        # WHEN the stack dies without cleaning up (kill -9)
        os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait_exit(30)
    finally:
        crashed.kill()
    assert state_file().is_file()
    # THEN ls (and every command that finds the stack through the state file) says so
    for command in (["ls"], ["show", "input/photo.jpg"], ["dlq", "ls"], ["reprocess"]):
        done = imgpipe(*command, timeout=60)
        assert done.returncode == 2
        assert f"its process {crashed.pid}" in one_line(done.stderr)
        assert "is gone (killed or crashed)" in done.stderr
    # AND `imgpipe local` starts again, over the stale file
    again = local()
    try:
        again.wait_for(STARTED, 180)
        assert imgpipe("ls").returncode == 0
        stop(again)
    finally:
        again.kill()


def test_an_endpoint_nothing_answers_at_is_one_line():
    done = imgpipe("ls", "--endpoint", "http://127.0.0.1:1", timeout=60)
    assert done.returncode == 2
    assert one_line(done.stderr).startswith("imgpipe: nothing answers at http://127.0.0.1:1")


def test_a_busy_port_fails_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The old behaviour was to hang for ever: the timeout turns that into a failure.
        done = imgpipe("local", "--port", str(port), timeout=60)
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in one_line(done.stderr)
    assert not state_file().exists()


def test_each_start_logs_into_a_run_folder_of_its_own(tmp_path):
    folders = []
    for number in range(2):
        with new_stack(state_folder=tmp_path) as stack:
            target = stack.target()
            ops.upload_bytes(target, {f"run{number}.jpg": images.jpeg(64, 48)})
            wait_final(target, [f"run{number}.jpg"])
            folders.append(stack.log_dir)
            assert target.log_dir == str(stack.log_dir)
    first, second = folders
    assert first != second and first.parent == second.parent == tmp_path / "runs"
    assert (tmp_path / "runs" / LATEST).resolve() == second.resolve()
    # Each folder holds its own run's lines only
    first_lines = "".join(log.read_text() for log in first.glob("worker-*.log"))
    second_lines = "".join(log.read_text() for log in second.glob("worker-*.log"))
    assert "run0.jpg" in first_lines and "run1.jpg" not in first_lines
    assert "run1.jpg" in second_lines and "run0.jpg" not in second_lines


def test_a_stack_refused_for_its_port_leaves_the_folder_free(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = LocalStack(port=taken.getsockname()[1], state_folder=tmp_path)
        with pytest.raises(PortInUse):
            busy.start()
    assert not state_file(folder=tmp_path).exists()
    lock = InstanceLock(tmp_path / "local.lock")
    assert lock.acquire()
    lock.release()  # the session's later stacks need the folder free


def test_a_port_taken_between_the_check_and_the_bind_fails_instead_of_hanging(monkeypatch):
    # Two stacks from different --state-dir folders asked for one --port both pass the
    # check; the second's server then cannot bind. Simulated: the port is taken after it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        emulator = Emulator(taken.getsockname()[1])
        monkeypatch.setattr(emulator, "check_port", lambda: None)
        outcome: list[BaseException | None] = []

        def start() -> None:
            try:
                emulator.start()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        starting = threading.Thread(target=start, daemon=True)
        starting.start()
        starting.join(60)  # the old behaviour was to wait for ever
    assert outcome and isinstance(outcome[0], PortInUse), outcome
