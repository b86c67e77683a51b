"""End to end on the embedded emulator: real AWS CLI uploads, sandboxed function workers."""

from __future__ import annotations

import io
import itertools
import os
import socket
import subprocess
import sys
import time

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from lambda_pkg.profiles import PipelineConfig, Route, load_named
from pipeline.cli import ops
from pipeline.local import sandbox
from pipeline.local.workers import Heartbeat, PoolStats
from pipeline.program.stack import StackSettings
from tests.support import images
from tests.support.local_stack import aws_cli, new_stack, wait_final


def test_upload_with_the_aws_cli_to_renditions_and_items_then_clean_shutdown(tmp_path):
    # GIVEN a local stack with the web profile and a folder with a photo and a broken file
    (tmp_path / "album").mkdir()
    (tmp_path / "album" / "beach day.jpg").write_bytes(images.jpeg(2400, 1600))
    (tmp_path / "album" / "broken.jpg").write_bytes(images.jpeg(800, 600)[:1500])
    stack = new_stack(profile="web")
    with stack:
        target = stack.target()
        # WHEN the real AWS CLI uploads the folder to the emulator
        aws_cli(
            stack.endpoint,
            "s3",
            "cp",
            "--recursive",
            str(tmp_path / "album"),
            f"s3://{stack.names.input_bucket}/input/",
        )
        results = wait_final(target, ["input/beach day.jpg", "input/broken.jpg"])
        # THEN the photo has every rendition in the output bucket, and its item says so
        photo = results["input/beach day.jpg"]
        assert photo["status"] == "ok" and photo["profile"] == "web"
        listing = aws_cli(
            stack.endpoint, "s3", "ls", "--recursive", f"s3://{stack.names.output_bucket}/"
        )
        for rendition in photo["renditions"]:
            assert rendition["key"] in listing.stdout
        assert {r["name"] for r in photo["renditions"]} == {
            r.name for r in load_named("web").renditions
        }
        # AND the broken one is a failed item with a reason, and nothing went to the DLQ
        assert results["input/broken.jpg"]["status"] == "failed"
        assert "truncated" in results["input/broken.jpg"]["error"]
        assert ops.dead_letters(target, hold_s=0) == []
        pids = stack.pool.function_pids()
        assert pids, "the function ran in sandbox processes"
        port = int(stack.endpoint.rsplit(":", 1)[1])
    # AND after shutdown no function process and no emulator is left
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_handler_that_keeps_raising_ends_on_the_dead_letter_queue():
    # GIVEN a function that raises for one key (as throttling without end would)
    stack = new_stack(fault_environment={"IMGPIPE_FAULT_RAISE": "doomed.jpg"})
    with stack:
        target = stack.target()
        ops.upload_bytes(
            target, {"doomed.jpg": images.jpeg(300, 200), "fine.jpg": images.jpeg(300, 200)}
        )
        wait_final(target, ["fine.jpg"])
        letters = []
        for _ in range(100):
            letters = ops.dead_letters(target, hold_s=0)
            if letters:
                break
            time.sleep(0.1)
        # THEN after 1 + 2 retries Lambda's failure record holds the event and the error
        (letter,) = letters
        assert letter.keys == ["doomed.jpg"]
        assert letter.attempts == 3
        assert "injected fault" in letter.error and letter.error.startswith("RuntimeError")
        assert letter.record["requestContext"]["condition"] == "RetriesExhausted"
        assert ops.item(target, "doomed.jpg") is None
        assert stack.pool.stats.dead_lettered == 1

        # WHEN the cause is fixed (redeployed without the fault) and the DLQ redriven
        stack.fault_environment.clear()
        stack.redeploy(stack.config)
        redriven = []
        assert ops.redrive(stack.target(), redriven.append) == 1
        # THEN the image completes and the dead-letter queue is empty
        assert redriven == ["doomed.jpg"]
        assert wait_final(target, ["doomed.jpg"])["doomed.jpg"]["status"] == "ok"
        assert ops.dead_letters(target, hold_s=0) == []


