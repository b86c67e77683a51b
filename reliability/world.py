"""The handler against moto in this process: buckets and table as the Pulumi program makes
them, and a real S3 event per upload. What the hostile-input and ordering checks drive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote_plus

import boto3

from lambda_pkg import wire
from lambda_pkg.events import s3_event
from lambda_pkg.handler import process_event
from lambda_pkg.outcomes import SOURCE
from lambda_pkg.profiles import PipelineConfig, Profile
from lambda_pkg.records import table_definition
from lambda_pkg.settings import Settings

INPUT_BUCKET = "imgpipe-rel-input"
OUTPUT_BUCKET = "imgpipe-rel-output"
TABLE = "imgpipe-rel-metadata"
EVENT_BUS = "imgpipe-rel-outcomes"


class World:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
            self.s3.create_bucket(Bucket=bucket)
        self.dynamodb.create_table(TableName=TABLE, **table_definition())
        self.events = boto3.client("events", region_name="us-east-1")
        self._announced = self._subscribe()

    def _subscribe(self) -> str:
        """The stack's bus, with an application's queue subscribed to the outcomes."""
        sqs = boto3.client("sqs", region_name="us-east-1")
        self.events.create_event_bus(Name=EVENT_BUS)
        url = sqs.create_queue(QueueName="imgpipe-rel-announced")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        pattern = json.dumps({"source": [SOURCE]})
        self.events.put_rule(Name="announced", EventBusName=EVENT_BUS, EventPattern=pattern)
        target = {"Id": "queue", "Arn": queue_arn["Attributes"]["QueueArn"]}
        self.events.put_targets(Rule="announced", EventBusName=EVENT_BUS, Targets=[target])
        return url

    def announced(self) -> list[dict[str, Any]]:
        """The events published since the last call, oldest first."""
        sqs, found = boto3.client("sqs", region_name="us-east-1"), []
        while messages := sqs.receive_message(QueueUrl=self._announced, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._announced, ReceiptHandle=message["ReceiptHandle"])
        return found

    def settings(self, profile: Profile, publish: bool = False) -> Settings:
        """With `publish`, outcomes go to the bus (pass `events` to process_event)."""
        bus = EVENT_BUS if publish else None
        return Settings(OUTPUT_BUCKET, TABLE, PipelineConfig.single(profile), event_bus=bus)

    def upload(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=data)

    def event(self, key: str, size: int, sequencer: str = "0055AED6DCD90281E5") -> dict:
        """What S3 sends: the key URL-encoded (`quote_plus`), as in the AWS docs' events."""
        event = s3_event(INPUT_BUCKET, key, size, sequencer, "ObjectCreated:Put")
        assert event["Records"][0]["s3"]["object"]["key"] == quote_plus(key, safe="/")
        return event

    def process(
        self, key: str, data: bytes, profile: Profile, sequencer: str = "0055AED6DCD90281E5"
    ) -> dict[str, Any]:
        if not key.endswith("/") or data:
            self.upload(key, data)
        return process_event(
            self.event(key, len(data), sequencer), self.settings(profile), self.s3, self.dynamodb
        )

    def item(self, key: str) -> dict[str, Any] | None:
        raw = self.dynamodb.get_item(TableName=TABLE, Key=wire.key(key), ConsistentRead=True)
        return wire.decode(raw["Item"]) if "Item" in raw else None

    def output(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read()

    def output_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=OUTPUT_BUCKET):
            sizes.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        return sizes

    def clear_outputs(self) -> None:
        for key in self.output_sizes():
            self.s3.delete_object(Bucket=OUTPUT_BUCKET, Key=key)


@contextmanager
def world() -> Iterator[World]:
    from moto import mock_aws

    with mock_aws():
        yield World()
