"""pipeline/cli/targets.py: where commands send requests, and the one-line answers when
there is nothing there (a stale state file, an endpoint nothing answers at)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from pipeline.cli import targets
from pipeline.cli.targets import Target, TargetError, resolve, state_file
from pipeline.local.instance import Process
from pipeline.program.names import resource_names


def _listening() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def _endpoint(server: socket.socket) -> str:
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def _saved(folder, endpoint: str, server: Process) -> None:
    target = Target(names=resource_names("imgpipe", "local"), endpoint=endpoint, server=server)
    path = state_file(folder=folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(target.to_json())


def _no_client(monkeypatch) -> None:
    # The answers below come from the state file and one socket, never a client's retries.
    import pipeline.aws

    def refuse(*args, **kwargs):
        raise AssertionError("a boto3 client was made")

    monkeypatch.setattr(pipeline.aws, "client", refuse)


def test_the_state_file_round_trips_the_process():
    me = Process.current()
    target = Target(names=resource_names("imgpipe", "local"), endpoint="http://x:1", server=me)
    again = Target.from_json(target.to_json())
    assert again.server == me and again.endpoint == "http://x:1"


def test_a_state_file_whose_process_is_gone_is_one_clear_error(tmp_path, monkeypatch):
    # GIVEN a state file left by a stack killed with SIGKILL (its process is gone)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with _listening() as server:  # even if something answers at its old endpoint
        endpoint = _endpoint(server)
        _saved(tmp_path, endpoint, Process(gone.pid))
        _no_client(monkeypatch)
        with pytest.raises(TargetError) as error:
            resolve(folder=tmp_path)
    message = str(error.value)
    assert f"its process {gone.pid} ({endpoint}) is gone" in message
    assert "\n" not in message and "imgpipe local" in message


def test_an_endpoint_nothing_answers_at_is_one_clear_error(tmp_path, monkeypatch):
    _no_client(monkeypatch)
    with pytest.raises(TargetError, match=r"nothing answers at http://127\.0\.0\.1:1 \("):
        resolve(endpoint="http://127.0.0.1:1", folder=tmp_path)


def test_a_live_stack_that_stopped_answering_is_one_clear_error(tmp_path, monkeypatch):
    with _listening() as server:
        endpoint = _endpoint(server)
    _saved(tmp_path, endpoint, Process.current())
    _no_client(monkeypatch)
    with pytest.raises(TargetError, match="nothing answers at"):
        resolve(folder=tmp_path)


def test_a_live_stack_is_the_target(tmp_path):
    with _listening() as server:
        endpoint = _endpoint(server)
        _saved(tmp_path, endpoint, Process.current())
        assert resolve(folder=tmp_path).endpoint == endpoint


def test_the_state_folder_is_the_option_then_the_variable_then_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv(targets.STATE_DIR_VARIABLE, str(tmp_path / "env"))
    assert targets.state_dir(tmp_path / "chosen") == tmp_path / "chosen"
    assert targets.state_dir() == tmp_path / "env"
    monkeypatch.delenv(targets.STATE_DIR_VARIABLE)
    assert targets.state_dir() == targets.STATE_DIR


def test_a_state_file_that_is_not_one_is_one_clear_error(tmp_path):
    state_file(folder=tmp_path).write_text('{"names": ')  # cut short
    with pytest.raises(TargetError, match="is not a state file imgpipe wrote"):
        resolve(folder=tmp_path)


def test_the_state_file_is_replaced_whole(tmp_path):
    path = state_file(folder=tmp_path)
    path.write_text("old")
    target = Target(names=resource_names("imgpipe", "local"), endpoint="http://x:1")
    targets.save_state(target, path)
    assert targets.saved_state(path) == target
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
