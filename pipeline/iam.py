"""IAM policy documents as pure functions of ARNs: no pulumi, so tests compare plain dicts.

The component wraps these with `Output.all(...).apply(...)`; nothing here is a template.
"""

from __future__ import annotations

from typing import Any

from lambda_pkg.profiles import OUTPUT_PREFIX

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
) -> dict[str, Any]:
    """Least privilege for the handler: read uploads, write renditions, one table, its logs."""
    prefix = output_prefix if output_prefix.endswith("/") else f"{output_prefix}/"
    # aws.cloudwatch.LogGroup.arn has no ":*" (the provider strips it); accept either form.
    log_group_arn = log_group_arn.removesuffix(":*")
    return {
        "Version": VERSION,
        "Statement": [
            # HeadObject is authorised by s3:GetObject; no ListBucket on purpose.
            _allow("ReadInputObjects", ["s3:GetObject"], f"{input_bucket_arn}/*"),
            _allow("WriteRenditions", ["s3:PutObject"], f"{output_bucket_arn}/{prefix}*"),
            _allow(
                "ReadWriteMetadata",
                ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                table_arn,
            ),
            # The log group is created by the stack, so CreateLogGroup is not needed.
            _allow(
                "WriteLogs",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                f"{log_group_arn}:*",
            ),
        ],
    }


def _allow(sid: str, actions: list[str], resource: str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
