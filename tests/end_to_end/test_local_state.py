"""`imgpipe local`'s state across restarts, with the stack in a process of its own (as a
person runs it): stopped cleanly, killed with SIGKILL mid-burst, started with --fresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from pipeline.aws import CREDENTIALS
from pipeline.cli import ops
from pipeline.local import state
from pipeline.program.artifacts import REPO_ROOT
from reliability.images import payloads
from reliability.invariants import dead_lettered_keys, target_snapshot, violations
from reliability.persistence import compare, serving, upload_burst
from tests.support import images
from tests.support.local_stack import wait_final
from tests.support.polling import wait_until


def imgpipe(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **CREDENTIALS},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_stopped_stack_starts_again_with_its_images_failures_and_dead_letters(tmp_path):
    # GIVEN a stack with a processed image, a failed one and one on the dead-letter queue
    first = serving(tmp_path, "--fault-raise", "doomed.jpg")
    target = first.start()
    ops.upload_bytes(
        target,
        {
            "fine.jpg": images.jpeg(800, 600),
            "broken.jpg": images.jpeg(800, 600)[:1500],
            "doomed.jpg": images.jpeg(300, 200),
        },
    )
    wait_final(target, ["fine.jpg", "broken.jpg"])
    wait_until(lambda: ops.dead_lettered(target), 60, 0.2, "a dead letter")
    before = target_snapshot(target)
    # WHEN it is stopped (Ctrl-C, SIGTERM) and started again, without --fresh
    assert first.stop() == 0
    again = serving(tmp_path)
    target = again.start()
    try:
        # THEN buckets, items and the dead letter are back, and `imgpipe ls` shows them
        assert "Restored the state saved at" in again.log()
        assert target_snapshot(target) == before
        listing = imgpipe("ls", "--json", "--endpoint", target.endpoint)
        statuses = {row["key"]: row["status"] for row in map(json.loads, listing.splitlines())}
        assert statuses == {"fine.jpg": "ok", "broken.jpg": "failed", "doomed.jpg": "dlq"}
        assert violations(target_snapshot(target), dead_lettered_keys(target)) == []
    finally:
        again.stop()


def test_a_sigkill_mid_burst_loses_only_the_newest_uploads_and_the_rest_completes(tmp_path):
    # GIVEN a stack whose saved state already holds ten uploads
    first = serving(tmp_path)
    target = first.start()
    early = {f"early/{n}.jpg": images.jpeg(320, 240) for n in range(10)}
    ops.upload_bytes(target, early)

    def saved_inputs() -> set[str]:
        saved = state.load(tmp_path / "state")
        return {e["key"] for e in saved.body["buckets"]["input"]} if saved else set()

    wait_until(lambda: set(early) <= saved_inputs(), 60, 0.2, "a snapshot with the uploads")
    # WHEN it is killed with SIGKILL in the middle of a burst of uploads
    stop, result = threading.Event(), {}
    base = payloads()["jpeg 640x480"]
    uploader = threading.Thread(
        target=lambda: result.setdefault("burst", upload_burst(target, base, 400, stop))
    )
    uploader.start()
    time.sleep(1.5)
    killed_at = time.time()
    first.kill()
    stop.set()
    uploader.join()
    again = serving(tmp_path)
    target = again.start()
    try:
        # THEN what came back is the state of one moment: every upload acknowledged before
        # it, with its bytes, none after; the earlier saved uploads are all there
        outcome = compare(target, result["burst"], killed_at)
        assert outcome["corrupted"] == 0 and outcome["holes"] == 0, outcome
        assert set(early) <= {o["Key"] for o in ops.input_objects(target)}
        # AND every image that came back completes (events a worker held are delivered
        # again), with the invariants intact
        keys = [o["Key"] for o in ops.input_objects(target)]
        wait_final(target, keys, timeout_s=240)
        assert violations(target_snapshot(target), dead_lettered_keys(target)) == []
    finally:
        again.stop()


def test_fresh_starts_empty_and_keeps_the_old_state_aside(tmp_path):
    first = serving(tmp_path)
    target = first.start()
    ops.upload_bytes(target, {"kept.jpg": images.jpeg(320, 240)})
    wait_final(target, ["kept.jpg"])
    first.stop()
    again = serving(tmp_path, "--fresh")
    target = again.start()
    try:
        assert "Starting empty (--fresh); the previous state is kept in" in again.log()
        assert list(ops.input_objects(target)) == [] and ops.items(target) == []
        assert (tmp_path / "state.before-fresh" / state.MANIFEST).is_file()
    finally:
        again.stop()
