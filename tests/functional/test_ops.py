"""The everyday commands against a deployed stack: Lambda calls checked with botocore's
Stubber, the table, buckets and dead-letter queue on moto."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import quote_plus, unquote_plus

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambda_pkg import records, wire
from lambda_pkg.events import s3_event, s3_records
from lambda_pkg.profiles import PipelineConfig, Profile, load_named
from lambda_pkg.records import table_definition
from pipeline.aws import client
from pipeline.cli import ops
from pipeline.cli.targets import Target
from pipeline.program.names import resource_names


@pytest.fixture
def deployed_target() -> Target:
    return Target(names=resource_names("imgpipe", "prod"))


def test_current_config_is_read_from_the_deployed_function(monkeypatch, deployed_target):
    config = PipelineConfig.single(load_named("web"))
    lambda_client = client("lambda", None, region="eu-west-1")
    stub = Stubber(lambda_client)
    stub.add_response(
        "get_function_configuration",
        {"Environment": {"Variables": {"PROFILE_CONFIG": config.to_json()}}},
        {"FunctionName": "imgpipe-prod-processor"},
    )
    monkeypatch.setattr(ops, "aws", lambda target, service: lambda_client)
    with stub:
        assert ops.current_config(deployed_target) == config


def test_reprocess_against_aws_invokes_asynchronously_with_s3_shaped_events(
    monkeypatch, deployed_target
):
    lambda_client = client("lambda", None, region="eu-west-1")
    stub = Stubber(lambda_client)
    keys = [f"input/photo {n}+.jpg" for n in range(25)]
    events = [
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "imgpipe-prod-input"},
                        "object": {"key": quote_plus(key), "size": 10},
                    },
                }
            ]
        }
        for key in keys
    ]
    for event in events:
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": "imgpipe-prod-processor",
                "InvocationType": "Event",
                "Payload": json.dumps(event).encode(),
            },
        )
    monkeypatch.setattr(ops, "aws", lambda target, service: lambda_client)
    done = []
    with stub:
        # one worker keeps the stubbed responses in order; the pool size is the bound
        ops.send_events(deployed_target, events, done.append, parallel=1)
        stub.assert_no_pending_responses()
    assert done == keys


def test_reprocess_events_decode_back_to_the_same_key():
    for key in ("a b+c%d/é.jpg", "plain.jpg"):
        event = s3_event("bucket", key, 5, "00AB", "ObjectCreated:Put")
        (record,) = s3_records(event)
        assert record.key == key
        assert unquote_plus(event["Records"][0]["s3"]["object"]["key"]) == key


# -- against moto in-process: the table's two kinds of item, renditions, the DLQ ----------


@pytest.fixture
def world(deployed_target):
    """The deployed target's bucket, table and DLQ, on moto."""
    with mock_aws():
        s3, dynamodb = client("s3", None), client("dynamodb", None)
        names = deployed_target.names
        for bucket in (names.input_bucket, names.output_bucket):
            s3.create_bucket(Bucket=bucket)
        dynamodb.create_table(TableName=names.metadata_table, **table_definition())
        queue = client("sqs", None).create_queue(QueueName=names.dead_letter_queue)
        yield dataclasses.replace(deployed_target, dead_letter_queue_url=queue["QueueUrl"])


def put_image(target: Target, key: str, profile: Profile, renditions: list[str], **extra) -> None:
    """An input object and its `ok` item listing `renditions` (not written to the bucket)."""
    client("s3", None).put_object(Bucket=target.names.input_bucket, Key=key, Body=b"jpeg")
    item = {
        "image_name": key,
        "status": "ok",
        "profile_hash": profile.content_hash(),
        "sequencer": "00AB",
        "renditions": [{"key": k, "width": 200, "height": 100, "bytes": 4} for k in renditions],
        **extra,
    }
    put_item(target, item)


def put_item(target: Target, item: dict) -> None:
    client("dynamodb", None).put_item(TableName=target.names.metadata_table, Item=wire.encode(item))


def put_outputs(target: Target, *keys: str) -> None:
    for key in keys:
        client("s3", None).put_object(Bucket=target.names.output_bucket, Key=key, Body=b"out")


def test_items_and_reprocess_leave_the_owner_records_out(world):
    # GIVEN an image, its rendition, and the owner record the function writes for it
    thumbnail = load_named("thumbnail")
    put_image(world, "a.jpg", thumbnail, ["processed/thumb_a.jpg"])
    put_outputs(world, "processed/thumb_a.jpg")
    owner = {
        "image_name": records.owner_record_name("processed/thumb_a.jpg"),
        "record_type": records.RECORD_TYPE_OWNER,
        "owner": "a.jpg",
    }
    put_item(world, owner)
    # THEN the list of images holds the image only, and reprocess finds it current
    assert [entry["image_name"] for entry in ops.items(world)] == ["a.jpg"]
    plan = ops.plan_reprocess(world, PipelineConfig.single(thumbnail), everything=False)
    assert (plan.events, plan.current, plan.unrouted) == ([], 1, 0)
    # AND the owner record is still in the table (left out, not removed)
    assert ops.item(world, owner["image_name"])["owner"] == "a.jpg"


