"""pipeline.iam: the exact documents, and least privilege as a property."""

from __future__ import annotations

import json

import pytest

from pipeline.iam import assume_role_policy, function_policy

INPUT = "arn:aws:s3:::imgpipe-dev-input-a1b2c3d"
OUTPUT = "arn:aws:s3:::imgpipe-dev-output-a1b2c3d"
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/imgpipe-dev-metadata-a1b2c3d"
LOGS = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/imgpipe-dev-processor-1"


def statements(document: dict) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in document["Statement"]}


def test_function_policy_is_exactly_the_four_grants() -> None:
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
                "Sid": "WriteRenditions",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": f"{OUTPUT}/processed/*",
            },
            {
                "Sid": "ReadWriteMetadata",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                "Resource": TABLE,
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
    document = function_policy(INPUT, OUTPUT, TABLE, LOGS)
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Sid"].isalnum()
        for action in statement["Action"]:
            assert "*" not in action, statement
        assert statement["Resource"] != "*"
        assert not statement["Resource"].startswith("*")
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
    assert grants["WriteRenditions"]["Action"] == ["s3:PutObject"]


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
