"""IAM policy documents as pure functions of ARNs: no pulumi, so tests compare plain dicts.

The component wraps these with `Output.all(...).apply(...)`; nothing here is a template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambda_pkg.profiles import OUTPUT_PREFIX
from lambda_pkg.records import OWNER_INDEX

VERSION = "2012-10-17"


def assume_role_policy() -> dict[str, Any]:
    """Only the Lambda service may assume the function's role."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "LambdaAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def function_policy(
    input_bucket_arn: str,
    output_bucket_arn: str,
    table_arn: str,
    log_group_arn: str,
    output_prefix: str = OUTPUT_PREFIX,
    *,
    read_patterns: Sequence[tuple[str, str]] = (("", ""),),
    dead_letter_queue_arn: str | None = None,
    event_bus_arn: str | None = None,
    kms_key_arn: str | None = None,
    tracing: bool = False,
) -> dict[str, Any]:
    """Least privilege for the handler, derived from the resources and the routes.

    `read_patterns` are the (prefix, suffix) pairs that trigger the function
    (`pipeline.program.routing.read_patterns`): it may read exactly those objects and no others.
    """
    prefix = output_prefix if output_prefix.endswith("/") else f"{output_prefix}/"
    # aws.cloudwatch.LogGroup.arn has no ":*" (the provider strips it); accept either form.
    log_group_arn = log_group_arn.removesuffix(":*")
    reads = [f"{input_bucket_arn}/{p}*{s}" for p, s in dict.fromkeys(read_patterns)]
    statements = [
        # HeadObject is authorised by s3:GetObject.
        _allow("ReadInputObjects", ["s3:GetObject"], reads[0] if len(reads) == 1 else reads),
        # Without ListBucket, S3 answers GetObject on a missing key with 403, not 404: an
        # object deleted before its event is processed would then be retried and end in
        # the DLQ instead of being skipped. Not conditioned on s3:prefix: that key exists
        # only in ListObjects requests, so the implicit check behind a 404 would fail it.
        _allow("ListInputKeys", ["s3:ListBucket"], input_bucket_arn),
        # Delete: renditions of a deleted original are removed (ObjectRemoved events).
        _allow(
            "WriteRenditions", ["s3:PutObject", "s3:DeleteObject"], f"{output_bucket_arn}/{prefix}*"
        ),
        # GetItem: the stored item; PutItem: a result (compare-and-swap); UpdateItem: claim
        # and release output keys. No DeleteItem: the function never deletes a record.
        _allow(
            "ReadWriteMetadata",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            table_arn,
        ),
        # Query on the owner index only: which output keys a source owns, so a cleanup also
        # finds keys claimed by an invocation that died before storing its item.
        _allow("FindOwnedKeys", ["dynamodb:Query"], f"{table_arn}/index/{OWNER_INDEX}"),
        # The log group is created by the stack, so CreateLogGroup is not needed.
        _allow("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], f"{log_group_arn}:*"),
    ]
    if dead_letter_queue_arn:
        # Lambda sends an async invocation's on-failure record with the function's own role.
        statements.append(_allow("SendFailures", ["sqs:SendMessage"], dead_letter_queue_arn))
    if event_bus_arn:
        # Each stored outcome, announced on the stack's bus (lambda_pkg/outcomes.py).
        statements.append(_allow("PublishOutcomes", ["events:PutEvents"], event_bus_arn))
    if kms_key_arn:
        # SSE-KMS buckets: reading needs Decrypt; writing needs GenerateDataKey (and Decrypt
        # for multipart uploads). Nothing else of the key.
        statements.append(
            _allow("UseBucketKey", ["kms:Decrypt", "kms:GenerateDataKey"], kms_key_arn)
        )
    if tracing:
        # Active tracing: Lambda's runtime sends segments with the function's role. These
        # two actions have no resource ARNs; IAM accepts only "*" for them.
        statements.append(
            _allow("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*")
        )
    return {"Version": VERSION, "Statement": statements}


def default_event_bus_arn(regional_arn: str) -> str:
    """The account's default bus in the partition, region and account of `regional_arn`
    (any ARN of the stack's, such as its table's): PutEvents is granted by the bus ARN."""
    _arn, partition, _service, region, account = regional_arn.split(":")[:5]
    return f"arn:{partition}:events:{region}:{account}:event-bus/default"


def alarm_topic_key_policy(account_id: str, caller_arn: str) -> dict[str, Any]:
    """The alarm topic's KMS key: the account administers it (as in KMS's default key
    policy, which lets IAM policies grant the rest), and CloudWatch alarms may encrypt
    the messages they publish to the topic, which the AWS-managed SNS key never allows."""
    partition = caller_arn.split(":")[1] if caller_arn.count(":") >= 5 else "aws"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministersKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    }


def tls_only_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not arrive over TLS."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def output_bucket_policy(
    bucket_arn: str, cdn_distribution_arn: str | None = None, output_prefix: str = OUTPUT_PREFIX
) -> dict[str, Any]:
    """TLS only; with a CDN, also the one reader it has: CloudFront, signing with the stack's
    Origin Access Control, for that distribution only (AWS:SourceArn) and renditions only
    (originals in a single bucket stay private). No s3:ListBucket: a missing key answers 403,
    and nothing through the CDN can list the bucket."""
    policy = tls_only_bucket_policy(bucket_arn)
    if cdn_distribution_arn:
        prefix = output_prefix if output_prefix.endswith("/") else f"{output_prefix}/"
        policy["Statement"].append(
            {
                "Sid": "CdnReadsRenditions",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/{prefix}*",
                "Condition": {"StringEquals": {"AWS:SourceArn": cdn_distribution_arn}},
            }
        )
    return policy


def _allow(sid: str, actions: list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
