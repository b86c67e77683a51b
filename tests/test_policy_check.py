"""The production policy, run over the program under Pulumi's mocks.

Good stacks pass; deliberately broken ones fail with a message naming the resource.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_pkg.profiles import PipelineConfig, Route, load_named
from pipeline import component
from pipeline.component import ImagePipeline, ImagePipelineArgs
from pipeline.names import resource_names
from pipeline.policy_check import DeployedResource, PolicyViolationError, check, enforce
from pipeline.stack import StackSettings
from tests.conftest import KMS_KEY_ARN
from tests.test_component import (
    BUCKET,
    BUCKET_POLICY,
    FUNCTION,
    LOG_GROUP,
    QUEUE,
    ROLE_POLICY,
    PipelineMocks,
    fake_layer,  # noqa: F401 (fixture: no pip build under the mocks)
    run_program,
)

THUMBNAIL = PipelineConfig.single(load_named("thumbnail"))


def deployed(mocks: PipelineMocks) -> list[DeployedResource]:
    return [
        DeployedResource(r.typ, r.urn, r.id, r.inputs, r.outputs) for r in mocks.resources.values()
    ]


def run(
    cls: type[ImagePipeline] = ImagePipeline,
    settings: StackSettings | None = None,
    config: PipelineConfig = THUMBNAIL,
) -> PipelineMocks:
    args = ImagePipelineArgs(config, settings or StackSettings(), resource_names("imgpipe", "dev"))
    return run_program(lambda: cls("image-pipeline", args))


def urn_of(mocks: PipelineMocks, typ: str, index: int = 0) -> str:
    return mocks.of_type(typ)[index].urn


# -- good stacks pass -------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        StackSettings(),
        StackSettings(
            kms_key_arn=KMS_KEY_ARN,
            versioning=True,
            output_expiration_days=30,
            alarm_email="ops@example.com",
            reserved_concurrency=5,
        ),
    ],
    ids=["defaults", "everything-on"],
)
def test_the_stack_meets_the_production_policy(settings: StackSettings) -> None:
    assert check(deployed(run(settings=settings))) == []


def test_single_bucket_with_disjoint_routes_meets_the_policy() -> None:
    routes = (Route("thumbnail", prefix="uploads/"),)
    config = PipelineConfig(THUMBNAIL.profiles, routes)
    mocks = run(settings=StackSettings(single_bucket=True, routes=routes), config=config)
    assert len(mocks.of_type(BUCKET)) == 1
    enforce(deployed(mocks))


# -- deliberately broken stacks fail, naming the resource ---------------------------------


def test_a_bucket_without_tls_only_policy_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the output bucket's TLS policy is replaced by one that allows plain HTTP
    real = component.tls_only_bucket_policy

    def broken(arn: str) -> dict:
        document = real(arn)
        if "-output" in arn:
            document["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
        return document

    monkeypatch.setattr(component, "tls_only_bucket_policy", broken)
    mocks = run()
    # THEN the check names the output bucket, and only it
    violations = check(deployed(mocks))
    output = next(b for b in mocks.of_type(BUCKET) if "-output" in b.name)
    assert violations == [
        f"{output.urn}: not TLS-only (no bucket policy denying aws:SecureTransport=false "
        "on the bucket and its objects)"
    ]
    assert len(mocks.of_type(BUCKET_POLICY)) == 2


def test_a_wildcard_grant_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN someone "fixes" an AccessDenied with s3:* on *
    real = component.function_policy

    def broken(*args: Any, **kwargs: Any) -> dict:
        document = real(*args, **kwargs)
        document["Statement"].append(
            {"Sid": "Quickfix", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}
        )
        return document

    monkeypatch.setattr(component, "function_policy", broken)
    mocks = run()
    with pytest.raises(PolicyViolationError) as caught:
        enforce(deployed(mocks))
    policy_urn = urn_of(mocks, ROLE_POLICY)
    assert caught.value.violations == [
        f"{policy_urn}: statement Quickfix allows the wildcard action 's3:*'",
        f"{policy_urn}: statement Quickfix allows s3:* on resource '*' "
        "(these actions take resource ARNs)",
    ]


class NoAlarms(ImagePipeline):
    def _alarm(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None


class NoFailureDestination(ImagePipeline):
    def _create_failure_handling(self) -> None:
        # Retries configured, but where do failures go? Nowhere: they are dropped.
        pulumi_aws = component.aws
        self.invoke_config = pulumi_aws.lambda_.FunctionEventInvokeConfig(
            "imgpipe-dev-processor-async",
            function_name=self.function.name,
            maximum_retry_attempts=2,
            opts=self._child,
        )


def test_a_function_without_alarms_is_named() -> None:
    mocks = run(NoAlarms)
    function, queue = mocks.one(FUNCTION), mocks.one(QUEUE)
    assert check(deployed(mocks)) == [
        f"{queue.urn}: failure queue of {function.urn} has no depth alarm",
        f"{function.urn}: no alarm (with an action) on Errors, Throttles, Duration",
    ]


def test_a_function_that_drops_failures_is_named() -> None:
    mocks = run(NoFailureDestination)
    function = mocks.one(FUNCTION)
    assert check(deployed(mocks)) == [
        f"{function.urn}: no on-failure destination (failed events would be dropped)",
        f"{function.urn}: recursive loop detection is not set to Terminate",
    ]


def test_logs_kept_forever_are_named() -> None:
    mocks = run(settings=StackSettings(log_retention_days=0))
    function, logs = mocks.one(FUNCTION), mocks.one(LOG_GROUP)
    assert check(deployed(mocks)) == [
        f"{logs.urn}: log group of {function.urn} keeps logs forever (no retention)"
    ]


def test_unencrypted_public_acl_bucket_is_named() -> None:
    # A hand-written resource list: a bare bucket with nothing attached.
    bare = DeployedResource(
        BUCKET, "urn:pulumi:dev::imgpipe::aws:s3/bucket:Bucket::bare", "bare", {}, {"arn": "a"}
    )
    assert check([bare]) == [
        f"{bare.urn}: public access is not fully blocked (blockPublicAcls, blockPublicPolicy, "
        "ignorePublicAcls, restrictPublicBuckets)",
        f"{bare.urn}: ownership is not BucketOwnerEnforced (ACLs still apply)",
        f"{bare.urn}: no default encryption at rest",
        f"{bare.urn}: not TLS-only (no bucket policy denying aws:SecureTransport=false "
        "on the bucket and its objects)",
    ]


def test_broad_managed_policies_and_resource_wildcards() -> None:
    role = DeployedResource(
        "aws:iam/role:Role",
        "urn:role",
        "r",
        {"managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]},
    )
    attachment = DeployedResource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "urn:attachment",
        "a",
        {"policyArn": "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"},
    )
    fine = {
        "Statement": [
            {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
             "Resource": "*"},
            {"Sid": "Deny", "Effect": "Deny", "Action": "*", "Resource": "*"},
        ]
    }  # fmt: skip
    policy = DeployedResource(ROLE_POLICY, "urn:policy", "p", {"policy": json.dumps(fine)})
    assert check([role, attachment, policy]) == [
        "urn:role: attaches the broad managed policy arn:aws:iam::aws:policy/AmazonS3FullAccess",
        "urn:attachment: attaches the broad managed policy "
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
    ]
