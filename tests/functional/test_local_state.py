"""The local stack's saved state (pipeline/local/state.py) on moto's server in this process:
a snapshot restored into newly provisioned resources, written once per change, read back
whole or refused in one line."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest

from lambda_pkg import wire
from lambda_pkg.events import s3_records
from lambda_pkg.profiles import PipelineConfig, Route, load_named
from pipeline.aws import client
from pipeline.cli import commands
from pipeline.cli.targets import PROJECT
from pipeline.local import emulator, provision, state
from pipeline.local.emulator import Emulator, RequestGate
from pipeline.program.names import ResourceNames, resource_names
from tests.support import images

CONFIG = PipelineConfig.single(load_named("thumbnail"))
_stacks = itertools.count()


@pytest.fixture(scope="module")
def endpoint():
    with Emulator() as server:
        yield server.endpoint


def new_stack(endpoint: str, config: PipelineConfig = CONFIG) -> ResourceNames:
    """A stack's resources, as `imgpipe local` provisions them, under names of its own."""
    names = resource_names(PROJECT, f"state{next(_stacks)}")
    provision.provision(endpoint, names, config.routes, visibility_timeout_s=30)
    return names


def bodies(endpoint: str, queue: str) -> list[str]:
    """Every visible message's body (left visible), without moto's s3:TestEvent."""
    sqs = client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    found = [m["Body"] for m in messages.get("Messages", [])]
    return sorted(body for body in found if '"s3:TestEvent"' not in body)


def contents(endpoint: str, names: ResourceNames) -> dict[str, object]:
    """What a user of the stack can see: objects (bytes, type, metadata), items, queues."""
    s3, dynamodb = client("s3", endpoint), client("dynamodb", endpoint)
    objects = {}
    for role, bucket in (("input", names.input_bucket), ("output", names.output_bucket)):
        for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=entry["Key"])
            objects[(role, entry["Key"])] = (
                got["Body"].read(),
                got["ContentType"],
                got["Metadata"],
                got["LastModified"],
            )
    items = dynamodb.scan(TableName=names.metadata_table)["Items"]
    return {
        "objects": objects,
        "items": sorted((wire.decode(item) for item in items), key=lambda i: i["image_name"]),
        "events": [s3_records(json.loads(b))[0].key for b in bodies(endpoint, names.event_queue)],
        "dead_letters": bodies(endpoint, names.dead_letter_queue),
    }


def populate(endpoint: str, names: ResourceNames) -> None:
    """An image done (original, rendition, item), one uploaded whose event a worker holds,
    and a failure record on the dead-letter queue."""
    s3, dynamodb, sqs = (client(s, endpoint) for s in ("s3", "dynamodb", "sqs"))
    s3.put_object(
        Bucket=names.output_bucket,
        Key="processed/thumb_done.jpg",
        Body=images.jpeg(200, 150),
        ContentType="image/jpeg",
    )
    dynamodb.put_item(
        TableName=names.metadata_table,
        Item=wire.encode({"image_name": "input/done.jpg", "status": "ok", "original_width": 640}),
    )
    s3.put_object(
        Bucket=names.input_bucket,
        Key="input/in flight.jpg",
        Body=images.jpeg(64, 48),
        Metadata={"album": "beach"},
    )
    events_url = sqs.get_queue_url(QueueName=names.event_queue)["QueueUrl"]
    held = sqs.receive_message(QueueUrl=events_url, MaxNumberOfMessages=10, VisibilityTimeout=600)
    assert any("in+flight" in m["Body"] for m in held["Messages"]), "a worker holds the event"
    dead_letters_url = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=dead_letters_url, MessageBody=json.dumps({"requestPayload": {}}))


def restore_into(
    endpoint: str, directory, config: PipelineConfig = CONFIG
) -> tuple[ResourceNames, state.Restored]:
    names = new_stack(endpoint, config)
    restored = state.Snapshotter(directory, names).restore(state.load(directory), config)
    return names, restored


