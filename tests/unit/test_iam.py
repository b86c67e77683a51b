"""pipeline.program.iam: the exact documents, and least privilege as a property."""

from __future__ import annotations

import json

import pytest

from pipeline.program.iam import (
    assume_role_policy,
    default_event_bus_arn,
    function_policy,
    output_bucket_policy,
    tls_only_bucket_policy,
)
from tests.support.aws import KMS_KEY_ARN

INPUT = "arn:aws:s3:::imgpipe-dev-input-a1b2c3d"
OUTPUT = "arn:aws:s3:::imgpipe-dev-output-a1b2c3d"
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/imgpipe-dev-metadata-a1b2c3d"
LOGS = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/imgpipe-dev-processor-1"
DLQ = "arn:aws:sqs:eu-west-1:123456789012:imgpipe-dev-dlq-a1b2c3d"


def statements(document: dict) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in document["Statement"]}


def test_function_policy_is_exactly_the_five_grants() -> None:
    assert function_policy(INPUT, OUTPUT, TABLE, LOGS) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadInputObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": f"{INPUT}/*",
            },
            {
                "Sid": "ListInputKeys",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": INPUT,
            },
            {
                "Sid": "WriteRenditions",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{OUTPUT}/processed/*",
            },
            {
                "Sid": "ReadWriteMetadata",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                "Resource": TABLE,
            },
            {
                "Sid": "FindOwnedKeys",
                "Effect": "Allow",
                "Action": ["dynamodb:Query"],
                "Resource": f"{TABLE}/index/owner",
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{LOGS}:*",
            },
        ],
    }


def test_no_wildcard_action_or_resource_and_only_allows() -> None:
    document = function_policy(
        INPUT,
        OUTPUT,
        TABLE,
        LOGS,
        read_patterns=[("avatars/", ""), ("graphics/", ".png")],
        dead_letter_queue_arn=DLQ,
        kms_key_arn=KMS_KEY_ARN,
    )
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Sid"].isalnum()
        for action in statement["Action"]:
            assert "*" not in action, statement
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            assert resource.startswith("arn:aws:"), statement
    # A document IAM accepts is a JSON document.
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize("log_group_arn", [LOGS, f"{LOGS}:*"])
def test_log_group_arn_with_or_without_stream_wildcard(log_group_arn: str) -> None:
    grant = statements(function_policy(INPUT, OUTPUT, TABLE, log_group_arn))["WriteLogs"]
    assert grant["Resource"] == f"{LOGS}:*"


def test_output_prefix_scopes_writes() -> None:
    grant = statements(function_policy(INPUT, OUTPUT, TABLE, LOGS, output_prefix="renders"))
    assert grant["WriteRenditions"]["Resource"] == f"{OUTPUT}/renders/*"


def test_input_bucket_is_never_writable_and_output_never_readable() -> None:
    grants = statements(function_policy(INPUT, OUTPUT, TABLE, LOGS))
    assert grants["ReadInputObjects"]["Action"] == ["s3:GetObject"]
    assert grants["WriteRenditions"]["Action"] == ["s3:PutObject", "s3:DeleteObject"]
    assert grants["WriteRenditions"]["Resource"].startswith(f"{OUTPUT}/processed/")
    assert grants["ListInputKeys"]["Resource"] == INPUT  # key names, never object bodies
    assert not any(OUTPUT in str(g["Resource"]) for sid, g in grants.items() if "Write" not in sid)


def test_reads_only_what_the_routes_trigger_on() -> None:
    grants = statements(
        function_policy(
            INPUT, OUTPUT, TABLE, LOGS, read_patterns=[("avatars/", ""), ("graphics/", ".png")]
        )
    )
    assert grants["ReadInputObjects"]["Resource"] == [
        f"{INPUT}/avatars/*",
        f"{INPUT}/graphics/*.png",
    ]


def test_dead_letter_queue_and_kms_key_are_granted_only_when_present() -> None:
    assert set(statements(function_policy(INPUT, OUTPUT, TABLE, LOGS))) == {
        "ReadInputObjects",
        "ListInputKeys",
        "WriteRenditions",
        "ReadWriteMetadata",
        "FindOwnedKeys",
        "WriteLogs",
    }
    grants = statements(
        function_policy(
            INPUT, OUTPUT, TABLE, LOGS, dead_letter_queue_arn=DLQ, kms_key_arn=KMS_KEY_ARN
        )
    )
    assert grants["SendFailures"] == {
        "Sid": "SendFailures",
        "Effect": "Allow",
        "Action": ["sqs:SendMessage"],
        "Resource": DLQ,
    }
    assert grants["UseBucketKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert grants["UseBucketKey"]["Resource"] == KMS_KEY_ARN


def test_put_events_is_granted_on_the_stack_bus_only_when_present() -> None:
    bus = "arn:aws:events:eu-west-1:123456789012:event-bus/imgpipe-dev-processor-outcomes-1"
    assert "PublishOutcomes" not in statements(function_policy(INPUT, OUTPUT, TABLE, LOGS))
    grant = statements(function_policy(INPUT, OUTPUT, TABLE, LOGS, event_bus_arn=bus))
    assert grant["PublishOutcomes"] == {
        "Sid": "PublishOutcomes",
        "Effect": "Allow",
        "Action": ["events:PutEvents"],
        "Resource": bus,
    }


def test_the_default_bus_is_in_the_partition_region_and_account_of_the_stack() -> None:
    assert default_event_bus_arn(TABLE) == "arn:aws:events:eu-west-1:123456789012:event-bus/default"
    china = "arn:aws-cn:sqs:cn-north-1:123456789012:q"
    assert (
        default_event_bus_arn(china)
        == "arn:aws-cn:events:cn-north-1:123456789012:event-bus/default"
    )


def test_tls_only_bucket_policy_denies_plain_http_on_bucket_and_objects() -> None:
    assert tls_only_bucket_policy(INPUT) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [INPUT, f"{INPUT}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def test_the_output_bucket_policy_adds_the_cdns_read_of_renditions_only_with_a_cdn() -> None:
    assert output_bucket_policy(OUTPUT) == tls_only_bucket_policy(OUTPUT)
    distribution = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL"
    document = output_bucket_policy(OUTPUT, distribution)
    assert document["Statement"][0] == tls_only_bucket_policy(OUTPUT)["Statement"][0]
    assert document["Statement"][1] == {
        "Sid": "CdnReadsRenditions",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": f"{OUTPUT}/processed/*",
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution}},
    }
    assert len(document["Statement"]) == 2


def test_assume_role_policy_trusts_only_lambda() -> None:
    assert assume_role_policy() == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
