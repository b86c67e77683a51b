"""The everyday commands against a deployed stack: Lambda calls checked with botocore's Stubber."""

from __future__ import annotations

import json
from urllib.parse import quote_plus, unquote_plus

import pytest
from botocore.stub import Stubber

from lambda_pkg.events import s3_records
from lambda_pkg.profiles import PipelineConfig, load_named
from pipeline import ops
from pipeline.local.emulator import client
from pipeline.stack import resource_names
from pipeline.targets import Target


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
    from lambda_pkg.events import s3_event

    for key in ("a b+c%d/é.jpg", "plain.jpg"):
        event = s3_event("bucket", key, 5, "00AB", "ObjectCreated:Put")
        (record,) = s3_records(event)
        assert record.key == key
        assert unquote_plus(event["Records"][0]["s3"]["object"]["key"]) == key
