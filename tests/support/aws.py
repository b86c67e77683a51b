"""The function's AWS for the tests: moto buckets and table shaped as the program makes
them, the real S3 event JSON in tests/events, and a fresh Lambda container on demand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from lambda_pkg import clients, handler, wire
from lambda_pkg.profiles import PipelineConfig, load_named
from lambda_pkg.records import table_definition
from lambda_pkg.settings import Settings

EVENTS = Path(__file__).resolve().parents[1] / "events"
INPUT_BUCKET = "imgpipe-test-input"
OUTPUT_BUCKET = "imgpipe-test-output"
TABLE = "imgpipe-test-metadata"
KMS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def put_event(bucket: str, key_as_sent: str, size: int, sequencer: str = "0055AED6DCD90281E5"):
    """The AWS docs' real ObjectCreated:Put event, pointed at one object."""
    event = load_event("aws_docs_s3_ObjectCreated_Put_v2.1")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"].update(key=key_as_sent, size=size, sequencer=sequencer)
    return event


def delete_event(bucket: str, key_as_sent: str, sequencer: str) -> dict[str, Any]:
    """Powertools' real ObjectRemoved:Delete event, pointed at one object."""
    event = load_event("powertools_s3EventDeleteObject")
    record = event["Records"][0]
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"].update(key=key_as_sent, sequencer=sequencer)
    return event


def fresh_container() -> None:
    """Start the entry point over as a new Lambda container would: settings read from the
    environment again, clients made again."""
    handler._settings.cache_clear()
    clients.client.cache_clear()


class AwsWorld:
    """Moto-backed buckets and table, shaped as the Pulumi program creates them."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        self.s3.create_bucket(Bucket=INPUT_BUCKET)
        self.s3.create_bucket(Bucket=OUTPUT_BUCKET)
        self.dynamodb.create_table(TableName=TABLE, **table_definition())

    def settings(self, profile: str = "thumbnail") -> Settings:
        return Settings(OUTPUT_BUCKET, TABLE, PipelineConfig.single(load_named(profile)))

    def upload(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=data)

    def item(self, key: str) -> dict[str, Any] | None:
        raw = self.raw_item(key)
        return None if raw is None else wire.decode(raw)

    def raw_item(self, key: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(TableName=TABLE, Key=wire.key(key)).get("Item")

    def output(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read()

    def output_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=OUTPUT_BUCKET)
        return sorted(obj["Key"] for obj in listing.get("Contents", []))