def test_a_slow_poison_event_is_held_by_one_worker_and_dead_lettered_once(tmp_path):
    # GIVEN a 2 s visibility timeout, and a function that takes 2.5 s and then raises for
    # one key: its three attempts (7.5 s and the back-off) outlast the timeout three times
    trace = tmp_path / "attempts"
    faults = {
        "IMGPIPE_FAULT_RAISE": "slow.jpg",
        "IMGPIPE_FAULT_DELAY_S": "2.5",
        "IMGPIPE_FAULT_TRACE": str(trace),
    }
    stack = new_stack(fault_environment=faults, workers=2, visibility_timeout_s=2)
    with stack:
        target = stack.target()
        ops.upload_bytes(target, {"slow.jpg": images.jpeg(300, 200)})
        deadline = time.monotonic() + 60
        while not ops.dead_letters(target, hold_s=0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stack.wait_until_idle(30)
        # THEN the other worker never got it: three attempts one after another, one record
        letters = ops.dead_letters(target, hold_s=0)
        assert [(letter.keys, letter.attempts) for letter in letters] == [(["slow.jpg"], 3)]
        attempts = sorted(tuple(map(float, line.split()[:2])) for line in trace.open())
        assert len(attempts) == 3
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(attempts))
        assert stack.pool.stats.dead_lettered == 1
        assert stack.pool.stats.extended >= 3, "the heartbeat kept the message hidden"


