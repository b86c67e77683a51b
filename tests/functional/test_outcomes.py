"""Outcomes on EventBridge: each stored item announced once stored, never a stale one.

An SQS queue subscribed to the bus (a rule on `source: ["imgpipe"]`) is what an application
would read; moto delivers to it in-process.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambda_pkg import handler, outcomes, ownership, wire
from lambda_pkg.handler import process_event
from lambda_pkg.profiles import PipelineConfig, load_named
from lambda_pkg.settings import (
    ENV_EVENT_BUS,
    Settings,
    SettingsError,
    function_environment,
)
from tests.support import images
from tests.support.aws import (
    INPUT_BUCKET,
    OUTPUT_BUCKET,
    TABLE,
    delete_event,
    fresh_container,
    load_event,
    put_event,
)

BUS = "imgpipe-test-outcomes"
CREATED, DELETED, NEWER = "0055AED6DCD90281E5", "0055AED6DCD90281E6", "0055AED6DCD90281E7"


class Subscriber:
    """A bus with a rule on `source: ["imgpipe"]` that targets an SQS queue."""

    def __init__(self, bus: str = BUS) -> None:
        self.events = boto3.client("events", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        if bus != "default":
            self.events.create_event_bus(Name=bus)
        self.queue_url = self.sqs.create_queue(QueueName="app-outcomes")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        pattern = json.dumps({"source": [outcomes.SOURCE]})
        self.events.put_rule(Name="app", EventBusName=bus, EventPattern=pattern)
        self.events.put_targets(
            Rule="app", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )

    def received(self) -> list[dict[str, Any]]:
        """Every event delivered so far, oldest first, taken off the queue."""
        found: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


class FlakyEvents:
    """An events client whose first PutEvents fails: refused entries, or a raised error."""

    def __init__(self, real: Any, how: str) -> None:
        self.real, self.how, self.calls = real, how, 0

    def put_events(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls > 1:
            return self.real.put_events(**request)
        if self.how == "refused":
            entry = {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            return {"FailedEntryCount": 1, "Entries": [entry]}
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        raise ClientError(error, "PutEvents")


@pytest.fixture
def subscriber(aws) -> Subscriber:
    return Subscriber()


def settings(aws, profile: str = "thumbnail") -> Settings:
    base = aws.settings(profile)
    return Settings(base.output_bucket, base.metadata_table, base.config, event_bus=BUS)


def create(aws, key: str, data: bytes, sequencer: str = CREATED, events: Any = None) -> dict:
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, key, len(data), sequencer=sequencer)
    return process_event(event, settings(aws), aws.s3, aws.dynamodb, events=events)


def remove(aws, key: str, sequencer: str = DELETED) -> dict:
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key=key)
    event = delete_event(INPUT_BUCKET, key, sequencer)
    return process_event(event, settings(aws), aws.s3, aws.dynamodb)


def test_processed_failed_and_deleted_reach_a_subscribed_queue_with_the_item(aws, subscriber):
    # GIVEN a bus whose rule on source imgpipe feeds an SQS queue
    # WHEN a photo is processed, junk fails, and the photo's original is deleted
    create(aws, "input/photo.jpg", images.jpeg(1920, 1080))
    processed = wire.plain(aws.item("input/photo.jpg"))
    create(aws, "input/junk.png", b"this is not an image")
    failed = wire.plain(aws.item("input/junk.png"))
    remove(aws, "input/photo.jpg")
    deleted = wire.plain(aws.item("input/photo.jpg"))
    # THEN the queue holds three events from source imgpipe, in that order, each with the
    # stored item (plain JSON numbers, its revision included) as detail
    received = subscriber.received()
    assert [(e["source"], e["detail-type"]) for e in received] == [
        ("imgpipe", "Image Processed"),
        ("imgpipe", "Image Failed"),
        ("imgpipe", "Image Deleted"),
    ]
    assert [e["detail"] for e in received] == [processed, failed, deleted]
    assert received[0]["detail"]["renditions"][0]["key"] == "processed/thumb_photo.jpg"
    assert received[0]["detail"]["processed_width"] == 200
    assert received[1]["detail"]["error"]
    assert received[2]["detail"]["removed_renditions"][0]["key"] == "processed/thumb_photo.jpg"


@pytest.mark.parametrize("how", ["refused", "raised"])
def test_a_failed_publish_fails_the_record_and_the_retry_publishes(aws, subscriber, how):
    # GIVEN EventBridge refuses (FailedEntryCount 1) or fails (throttled) the first PutEvents
    flaky = FlakyEvents(subscriber.events, how)
    data = images.jpeg(640, 480)
    # WHEN the record is processed: the item is stored, the event is not
    expected = outcomes.PublishFailed if how == "refused" else ClientError
    with pytest.raises(expected):
        create(aws, "input/retried.jpg", data, events=flaky)
    first = aws.item("input/retried.jpg")
    assert first["status"] == "ok"
    assert subscriber.received() == []
    # AND Lambda retries the same event, which finds its own item already stored
    result = create(aws, "input/retried.jpg", data, events=flaky)
    # THEN the retry publishes, and what it announces is what the table now holds
    assert result["processed"] == 1
    (event,) = subscriber.received()
    assert event["detail-type"] == "Image Processed"
    assert event["detail"] == wire.plain(aws.item("input/retried.jpg"))
    assert event["detail"]["sequencer"] == first["sequencer"]


def test_an_event_older_than_the_stored_result_publishes_nothing(aws, subscriber):
    # GIVEN a newer upload already processed and announced
    create(aws, "input/raced.jpg", images.jpeg(800, 600), sequencer=NEWER)
    (announced,) = subscriber.received()
    assert announced["detail"]["sequencer"].startswith(NEWER)
    # WHEN an older create and an older delete of the same key arrive late
    create(aws, "input/raced.jpg", images.jpeg(400, 300), sequencer=CREATED)
    aws.s3.put_object(Bucket=INPUT_BUCKET, Key="input/raced.jpg", Body=images.jpeg(800, 600))
    older_delete = delete_event(INPUT_BUCKET, "input/raced.jpg", DELETED)
    process_event(older_delete, settings(aws), aws.s3, aws.dynamodb)
    # THEN neither announces anything: the table still holds the newer result
    assert subscriber.received() == []
    assert aws.item("input/raced.jpg")["revision"] == announced["detail"]["revision"]


def test_a_delete_that_overtakes_its_create_announces_the_tombstone_only(aws, subscriber):
    # GIVEN a delete handled before its create (the create then loses its write)
    remove(aws, "input/early.jpg", sequencer=DELETED)
    create(aws, "input/early.jpg", images.jpeg(300, 200), sequencer=CREATED)
    # THEN one event: the deleted item the table holds; the stale create announces nothing
    (event,) = subscriber.received()
    assert event["detail-type"] == "Image Deleted"
    assert event["detail"] == wire.plain(aws.item("input/early.jpg"))


def test_skipped_records_publish_nothing(aws, subscriber):
    # GIVEN S3's test event and one of our own outputs
    process_event(load_event("aws_docs_s3_TestEvent"), settings(aws), aws.s3, aws.dynamodb)
    own = put_event(OUTPUT_BUCKET, "processed/thumb_x.jpg", 10)
    process_event(own, settings(aws), aws.s3, aws.dynamodb)
    # THEN nothing was stored, so nothing is announced
    assert subscriber.received() == []


def test_the_entry_point_publishes_to_the_bus_its_environment_names(aws, monkeypatch):
    # GIVEN the function's environment as the Pulumi program sets it, on the default bus
    subscriber = Subscriber("default")
    env = function_environment(OUTPUT_BUCKET, TABLE, aws.settings().config)
    assert env[ENV_EVENT_BUS] == "default"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fresh_container()
    data = images.jpeg(1920, 1080)
    aws.upload("input/photo.jpg", data)
    # WHEN Lambda invokes the entry point with the AWS docs' event
    handler.handler(put_event(INPUT_BUCKET, "input/photo.jpg", len(data)), None)
    fresh_container()
    # THEN the outcome is on the default bus
    (event,) = subscriber.received()
    assert event["detail"]["image_name"] == "input/photo.jpg"


def test_the_environment_must_name_a_bus():
    config = PipelineConfig.single(load_named("thumbnail"))
    env = function_environment(OUTPUT_BUCKET, TABLE, config, event_bus="my-bus")
    assert Settings.from_env(env).event_bus == "my-bus"
    with pytest.raises(SettingsError, match=ENV_EVENT_BUS):
        Settings.from_env({k: v for k, v in env.items() if k != ENV_EVENT_BUS})


def test_an_item_too_large_for_one_event_keeps_its_scalars_and_says_what_is_left_out():
    # GIVEN an item whose renditions list alone passes EventBridge's 256 KB entry limit
    item = {
        "image_name": "input/huge.jpg",
        "status": "ok",
        "revision": "r1",
        "sequencer": CREATED,
        "original_width": wire.decode({"n": {"N": "4000"}})["n"],  # a Decimal, as read
        "error": "x" * 5000,
        "renditions": [{"key": f"processed/{i:06d}.jpg", "width": 1} for i in range(9000)],
    }
    assert len(outcomes.as_json(item).encode()) > outcomes.MAX_ENTRY_BYTES
    # WHEN it becomes an entry
    entry = outcomes.event_entry(item, BUS)
    # THEN the entry fits, names the attributes left out or cut, and keeps the rest
    assert len(entry["Detail"].encode()) < outcomes.MAX_ENTRY_BYTES
    detail = json.loads(entry["Detail"])
    assert detail["detail_truncated"] == ["error", "renditions"]
    assert detail["original_width"] == 4000 and detail["revision"] == "r1"
    assert len(detail["error"]) == outcomes.TRUNCATED_STRING_CHARS
    # AND an ordinary item is sent whole
    small = {**item, "renditions": item["renditions"][:7], "error": "bad"}
    assert json.loads(outcomes.event_entry(small, BUS)["Detail"]) == wire.plain(small)


def test_a_result_replaced_during_its_clean_up_is_not_announced(aws, subscriber, monkeypatch):
    # GIVEN a processed photo whose original is then deleted
    create(aws, "input/busy.jpg", images.jpeg(640, 480))
    subscriber.received()
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="input/busy.jpg")
    # AND while the delete removes the renditions, the photo is uploaded again and that
    # newer event is handled to the end
    real = ownership.remove_unlisted
    newer_handled: list[bool] = []

    def upload_meanwhile(*args: Any, **kwargs: Any) -> int:
        if not newer_handled:
            newer_handled.append(True)
            create(aws, "input/busy.jpg", images.jpeg(800, 600), sequencer=NEWER)
        return real(*args, **kwargs)

    monkeypatch.setattr(ownership, "remove_unlisted", upload_meanwhile)
    event = delete_event(INPUT_BUCKET, "input/busy.jpg", DELETED)
    process_event(event, settings(aws), aws.s3, aws.dynamodb)
    # THEN only the newer upload is announced: the delete's item was replaced before its turn
    (event,) = subscriber.received()
    assert event["detail-type"] == "Image Processed"
    assert event["detail"] == wire.plain(aws.item("input/busy.jpg"))
