"""Least privilege, proven: the exact policy the Pulumi program produces, enforced by moto.

1. Run the program under Pulumi's mocks and capture the function role's inline policy
   document (and its trust policy) exactly as they would be sent to IAM.
2. In moto: create the buckets and table with the physical names the policy names, a role
   with exactly that inline policy, and assume it (as Lambda does) for session credentials.
3. With IAM enforcement on (`set_initial_no_auth_action_count(0)`: every request from then
   on is authenticated and authorised), run the handler with boto3 clients holding those
   credentials over a real JPEG: every rendition and the item are written; a delete removes
   them. Then show what the same credentials may not do.

What moto 5.2.5 enforces (read moto/core/authorization.py, moto/iam/access_control.py):
- S3: per action and per resource (`arn:aws:s3:::bucket/key`), so the object-level grants
  are tested for real. Conditions are not evaluated against request context.
- DynamoDB: per action only. moto authorises every DynamoDB request against the resource
  "*", which a table-scoped Allow never matches. `_dynamodb_checks_table_arns` teaches it
  the table ARN from the request's TableName (moto does the same itself for SQS via
  `_determine_resource`), so table scoping is enforced here too.
- EventBridge: per action only, like DynamoDB; `_events_checks_bus_arns` teaches it the
  bus ARN from each PutEvents entry's EventBusName, as AWS authorises it.
- CloudWatch Logs is not exercised: the Lambda runtime, not the handler, writes logs.
- Not modelled by moto: S3's 404-vs-403 for a missing key (which `s3:ListBucket` decides on
  AWS), bucket policies for authenticated principals, KMS key grants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from moto.dynamodb.responses import DynamoHandler
from moto.events.responses import EventsHandler

from lambda_pkg import wire
from lambda_pkg.handler import process_event
from lambda_pkg.profiles import PipelineConfig, Route, load_named
from lambda_pkg.records import TABLE_KEY, table_definition
from lambda_pkg.settings import Settings
from pipeline.program.stack import StackSettings
from tests.support import images
from tests.support.aws import load_event
from tests.support.pulumi_program import (
    BUCKET,
    EVENT_BUS,
    REGION,
    ROLE,
    ROLE_POLICY,
    TABLE,
    deploy,
)

# moto simulating IAM over every call: make test runs it. No pip build under the mocks.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fake_layer")]

ROUTES = (Route("thumbnail", prefix="avatars/"), Route("web", prefix="graphics/", suffix=".png"))


@dataclass
class Captured:
    """What the Pulumi program would create, as plain values."""

    policy: dict[str, Any]
    trust: dict[str, Any]
    input_bucket: str
    output_bucket: str
    table: str
    event_bus: str
    config: PipelineConfig


def capture(config: PipelineConfig) -> Captured:
    deployment = deploy(config=config, settings=StackSettings())
    mocks, names = deployment.mocks, deployment.names
    buckets = {r.name: r.outputs["bucket"] for r in mocks.of_type(BUCKET)}
    return Captured(
        policy=json.loads(mocks.one(ROLE_POLICY).inputs["policy"]),
        trust=json.loads(mocks.one(ROLE).inputs["assumeRolePolicy"]),
        input_bucket=buckets[names.input_bucket],
        output_bucket=buckets[names.output_bucket],
        table=mocks.one(TABLE).outputs["name"],
        event_bus=mocks.one(EVENT_BUS).outputs["name"],
        config=config,
    )


@pytest.fixture
def _dynamodb_checks_table_arns(monkeypatch: pytest.MonkeyPatch) -> None:
    def determine_resource(self: DynamoHandler) -> str:
        params = getattr(self, "params", None) or {}
        table = params.get("TableName")
        if not table:
            return "*"
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
        # AWS authorises a request on an index against the index's own ARN.
        return f"{arn}/index/{params['IndexName']}" if params.get("IndexName") else arn

    monkeypatch.setattr(DynamoHandler, "_determine_resource", determine_resource, raising=False)


@pytest.fixture
def _events_checks_bus_arns(monkeypatch: pytest.MonkeyPatch) -> None:
    def determine_resource(self: EventsHandler) -> str | list[str]:
        entries = self._get_param("Entries") or []
        buses = {entry.get("EventBusName") or "default" for entry in entries}
        if not buses:
            return "*"
        prefix = f"arn:aws:events:{self.region}:{self.current_account}:event-bus/"
        arns = sorted(bus if bus.startswith("arn:") else prefix + bus for bus in buses)
        return arns[0] if len(arns) == 1 else "*"  # one entry per call here

    monkeypatch.setattr(EventsHandler, "_determine_resource", determine_resource, raising=False)


@dataclass
class World:
    captured: Captured
    admin_s3: Any
    role_s3: Any
    role_dynamodb: Any
    role_events: Any

    def settings(self) -> Settings:
        captured = self.captured
        return Settings(
            captured.output_bucket, captured.table, captured.config, event_bus=captured.event_bus
        )


def build_world(captured: Captured) -> World:
    """Setup with no IAM enforcement (moto's default): resources, role, session credentials."""
    admin = boto3.session.Session(region_name=REGION)
    s3 = admin.client("s3")
    for bucket in (captured.input_bucket, captured.output_bucket):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    admin.client("dynamodb").create_table(TableName=captured.table, **table_definition())
    admin.client("events").create_event_bus(Name=captured.event_bus)
    iam = admin.client("iam")
    role = iam.create_role(
        RoleName="imgpipe-dev-processor-role", AssumeRolePolicyDocument=json.dumps(captured.trust)
    )["Role"]
    # Exactly the document the program sends, as an inline policy: nothing added.
    iam.put_role_policy(
        RoleName="imgpipe-dev-processor-role",
        PolicyName="imgpipe-dev-processor-policy",
        PolicyDocument=json.dumps(captured.policy),
    )
    credentials = admin.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="lambda")[
        "Credentials"
    ]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    clients = (session.client(service) for service in ("s3", "dynamodb", "events"))
    return World(captured, s3, *clients)