def test_a_snapshot_restores_objects_items_and_both_queues_into_new_resources(endpoint, tmp_path):
    # GIVEN a stack with a finished image, an upload in flight and a dead letter
    names = new_stack(endpoint)
    populate(endpoint, names)
    before = contents(endpoint, names)
    assert before["events"] == [], "the upload's event is held by a worker"
    # WHEN it is saved and restored into another stack's newly provisioned resources
    assert state.Snapshotter(tmp_path, names).snapshot()
    restored_names, restored = restore_into(endpoint, tmp_path)
    after = contents(endpoint, restored_names)
    # THEN every object (bytes, type, metadata, time), item and dead letter is back
    assert after["objects"] == before["objects"] and len(after["objects"]) == 2
    assert after["items"] == before["items"] and after["dead_letters"] == before["dead_letters"]
    # AND the event a worker held is visible again: the image is not silently lost
    assert after["events"] == ["input/in flight.jpg"]
    assert (restored.objects, restored.items, restored.queued) == (
        2,
        1,
        {"events": 2, "dead_letters": 1},  # the held event and moto's s3:TestEvent
    )
    assert restored.fallback == "" and "2 objects, 1 items" in restored.summary()


def test_new_events_after_a_restore_are_newer_than_every_restored_one(endpoint, tmp_path):
    # GIVEN a snapshot whose sequencers are ahead of this clock (a clock that went back)
    emulator.stamp_sequencers()
    names = new_stack(endpoint)
    state.Snapshotter(tmp_path, names).snapshot()
    ahead = time.time_ns() + 3600 * 10**9
    body = state.load(tmp_path).body
    body["sequencer"] = ahead
    (tmp_path / state.MANIFEST).write_bytes(state.encode_manifest(body))
    # WHEN it is restored and an image uploaded
    restored_names, _ = restore_into(endpoint, tmp_path)
    client("s3", endpoint).put_object(Bucket=restored_names.input_bucket, Key="new.jpg", Body=b"x")
    # THEN its event's sequencer is greater than any the restored items can hold
    (event,) = (json.loads(b) for b in bodies(endpoint, restored_names.event_queue))
    assert int(s3_records(event)[0].sequencer, 16) > ahead


def test_a_snapshot_is_written_only_after_a_change_and_each_body_once(endpoint, tmp_path):
    names = new_stack(endpoint)
    s3 = client("s3", endpoint)
    snapshots = state.Snapshotter(tmp_path, names)
    s3.put_object(Bucket=names.input_bucket, Key="a.jpg", Body=b"first")
    assert snapshots.snapshot()
    (blob,) = (tmp_path / state.BLOBS).iterdir()
    written = blob.stat().st_mtime_ns
    # WHEN nothing changes, or only reads and SQS polls happen
    s3.get_object(Bucket=names.input_bucket, Key="a.jpg")
    sqs = client("sqs", endpoint)
    sqs.receive_message(QueueUrl=sqs.get_queue_url(QueueName=names.event_queue)["QueueUrl"])
    # THEN no snapshot is written
    assert not snapshots.snapshot()
    # WHEN another object arrives, the first one's body is not written again
    s3.put_object(Bucket=names.input_bucket, Key="b.jpg", Body=b"second")
    assert snapshots.snapshot()
    assert blob.stat().st_mtime_ns == written
    assert len(list((tmp_path / state.BLOBS).iterdir())) == 2
    # AND a deleted object's body goes once neither snapshot on disk names it
    s3.delete_object(Bucket=names.input_bucket, Key="a.jpg")
    assert snapshots.snapshot() and blob.exists(), "the previous snapshot still names it"
    s3.put_object(Bucket=names.input_bucket, Key="c.jpg", Body=b"third")
    assert snapshots.snapshot() and not blob.exists()


def test_a_snapshot_that_failed_to_write_is_tried_again_without_a_new_change(
    endpoint, tmp_path, monkeypatch
):
    names = new_stack(endpoint)
    client("s3", endpoint).put_object(Bucket=names.input_bucket, Key="a.jpg", Body=b"a")
    snapshots = state.Snapshotter(tmp_path, names)
    write_file = state._write_file

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state, "_write_file", disk_full)
    with pytest.raises(OSError):
        snapshots.snapshot()
    monkeypatch.setattr(state, "_write_file", write_file)
    assert snapshots.snapshot()
    assert [e["key"] for e in state.load(tmp_path).body["buckets"]["input"]] == ["a.jpg"]