def test_a_heartbeat_hides_a_held_message_until_it_stops():
    # The worker's process dying stops its heartbeat: the message must then come back.
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "1"})
        url = url["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="{}")
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        stats = PoolStats()
        with Heartbeat(sqs, url, message["ReceiptHandle"], 1, stats):
            held_until = time.monotonic() + 3  # three visibility timeouts
            while time.monotonic() < held_until:
                assert not sqs.receive_message(QueueUrl=url).get("Messages")
                time.sleep(0.1)
        assert stats.extended >= 6
        deadline = time.monotonic() + 5
        again = []
        while not again and time.monotonic() < deadline:
            again = sqs.receive_message(QueueUrl=url).get("Messages", [])
            time.sleep(0.1)
        assert [m["MessageId"] for m in again] == [message["MessageId"]]


def test_a_crash_mid_image_is_retried_and_the_image_still_completes(tmp_path):
    # GIVEN a function process that dies (exit 137) after decoding, before writing, once
    marker = tmp_path / "crashed"
    faults = {"IMGPIPE_FAULT_CRASH_ONCE": "victim.jpg", "IMGPIPE_FAULT_MARKER": str(marker)}
    stack = new_stack(fault_environment=faults, workers=1)
    with stack:
        target = stack.target()
        ops.upload_bytes(target, {"victim.jpg": images.jpeg(1200, 900)})
        (entry,) = wait_final(target, ["victim.jpg"]).values()
        # THEN it crashed once, was retried in a fresh process, and completed
        assert marker.exists()
        assert entry["status"] == "ok"
        assert stack.pool.stats.retried >= 1
        assert ops.dead_letters(target, hold_s=0) == []


def flat_png(width: int, height: int) -> bytes:
    """A plain-coloured PNG: small to store and quick to make, as big as any to decode."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 110, 190)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def wait_for_dead_letter(target, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        letters = ops.dead_letters(target, hold_s=0)
        if letters:
            return letters
        time.sleep(0.2)
    raise AssertionError("nothing reached the dead-letter queue")


def test_an_image_past_the_memory_fails_in_its_budget_and_the_function_carries_on():
    # GIVEN a 256 MB function, and an 8000x6000 PNG that decodes to 144 MB: more than what
    # 256 MB leaves the render once the function's own process (~60 MB) is counted
    settings = StackSettings(profile="thumbnail", memory_mb=256)
    with new_stack(settings=settings, workers=1) as stack:
        target = stack.target()
        ops.upload_bytes(target, {"small.jpg": images.jpeg(640, 480)})
        wait_final(target, ["small.jpg"])
        pids = stack.pool.function_pids()
        # WHEN it is uploaded
        ops.upload_bytes(target, {"huge.png": flat_png(8000, 6000)})
        (entry,) = wait_final(target, ["huge.png"]).values()
        # THEN it failed on its memory budget, in one attempt, with the function still up
        assert entry["status"] == "failed" and entry["error_type"] == "BudgetExceeded"
        assert "exceeded the memory budget" in entry["error"]
        assert "of the function's 256 MB" in entry["error"]
        assert stack.pool.function_pids() == pids
        assert stack.pool.stats.retried == 0
        assert ops.dead_letters(target, hold_s=0) == []


def test_a_function_past_its_memory_is_killed_and_reported_as_lambda_does():
    # GIVEN a 256 MB function whose own process takes 300 MB more for one key
    faults = {"IMGPIPE_FAULT_HOG_KEY": "hog.jpg", "IMGPIPE_FAULT_HOG_MB": "300"}
    settings = StackSettings(profile="thumbnail", memory_mb=256)
    with new_stack(settings=settings, fault_environment=faults) as stack:
        target = stack.target()
        ops.upload_bytes(
            target, {"hog.jpg": images.jpeg(300, 200), "ok.jpg": images.jpeg(300, 200)}
        )
        # THEN each attempt is an out-of-memory kill, and the event ends on the DLQ
        (letter,) = wait_for_dead_letter(target)
        assert letter.keys == ["hog.jpg"] and letter.attempts == 3
        assert letter.error.startswith("Runtime.OutOfMemory: RequestId: ")
        assert letter.error.endswith("Error: Runtime exited with error: signal: killed")
        assert ops.item(target, "hog.jpg") is None
        # AND the other image, in a fresh function process, is fine
        assert wait_final(target, ["ok.jpg"])["ok.jpg"]["status"] == "ok"


def test_the_handler_sees_the_configured_timeout_and_fails_the_image_within_it():
    # GIVEN a 1 s function, all of it kept for the writes (the reserve is at least 1 s), and
    # a 48 MP PNG for `web`. Not a 2 s function: on an idle machine the render can finish
    # inside the second it leaves, and the test would depend on the machine's load. A
    # render killed at its deadline is tests/functional/test_budget.py's.
    settings = StackSettings(profile="web", timeout_s=1)
    with new_stack(profile="web", settings=settings, workers=1) as stack:
        target = stack.target()
        ops.upload_bytes(target, {"slow.png": flat_png(8000, 6000)})
        (entry,) = wait_final(target, ["slow.png"]).values()
        # THEN the image failed on its time budget, not a `Task timed out` of the function
        assert entry["status"] == "failed" and entry["error_type"] == "BudgetExceeded"
        assert "exceeded the time budget" in entry["error"]
        assert stack.pool.stats.retried == 0
        assert ops.dead_letters(target, hold_s=0) == []


def test_reprocess_brings_items_to_the_new_profile_and_skips_current_ones():
    stack = new_stack(profile="thumbnail")
    with stack:
        target = stack.target()
        keys = ["a.jpg", "b/c.png", "d e.jpg"]
        ops.upload_bytes(
            target,
            {
                "a.jpg": images.jpeg(900, 600),
                "b/c.png": images.png(300, 300),
                "d e.jpg": images.jpeg(640, 480),
            },
        )
        wait_final(target, keys)
        thumbnail_hash = load_named("thumbnail").content_hash()
        assert {ops.item(target, k)["profile_hash"] for k in keys} == {thumbnail_hash}

        # WHEN the profile changes (as `pulumi up` would redeploy) and reprocess runs
        web = load_named("web")
        stack.redeploy(PipelineConfig.single(web))
        target = stack.target()
        plan = ops.plan_reprocess(target, ops.current_config(target), everything=False)
        assert (len(plan.events), plan.current) == (3, 0)
        ops.send_events(target, plan.events, progress=lambda key: None)
        ops.wait_for(target, keys, lambda e: e.get("profile_hash") == web.content_hash(), 60)

        # THEN every item is on the new profile hash, and a second run skips them all
        assert {ops.item(target, k)["profile_hash"] for k in keys} == {web.content_hash()}
        again = ops.plan_reprocess(target, ops.current_config(target), everything=False)
        assert (len(again.events), again.current) == (0, 3)
        assert len(ops.plan_reprocess(target, ops.current_config(target), True).events) == 3


def test_routes_filter_the_notification_and_pick_the_profile():
    # GIVEN a stack that only processes gallery/*.png (web) and avatars/ (thumbnail)
    config = PipelineConfig(
        profiles=(load_named("web"), load_named("thumbnail")),
        routes=(Route("web", prefix="gallery/", suffix=".png"), Route("thumbnail", "avatars/")),
    )
    with new_stack(profile=config) as stack:
        target = stack.target()
        ops.upload_bytes(
            target,
            {
                "gallery/a.png": images.png(640, 480),
                "avatars/me.jpg": images.jpeg(400, 400),
                "elsewhere/b.jpg": images.jpeg(400, 300),
                "gallery/c.jpg": images.jpeg(400, 300),
            },
        )
        results = wait_final(target, ["gallery/a.png", "avatars/me.jpg"])
        assert results["gallery/a.png"]["profile"] == "web"
        assert results["avatars/me.jpg"]["profile"] == "thumbnail"
        # THEN keys outside every route never reached the function (S3 filtered them)
        assert stack.wait_until_idle(30)
        assert ops.item(target, "elsewhere/b.jpg") is None
        assert ops.item(target, "gallery/c.jpg") is None


def test_deleting_an_original_removes_its_renditions_and_keeps_the_record():
    with new_stack(profile="web") as stack:
        target = stack.target()
        ops.upload_bytes(target, {"bye.jpg": images.jpeg(800, 600)})
        (entry,) = wait_final(target, ["bye.jpg"]).values()
        s3 = ops.aws(target, "s3")
        s3.delete_object(Bucket=stack.names.input_bucket, Key="bye.jpg")
        (deleted,) = ops.wait_for(
            target, ["bye.jpg"], lambda e: e["status"] == "deleted", 30
        ).values()
        assert deleted["status"] == "deleted" and deleted["renditions"] == []
        assert deleted["removed_renditions"] == entry["renditions"]
        # The item is marked first (the ordering check); the renditions go right after.
        assert stack.wait_until_idle(30)
        listing = s3.list_objects_v2(Bucket=stack.names.output_bucket)
        assert listing.get("KeyCount", 0) == 0


def test_the_sandbox_sees_only_the_artifacts_and_boto3():
    image = sandbox.prepare()
    probe = (
        "import importlib.util as u, sys;"
        "print([m for m in ('PIL','boto3','lambda_pkg','yaml','pulumi','moto','pipeline')"
        " if u.find_spec(m)])"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0]={image.paths!r}; {probe}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "['PIL', 'boto3', 'lambda_pkg']"


def test_a_file_missing_from_the_function_zip_fails_locally(tmp_path):
    # GIVEN the real artifacts, but a function directory without metadata.py
    image = sandbox.prepare()
    broken = tmp_path / "function" / "lambda_pkg"
    broken.mkdir(parents=True)
    for source in (image.function_dir / "lambda_pkg").glob("*.py"):
        if source.name != "metadata.py":
            (broken / source.name).write_bytes(source.read_bytes())
    crippled = sandbox.RuntimeImage(tmp_path / "function", image.layer_dir, image.runtime_dir)
    function = sandbox.FunctionProcess(crippled, {}, timeout_s=30)
    with pytest.raises(sandbox.InvocationError, match="did not start"):
        function.invoke({"Records": []})
