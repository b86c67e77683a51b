"""`imgpipe` in a terminal, as a person runs it: start the local stack, upload from another
terminal, see the result, press Ctrl-C; and Ctrl-C at the other points a person may press it.

Exit status, decided: Ctrl-C is how `imgpipe local` is meant to stop, so once it serves it
exits 0 ("Stopped."); Ctrl-C anywhere else (the build, start-up, `upload`, `demo`) ends the
command with "imgpipe: interrupted" and 130, as a shell reports SIGINT. Never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.cli import ops
from pipeline.cli.targets import resolve, state_dir, state_file
from pipeline.local import state
from pipeline.local.instance import InstanceLock
from tests.support import REPO, images
from tests.support.cli import IMGPIPE, STARTED, imgpipe
from tests.support.polling import wait_until
from tests.support.terminal import CTRL_C, Terminal


def in_terminal(*args: str) -> Terminal:
    return Terminal([*IMGPIPE, *args], REPO)


def test_start_upload_list_and_ctrl_c_in_a_terminal(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(images.jpeg(1920, 1080))
    # GIVEN `imgpipe local` in a terminal, showing its banner
    terminal = in_terminal("local", "--workers", "1")
    try:
        terminal.wait_for(STARTED, 180)
        assert state_file().is_file()
        # WHEN a photo is uploaded from another terminal
        uploaded = imgpipe("upload", str(photo), "--prefix", "input/")
        assert uploaded.returncode == 0, uploaded.stderr
        # THEN `imgpipe ls` shows it processed
        listing = wait_until(lambda: _processed("input/photo.jpg"), 120, 0.5, "photo processed")
        assert re.search(r"input/photo\.jpg\s+1920x1080\s+200x113\s+ok", listing)
        # WHEN Ctrl-C is pressed in the stack's terminal
        terminal.type(CTRL_C)
        status = terminal.wait_exit(60)
    finally:
        terminal.kill()
    # THEN it shuts down cleanly, says so, and leaves no state file behind
    assert status == 0, terminal.screen
    assert "Shutting down..." in terminal.screen and "Stopped." in terminal.screen
    assert "Traceback" not in terminal.screen
    assert not state_file().exists()
    assert "no stack to talk to" in imgpipe("ls").stderr


def _processed(key: str) -> str:
    listing = imgpipe("ls").stdout
    return listing if re.search(rf"{re.escape(key)}\s.*\sok", listing) else ""


def test_ctrl_c_while_the_stack_starts_leaves_nothing_behind():
    # GIVEN `imgpipe local` starting: it holds the folder's lock, it is not up yet
    terminal = in_terminal("local", "--workers", "1")
    lock = state_file().with_suffix(".lock")
    try:
        wait_until(lambda: _holds(lock, terminal.pid), 60, 0.02, "the lock taken")
        # WHEN Ctrl-C comes before it is up
        terminal.type(CTRL_C)
        status = terminal.wait_exit(60)
    finally:
        terminal.kill()
    # THEN one line, status 130, no state file, and the next start is not refused
    assert STARTED not in terminal.screen  # it was still starting
    assert status == 130, terminal.screen
    assert "imgpipe: interrupted" in terminal.screen
    assert "Traceback" not in terminal.screen
    assert not state_file().exists()
    # AND an impatient second Ctrl-C while the next start shuts down is as clean
    second = in_terminal("local", "--workers", "2")
    try:
        second.wait_for(STARTED, 180)
        second.type(CTRL_C)
        second.wait_for("Shutting down...", 30)
        second.type(CTRL_C)
        status = second.wait_exit(60)
    finally:
        second.kill()
    assert status in (0, 130), second.screen  # 0 if the stop won the race
    assert "Traceback" not in second.screen and not state_file().exists()


def _holds(lock: Path, pid: int) -> bool:
    return lock.is_file() and lock.read_text().strip() == str(pid)


def test_ctrl_c_during_an_upload_and_during_the_demo(tmp_path):
    # GIVEN a running stack and a folder of images to upload
    server = in_terminal("local", "--workers", "1")
    album = tmp_path / "album"
    album.mkdir()
    picture = images.jpeg(800, 600)
    for number in range(1000):
        (album / f"{number:04d}.jpg").write_bytes(picture)
    try:
        server.wait_for(STARTED, 180)
        # WHEN Ctrl-C is pressed while `imgpipe upload` shows its progress
        upload = in_terminal("upload", str(album))
        # THEN it stops at once with one line
        assert upload.ctrl_c_after("upload [", 60) == 130, upload.screen
        assert "imgpipe: interrupted" in upload.screen and "Traceback" not in upload.screen
        assert "Uploaded" not in upload.screen
        # AND the stack and its state file were not disturbed by it
        assert f'"pid": {server.pid}' in state_file().read_text()
        server.type(CTRL_C)
        assert server.wait_exit(60) == 0, server.screen
    finally:
        server.kill()
    # AND the same for the demo, mid-way
    demo = in_terminal("demo", "--out", str(tmp_path / "demo"))
    assert demo.ctrl_c_after("Local stack up at") == 130, demo.screen
    assert "imgpipe: interrupted" in demo.screen and "Traceback" not in demo.screen


def test_closing_the_terminal_stops_the_stack_as_ctrl_c_does():
    # GIVEN `imgpipe local` in a terminal, and an upload it has not snapshotted yet
    terminal = in_terminal("local", "--workers", "1")
    try:
        terminal.wait_for(STARTED, 180)
        target = resolve()
        ops.upload_bytes(target, {"last.jpg": images.jpeg(64, 48)})
        # WHEN the terminal is closed (SIGHUP), not Ctrl-C
        status = terminal.hang_up(60)
    finally:
        terminal.kill()
    # THEN it stopped as on Ctrl-C: the state file is gone, the folder is free, and the
    # last upload is in the snapshot written at shutdown (not lost with the last 2 s)
    assert status == 0
    assert not state_file().exists()
    lock = InstanceLock(state_dir() / "local.lock")
    assert lock.acquire()
    lock.release()  # the session's later stacks need the folder free
    saved = state.load(state_dir() / "state")
    assert saved is not None
    assert "last.jpg" in {entry["key"] for entry in saved.body["buckets"]["input"]}