def test_reprocess_reruns_current_items_whose_renditions_are_missing(world):
    # GIVEN three current items: renditions all there, one of two gone, and a failed one
    web = load_named("web")
    put_image(world, "whole.jpg", web, ["processed/whole_1.jpg", "processed/whole_2.jpg"])
    put_image(world, "torn.jpg", web, ["processed/torn_1.jpg", "processed/torn_2.jpg"])
    put_image(world, "bad.jpg", web, [], status="failed", error="not an image")
    put_outputs(world, "processed/whole_1.jpg", "processed/whole_2.jpg", "processed/torn_1.jpg")
    config = PipelineConfig.single(web)
    # WHEN reprocess plans (by default)
    plan = ops.plan_reprocess(world, config, everything=False)
    # THEN only the one with a missing rendition is re-run, with its stored sequencer
    assert [record.key for event in plan.events for record in s3_records(event)] == ["torn.jpg"]
    assert [r.sequencer for r in s3_records(plan.events[0])] == ["00AB".ljust(64, "0")]
    assert (plan.current, plan.missing) == (2, 1)
    assert len(ops.plan_reprocess(world, config, everything=True).events) == 3


def test_dead_lettered_peeks_at_each_keys_latest_failure_record(world):
    # GIVEN two failure records for one key (the later after a redrive) and one for another
    sqs = client("sqs", None)
    for stamp, key, message in [
        ("2026-01-02T00:00:00.000000Z", "a.jpg", "second"),
        ("2026-01-01T00:00:00.000000Z", "a.jpg", "first"),
        ("2026-01-01T00:00:00.000000Z", "b.jpg", "only"),
    ]:
        record = {
            "timestamp": stamp,
            "requestPayload": s3_event("in", key, 1, "00", "ObjectCreated:Put"),
            "responsePayload": {"errorType": "RuntimeError", "errorMessage": message},
        }
        sqs.send_message(QueueUrl=world.dead_letter_queue_url, MessageBody=json.dumps(record))
    # THEN each key maps to its latest record, and every record is still on the queue
    latest = ops.dead_lettered(world)
    assert {key: letter.error for key, letter in latest.items()} == {
        "a.jpg": "RuntimeError: second",
        "b.jpg": "RuntimeError: only",
    }
    assert len(ops.dead_letters(world, hold_s=0)) == 3
    # AND a stack without a dead-letter queue output has none to show
    assert ops.dead_lettered(dataclasses.replace(world, dead_letter_queue_url=None)) == {}


def test_reprocess_retries_collision_losers_and_deleted_items_whose_original_is_back(world):
    # GIVEN current items: one that lost a key collision, one failed as not an image, and
    # one marked deleted whose original is there again (an undelete in a versioned bucket)
    web = load_named("web")
    put_image(world, "loser.jpg", web, [], status="failed", error_type="OutputKeyTaken")
    put_image(world, "junk.jpg", web, [], status="failed", error_type="ImageRejected")
    put_image(world, "back.jpg", web, [], status="deleted")
    # WHEN reprocess plans (by default)
    plan = ops.plan_reprocess(world, PipelineConfig.single(web), everything=False)
    # THEN the collision loser and the deleted-but-present one are re-run; junk stays junk
    keys = sorted(record.key for event in plan.events for record in s3_records(event))
    assert keys == ["back.jpg", "loser.jpg"]
    assert (plan.current, plan.retried, plan.missing) == (1, 2, 0)


def test_reprocess_of_an_input_without_item_carries_the_sequencer_its_claims_hold(world):
    # GIVEN an input whose only trace is the owner records an attempt that died after
    # claiming left (the event then ended on the dead-letter queue)
    web = load_named("web")
    client("s3", None).put_object(Bucket=world.names.input_bucket, Key="dead.jpg", Body=b"x")
    for output_key, sequencer in [("processed/dead.jpg/a.webp", "00AA"), ("processed/b", "00AC")]:
        put_item(
            world,
            {
                "image_name": records.owner_record_name(output_key),
                "record_type": records.RECORD_TYPE_OWNER,
                "output_key": output_key,
                "owner": "dead.jpg",
                "sequencer": sequencer,
            },
        )
    # WHEN reprocess plans, THEN the event carries the newest of those sequencers, so the
    # handler does not take itself for an older event and step aside
    plan = ops.plan_reprocess(world, PipelineConfig.single(web), everything=False)
    assert [r.sequencer for e in plan.events for r in s3_records(e)] == ["00AC".ljust(64, "0")]
