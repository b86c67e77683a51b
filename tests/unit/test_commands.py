"""The `imgpipe` argument tree: help on everything, --version, errors before any build."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import commands
from tests.support import REPO


def parsers(
    parser: argparse.ArgumentParser, path: str = "imgpipe"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


def test_every_argument_and_command_has_help_text() -> None:
    unexplained = []
    for path, parser in parsers(commands._parser()):
        for action in parser._actions:
            name = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                unexplained.append(f"{path} {name}")
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                unexplained += [f"{path} {c}" for c in action.choices if c not in helped]
    assert unexplained == []


def test_every_option_with_a_default_names_it_in_its_help() -> None:
    # A newcomer reads `--help` to learn what happens without the option (which profile
    # `local` runs, how many invocations `reprocess` makes at once)
    silent = []
    for path, parser in parsers(commands._parser()):
        for action in parser._actions:
            if not action.option_strings or action.default in (None, False, "", argparse.SUPPRESS):
                continue
            if "default" not in (action.help or ""):
                silent.append(f"{path} {'/'.join(action.option_strings)}")
    assert silent == []


def test_the_walk_finds_an_argument_without_help() -> None:
    parser = commands._parser()
    parser.add_argument("--bare")
    found = [a.dest for _, p in parsers(parser) for a in p._actions if not a.help]
    assert found == ["bare"]


def test_version_is_the_projects(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    with pytest.raises(SystemExit) as exited:
        commands.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"imgpipe {project['version']}\n"


@pytest.mark.parametrize("command", ["local", "demo"])
def test_a_wrong_profile_fails_before_any_build_message(
    command: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert commands.main([command, "--profile", "nope"]) == 2
    out, err = capsys.readouterr()
    # THEN the one line says what is wrong, and nothing claims a build started
    assert err.startswith("imgpipe: ") and "profile: got 'nope'; allowed: one of" in err
    assert len(err.splitlines()) == 1
    assert "Building" not in out + err + caplog.text


def test_the_start_up_hint_carries_a_state_dir_given_to_local() -> None:
    # GIVEN a second stack beside the project's, in a folder of its own
    hint = commands.next_steps(Path("/tmp/other"))
    # THEN the commands it suggests reach that stack, not the project's
    assert hint.endswith("imgpipe gallery, each with --state-dir /tmp/other")
    assert "--state-dir" not in commands.next_steps(None)


def test_shutdown_lines_to_a_reader_that_is_gone_do_not_fail_the_stop():
    # GIVEN stdout is a pipe whose reader has gone (`imgpipe local | tee`: Ctrl-C ends tee too)
    read_end, write_end = os.pipe()
    os.close(read_end)
    code = "from pipeline.cli.commands import say; say('Shutting down...'); say('Stopped.')"
    # WHEN the shutdown lines are printed
    done = subprocess.run(
        [sys.executable, "-c", code], stdout=write_end, stderr=subprocess.PIPE, text=True
    )
    os.close(write_end)
    # THEN the process still ends cleanly, without "Exception ignored ... BrokenPipeError"
    assert (done.returncode, done.stderr) == (0, "")