@pytest.fixture
def aws_iam(_dynamodb_checks_table_arns: None, _events_checks_bus_arns: None) -> Iterator[None]:
    with mock_aws():
        yield


def put_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    event = load_event("aws_docs_s3_ObjectCreated_Put_v2.1")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"].update(key=key, size=size, sequencer="0A1B2C3D4E5F")
    return event


def delete_event(bucket: str, key: str) -> dict[str, Any]:
    event = load_event("powertools_s3EventDeleteObject")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"].update(key=key, sequencer="0A1B2C3D4E60")
    return event


def denied(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    # moto answers DynamoDB denials in its generic XML, which botocore reads as code "403".
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403, caught.value
    assert error["Error"]["Code"] == "AccessDenied" or "not authorized" in str(caught.value)
    return str(caught.value)


CONFIGS = {
    "default catch-all": lambda: PipelineConfig.single(load_named("thumbnail")),
    "routed": lambda: PipelineConfig(
        profiles=(load_named("thumbnail"), load_named("web")), routes=ROUTES
    ),
}


@pytest.mark.parametrize(
    ("config_name", "key"),
    [("default catch-all", "input/photo.jpg"), ("routed", "graphics/logo.png")],
)
def test_the_generated_policy_is_enough_and_no_more(
    aws_iam: None, tmp_path: Path, config_name: str, key: str
) -> None:
    # GIVEN the exact policy the program produces, on a role, in moto
    captured = capture(CONFIGS[config_name]())
    world = build_world(captured)
    data = images.png(1200, 800) if key.endswith(".png") else images.jpeg(1920, 1080)
    world.admin_s3.put_object(Bucket=captured.input_bucket, Key=key, Body=data)

    @set_initial_no_auth_action_count(0)  # from here on, every request is authorised
    def enforced() -> None:
        s3, dynamodb = world.role_s3, world.role_dynamodb
        # WHEN the handler runs with the role's credentials over a real image
        event = put_event(captured.input_bucket, key, len(data))
        result = process_event(event, world.settings(), s3, dynamodb, events=world.role_events)
        # THEN it fully succeeds: every rendition and the item are written, the outcome
        # published (a refused PutEvents would have raised)
        assert result == {"processed": 1, "failed": 0, "skipped": 0}
        item = wire.decode(dynamodb.get_item(TableName=captured.table, Key=wire.key(key))["Item"])
        assert item["status"] == "ok"
        rendition_keys = [r["key"] for r in item["renditions"]]
        profile = captured.config.profile_for(key)
        # one object per format of each rendition (web's widths are [webp, jpeg])
        assert len(rendition_keys) == sum(len(r.formats) for r in profile.renditions)
        for rendition_key in rendition_keys:
            assert rendition_key.startswith("processed/")

        # AND writing to the input bucket is denied (originals are never changed)
        denied(s3.put_object, Bucket=captured.input_bucket, Key=key, Body=b"x")
        denied(s3.put_object, Bucket=captured.input_bucket, Key="processed/x.jpg", Body=b"x")
        denied(s3.delete_object, Bucket=captured.input_bucket, Key=key)
        # AND writing outside processed/ in the output bucket is denied
        denied(s3.put_object, Bucket=captured.output_bucket, Key="photo.jpg", Body=b"x")
        denied(s3.put_object, Bucket=captured.output_bucket, Key="processedX/a", Body=b"x")
        denied(s3.delete_object, Bucket=captured.output_bucket, Key="other/a.jpg")
        # AND renditions can be written but not read back (nothing needs to)
        denied(s3.get_object, Bucket=captured.output_bucket, Key=rendition_keys[0])
        # AND the table allows only the three item actions the handler uses
        denied(dynamodb.scan, TableName=captured.table)
        denied(dynamodb.delete_item, TableName=captured.table, Key=wire.key(key))
        denied(dynamodb.get_item, TableName="another-table", Key=wire.key(key))
        # AND events go to the stack's bus only
        entry = {"Source": "imgpipe", "DetailType": "Image Processed", "Detail": "{}"}
        denied(world.role_events.put_events, Entries=[entry])  # the default bus
        denied(world.role_events.put_events, Entries=[{**entry, "EventBusName": "other"}])
        denied(world.role_events.put_rule, Name="r", EventBusName=captured.event_bus)
        # AND Query only on the owner index, never on the table itself
        denied(
            dynamodb.query,
            TableName=captured.table,
            KeyConditionExpression=f"{TABLE_KEY} = :k",
            ExpressionAttributeValues={":k": {"S": key}},
        )

    @set_initial_no_auth_action_count(0)
    def enforced_delete() -> None:
        s3, dynamodb = world.role_s3, world.role_dynamodb
        # WHEN the original is deleted, the same credentials remove the renditions
        event = delete_event(captured.input_bucket, key)
        result = process_event(event, world.settings(), s3, dynamodb, events=world.role_events)
        assert result == {"processed": 1, "failed": 0, "skipped": 0}
        item = wire.decode(dynamodb.get_item(TableName=captured.table, Key=wire.key(key))["Item"])
        assert item["status"] == "deleted"

    enforced()
    original = world.admin_s3.get_object(Bucket=captured.input_bucket, Key=key)["Body"].read()
    assert original == data  # the function never changed it
    world.admin_s3.delete_object(Bucket=captured.input_bucket, Key=key)  # as the user does
    enforced_delete()
    # Outside enforcement, the admin view: renditions gone.
    listing = world.admin_s3.list_objects_v2(Bucket=captured.output_bucket)
    assert listing.get("KeyCount", 0) == 0


def test_routed_policy_cannot_read_keys_that_do_not_trigger(aws_iam: None) -> None:
    # GIVEN routes for avatars/* and graphics/*.png only
    captured = capture(CONFIGS["routed"]())
    world = build_world(captured)
    for key in ("avatars/me.jpg", "graphics/logo.png", "graphics/photo.jpg", "private/a.jpg"):
        world.admin_s3.put_object(Bucket=captured.input_bucket, Key=key, Body=b"data")

    @set_initial_no_auth_action_count(0)
    def enforced() -> None:
        s3 = world.role_s3
        # THEN exactly the triggering keys are readable
        for key in ("avatars/me.jpg", "graphics/logo.png"):
            assert s3.get_object(Bucket=captured.input_bucket, Key=key)["Body"].read() == b"data"
        for key in ("graphics/photo.jpg", "private/a.jpg"):
            denied(s3.get_object, Bucket=captured.input_bucket, Key=key)

    enforced()


def test_enforcement_is_real_a_role_without_the_policy_is_denied(aws_iam: None) -> None:
    # Guards the guard: if moto were not enforcing, the tests above would prove nothing.
    captured = capture(CONFIGS["default catch-all"]())
    captured.policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:::x"}
        ],
    }
    world = build_world(captured)
    world.admin_s3.put_object(Bucket=captured.input_bucket, Key="a.jpg", Body=b"x")

    @set_initial_no_auth_action_count(0)
    def enforced() -> None:
        denied(world.role_s3.get_object, Bucket=captured.input_bucket, Key="a.jpg")
        denied(
            world.role_dynamodb.get_item,
            TableName=captured.table,
            Key=wire.key("a.jpg"),
        )

    enforced()
