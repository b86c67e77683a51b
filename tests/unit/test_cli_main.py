"""pipeline/cli/__init__.py and commands.main: how a command ends when it cannot go on:
Ctrl-C is one line and status 130, a stack lost mid-command one line and status 2."""

from __future__ import annotations

from botocore.exceptions import EndpointConnectionError

import pipeline.cli
from pipeline.cli import commands, ops
from pipeline.cli.targets import Target
from pipeline.program.names import resource_names

LOCAL = Target(names=resource_names("imgpipe", "local"), endpoint="http://127.0.0.1:1")


def test_ctrl_c_in_any_command_is_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "_target", interrupted)
    for argv in (["ls"], ["reprocess"], ["upload", "photo.jpg"], ["gallery"]):
        assert pipeline.cli.main(argv) == pipeline.cli.INTERRUPTED
        captured = capsys.readouterr()
        assert captured.err.strip() == "imgpipe: interrupted" and not captured.out


def test_a_stack_lost_mid_command_is_one_line(monkeypatch, capsys):
    def lost(target, attributes=()):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")

    monkeypatch.setattr(commands, "_target", lambda args: LOCAL)
    monkeypatch.setattr(ops, "dead_lettered", lambda target: {})
    monkeypatch.setattr(ops, "items", lost)
    assert pipeline.cli.main(["ls"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("imgpipe: lost the stack: Could not connect")
    assert len(error.strip().splitlines()) == 1
