"""Create on the emulator what the Pulumi program creates in AWS, under the same names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lambda_pkg.outcomes import SOURCE
from lambda_pkg.profiles import Route
from lambda_pkg.records import table_definition
from pipeline.aws import REGION, client
from pipeline.program.names import ResourceNames
from pipeline.program.routing import notification_rules
from pipeline.program.stack import TRIGGER_EVENTS

ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class LocalResources:
    names: ResourceNames
    event_queue_url: str
    dead_letter_queue_url: str


def provision(
    endpoint: str, names: ResourceNames, routes: tuple[Route, ...], visibility_timeout_s: int
) -> LocalResources:
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
    dynamodb.create_table(TableName=names.metadata_table, **table_definition())
    dead_letter_url = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)},
    )["QueueUrl"]
    # S3 -> SQS stands in for S3 -> Lambda: moto puts the real S3 event JSON on the queue.
    event_url = sqs.create_queue(
        QueueName=names.event_queue,
        Attributes={"VisibilityTimeout": str(visibility_timeout_s)},
    )["QueueUrl"]
    queue_arn = event_queue_arn(names)
    sqs.set_queue_attributes(
        QueueUrl=event_url, Attributes={"Policy": json.dumps(_queue_policy(queue_arn, names))}
    )
    notify(endpoint, names, routes)
    publish_outcomes(endpoint, names)
    return LocalResources(names, event_url, dead_letter_url)


def event_queue_arn(names: ResourceNames) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{names.event_queue}"


def publish_outcomes(endpoint: str, names: ResourceNames) -> str:
    """The stack's bus (imgpipe:eventBus `own`, as the Pulumi program creates it), and a
    rule on `source: imgpipe` that targets the tail queue; returns the queue's URL."""
    events, sqs = client("events", endpoint), client("sqs", endpoint)
    events.create_event_bus(Name=names.event_bus)
    queue = names.event_tail_queue
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"
    rule_arn = events.put_rule(
        Name=queue, EventBusName=names.event_bus, EventPattern=json.dumps({"source": [SOURCE]})
    )["RuleArn"]
    events.put_targets(
        Rule=queue, EventBusName=names.event_bus, Targets=[{"Id": "tail", "Arn": queue_arn}]
    )
    # What AWS would need before EventBridge may deliver (moto does not check it).
    allow = _allow_send(queue_arn, "events.amazonaws.com", rule_arn)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(allow)})
    return url


def notify(endpoint: str, names: ResourceNames, routes: tuple[Route, ...]) -> None:
    """Point the input bucket's notification at the event queue, with the routes' filters."""
    queue_arn = event_queue_arn(names)
    client("s3", endpoint).put_bucket_notification_configuration(
        Bucket=names.input_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                _queue_rule(queue_arn, events, prefix, suffix)
                for events, prefix, suffix in notification_rules(routes, TRIGGER_EVENTS)
            ]
        },
    )


def _queue_rule(arn: str, events: tuple[str, ...], prefix: str, suffix: str) -> dict[str, Any]:
    """The same filter rules the Pulumi program puts on the Lambda notification."""
    rule: dict[str, Any] = {"QueueArn": arn, "Events": list(events)}
    filters = [{"Name": n, "Value": v} for n, v in (("prefix", prefix), ("suffix", suffix)) if v]
    if filters:
        rule["Filter"] = {"Key": {"FilterRules": filters}}
    return rule


def _queue_policy(queue_arn: str, names: ResourceNames) -> dict[str, Any]:
    return _allow_send(queue_arn, "s3.amazonaws.com", f"arn:aws:s3:::{names.input_bucket}")


def _allow_send(queue_arn: str, service: str, source_arn: str) -> dict[str, Any]:
    """A queue policy letting one AWS service send to the queue, from one source only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceSendsEvents",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": source_arn}},
            }
        ],
    }