def test_a_full_disk_is_one_line_once_not_a_traceback_every_tick(
    endpoint, tmp_path, monkeypatch, caplog
):
    # GIVEN a stack whose disk is full: every snapshot fails
    names = new_stack(endpoint)
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=names.input_bucket, Key="a.jpg", Body=b"a")
    snapshots = state.Snapshotter(tmp_path, names)
    fsync = state.os.fsync

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state.os, "fsync", disk_full)
    # WHEN the timer tries twice, a new upload in between, and the stop once more
    with caplog.at_level("INFO", logger="imgpipe.local"):
        snapshots.save_or_say_why()
        s3.put_object(Bucket=names.input_bucket, Key="b.jpg", Body=b"b")
        snapshots.save_or_say_why()
        snapshots.save_or_say_why()
        # THEN it said so once, in one line, and left no half-written file behind
        (failed,) = caplog.records
        assert failed.exc_info is None and "No space left on device" in failed.getMessage()
        assert not [p for p in tmp_path.rglob("*") if p.is_file()]
        # AND once there is room again it says that the state is saved again
        monkeypatch.setattr(state.os, "fsync", fsync)
        snapshots.save_or_say_why()
    assert len(caplog.records) == 2 and "saved again" in caplog.records[1].getMessage()
    assert {e["key"] for e in state.load(tmp_path).body["buckets"]["input"]} == {"a.jpg", "b.jpg"}


def test_a_stack_that_never_started_saving_does_not_write_over_the_saved_state(endpoint, tmp_path):
    # GIVEN a good snapshot, and a start-up that failed half-way through its restore
    names = new_stack(endpoint)
    client("s3", endpoint).put_object(Bucket=names.input_bucket, Key="a.jpg", Body=b"a")
    state.Snapshotter(tmp_path, names).snapshot()
    saved = (tmp_path / state.MANIFEST).read_bytes()
    half_restored = state.Snapshotter(tmp_path, new_stack(endpoint))
    # WHEN the stack stops
    half_restored.stop()
    # THEN the saved state is as it was, and there is no fallback made of the empty stack
    assert (tmp_path / state.MANIFEST).read_bytes() == saved
    assert not (tmp_path / state.PREVIOUS).exists()


def test_an_unreadable_snapshot_falls_back_to_the_previous_one(endpoint, tmp_path):
    # GIVEN two snapshots, the newest cut short (a disk that filled up, a bad copy)
    names = new_stack(endpoint)
    s3 = client("s3", endpoint)
    snapshots = state.Snapshotter(tmp_path, names)
    s3.put_object(Bucket=names.input_bucket, Key="kept.jpg", Body=b"kept")
    snapshots.snapshot()
    s3.put_object(Bucket=names.input_bucket, Key="newer.jpg", Body=b"newer")
    snapshots.snapshot()
    manifest = tmp_path / state.MANIFEST
    manifest.write_bytes(manifest.read_bytes()[:-40])
    # WHEN it is restored
    restored_names, restored = restore_into(endpoint, tmp_path)
    # THEN the previous snapshot is, and the summary says why
    assert "checksum mismatch" in restored.fallback
    assert "the newest snapshot was unreadable" in restored.summary()
    listing = s3.list_objects_v2(Bucket=restored_names.input_bucket)["Contents"]
    assert [entry["Key"] for entry in listing] == ["kept.jpg"]


@pytest.mark.parametrize("damage", ["truncate", "missing blob", "changed blob", "not ours"])
def test_a_snapshot_with_no_whole_fallback_is_refused_in_one_line(endpoint, tmp_path, damage):
    names = new_stack(endpoint)
    client("s3", endpoint).put_object(Bucket=names.input_bucket, Key="a.jpg", Body=b"a")
    state.Snapshotter(tmp_path, names).snapshot()
    manifest = tmp_path / state.MANIFEST
    (blob,) = (tmp_path / state.BLOBS).iterdir()
    if damage == "truncate":
        manifest.write_bytes(manifest.read_bytes()[:100])
    elif damage == "missing blob":
        blob.unlink()
    elif damage == "changed blob":
        blob.write_bytes(b"b")
    else:
        manifest.write_text('{"buckets": {}}')
    with pytest.raises(state.StateError) as refused:
        state.load(tmp_path)
    message = str(refused.value)
    assert "\n" not in message and "--fresh" in message and str(tmp_path) in message


