"""Create on the emulator what the Pulumi program creates in AWS, under the same names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeline.local.emulator import REGION, client
from pipeline.stack import TRIGGER_EVENTS, ResourceNames

ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class LocalResources:
    names: ResourceNames
    event_queue_url: str
    dead_letter_queue_url: str


def provision(endpoint: str, names: ResourceNames, visibility_timeout_s: int) -> LocalResources:
    s3, dynamodb, sqs = (client(s, endpoint) for s in ("s3", "dynamodb", "sqs"))
    for bucket in (names.input_bucket, names.output_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    dynamodb.create_table(
        TableName=names.metadata_table,
        KeySchema=[{"AttributeName": "image_name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "image_name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dead_letter_url = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)},
    )["QueueUrl"]
    # S3 -> SQS stands in for S3 -> Lambda: moto puts the real S3 event JSON on the queue.
    event_url = sqs.create_queue(
        QueueName=names.event_queue,
        Attributes={"VisibilityTimeout": str(visibility_timeout_s)},
    )["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{names.event_queue}"
    sqs.set_queue_attributes(
        QueueUrl=event_url, Attributes={"Policy": json.dumps(_queue_policy(queue_arn, names))}
    )
    s3.put_bucket_notification_configuration(
        Bucket=names.input_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": list(TRIGGER_EVENTS)}]
        },
    )
    return LocalResources(names, event_url, dead_letter_url)


def _queue_policy(queue_arn: str, names: ResourceNames) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3SendsEvents",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{names.input_bucket}"}},
            }
        ],
    }