def test_imgpipe_local_says_so_in_one_line_when_the_state_is_unreadable(tmp_path, capsys):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / state.MANIFEST).write_bytes(b"imgpipe-local-state 1 sha256=00\n{")
    assert commands.main(["local", "--state-dir", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("imgpipe: the saved local state is unreadable (")
    assert "--fresh" in line


def test_blobs_no_manifest_names_are_removed_at_start(endpoint, tmp_path):
    # GIVEN a snapshot killed after writing a body, before its manifest was renamed
    names = new_stack(endpoint)
    client("s3", endpoint).put_object(Bucket=names.input_bucket, Key="a.jpg", Body=b"a")
    state.Snapshotter(tmp_path, names).snapshot()
    (tmp_path / state.BLOBS / ("f" * 64)).write_bytes(b"orphan")
    # WHEN a stack starts saving there
    snapshots = state.Snapshotter(tmp_path, names).start()
    snapshots.stop()
    # THEN only the named body is left
    assert [p.name for p in (tmp_path / state.BLOBS).iterdir()] == list(
        state.blob_names(state.load(tmp_path).body)
    )


def test_inputs_the_old_routes_did_not_cover_are_reported_not_processed(endpoint, tmp_path):
    # GIVEN a stack routing only avatars/, with an upload outside it (no event, no item)
    avatars = PipelineConfig(profiles=CONFIG.profiles, routes=(Route("thumbnail", "avatars/"),))
    names = new_stack(endpoint, avatars)
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=names.input_bucket, Key="elsewhere/a.jpg", Body=b"a")
    state.Snapshotter(tmp_path, names).snapshot()
    # WHEN it is restored with the same routes, nothing is unaccounted for
    assert restore_into(endpoint, tmp_path, avatars)[1].unaccounted == []
    # WHEN it is restored after the routes changed to a catch-all
    restored_names, restored = restore_into(endpoint, tmp_path, CONFIG)
    # THEN the restore still works, names the input and leaves it to `imgpipe reprocess`
    assert restored.unaccounted == ["elsewhere/a.jpg"]
    assert "`imgpipe reprocess` processes them" in restored.summary()
    assert bodies(endpoint, restored_names.event_queue) == []


def test_fresh_sets_the_saved_state_aside(tmp_path):
    directory = tmp_path / "state"
    assert state.set_aside(directory) is None
    directory.mkdir()
    (directory / state.MANIFEST).write_text("saved")
    aside = state.set_aside(directory)
    assert not directory.exists() and (aside / state.MANIFEST).read_text() == "saved"


def test_a_pause_waits_for_requests_inside_and_holds_new_ones():
    gate = RequestGate()
    inside, entered, paused = threading.Event(), threading.Event(), threading.Event()

    def request(started: threading.Event, hold: float) -> None:
        with gate.request(changes_state=True):
            started.set()
            time.sleep(hold)

    first = threading.Thread(target=request, args=(inside, 0.3))
    first.start()
    inside.wait()
    with gate.paused():
        paused.set()
        assert gate.changes == 1, "the request inside finished before the pause began"
        second = threading.Thread(target=request, args=(entered, 0))
        second.start()
        assert not entered.wait(0.2), "a new request waits at the door"
    assert entered.wait(5)
    first.join()
    second.join()
    assert gate.changes == 2


@pytest.mark.parametrize(
    ("method", "target", "changes"),
    [
        ("GET", "", False),
        ("HEAD", "", False),
        ("PUT", "", True),
        ("DELETE", "", True),
        ("POST", "AmazonSQS.ReceiveMessage", False),
        ("POST", "AmazonSQS.ChangeMessageVisibility", False),
        ("POST", "AmazonSQS.SendMessage", True),
        ("POST", "AmazonSQS.DeleteMessage", True),
        ("POST", "DynamoDB_20120810.Scan", False),
        ("POST", "DynamoDB_20120810.TransactWriteItems", True),
    ],
)
def test_which_requests_count_as_changes(method, target, changes):
    environ = {"REQUEST_METHOD": method, "HTTP_X_AMZ_TARGET": target}
    assert emulator._changes_state(environ) is changes
