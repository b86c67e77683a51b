"""The production features of ImagePipeline under Pulumi's mocks: failures kept, alarms,
bucket hardening options, routing filters, and the guards that refuse a stack up front."""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest

from lambda_pkg.profiles import PipelineConfig, Route, load_named
from lambda_pkg.settings import ENV_PROFILE_CONFIG
from pipeline.program.guards import DeployGuardError
from pipeline.program.names import resource_names
from pipeline.program.routing import RoutingError
from pipeline.program.stack import StackSettings
from tests.support.aws import KMS_KEY_ARN
from tests.support.pulumi_program import (
    ACCOUNT,
    ALARM,
    BUCKET,
    ENCRYPTION,
    FUNCTION,
    INVOKE_CONFIG,
    KMS_KEY,
    LIFECYCLE,
    NOTIFICATION,
    QUEUE,
    RECURSION,
    REPO,
    ROLE_POLICY,
    SUBSCRIPTION,
    TOPIC,
    VERSIONING,
    PipelineMocks,
    deploy,
    image_pipeline,
    run_main,
)

pytestmark = pytest.mark.usefixtures("fake_layer")  # no pip build under the mocks

ROUTES = (Route("thumbnail", prefix="avatars/"), Route("web", prefix="graphics/", suffix=".png"))


def routed(*routes: Route) -> PipelineConfig:
    return PipelineConfig((load_named("thumbnail"), load_named("web")), routes)


# -- failures are kept ------------------------------------------------------------------


def test_failures_go_to_an_encrypted_two_week_dlq() -> None:
    mocks = deploy(settings=StackSettings(retry_attempts=1, max_event_age_s=3600)).mocks
    queue = mocks.one(QUEUE)
    assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    assert queue.inputs["sqsManagedSseEnabled"] is True
    config = mocks.one(INVOKE_CONFIG)
    assert config.inputs == {
        "functionName": mocks.one(FUNCTION).outputs["name"],
        "maximumRetryAttempts": 1,
        "maximumEventAgeInSeconds": 3600,
        "destinationConfig": {"onFailure": {"destination": queue.outputs["arn"]}},
    }
    # Lambda checks the role may send to the destination when the config is put.
    assert mocks.one(ROLE_POLICY).urn in config.dependencies
    grants = {s["Sid"]: s for s in json.loads(mocks.one(ROLE_POLICY).inputs["policy"])["Statement"]}
    assert grants["SendFailures"]["Resource"] == queue.outputs["arn"]
    assert mocks.one(RECURSION).inputs == {
        "functionName": mocks.one(FUNCTION).outputs["name"],
        "recursiveLoop": "Terminate",
    }


# -- alarms -----------------------------------------------------------------------------


def test_alarms_on_errors_throttles_duration_and_dlq_depth() -> None:
    mocks = deploy(settings=StackSettings(timeout_s=120)).mocks
    topic = mocks.one(TOPIC).outputs["arn"]
    function = mocks.one(FUNCTION).outputs["name"]
    alarms = {a.inputs["metricName"]: a.inputs for a in mocks.of_type(ALARM)}
    assert set(alarms) == {"Errors", "Throttles", "Duration", "ApproximateNumberOfMessagesVisible"}
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [topic] and alarm["okActions"] == [topic]
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm["treatMissingData"] == "notBreaching"
    for metric in ("Errors", "Throttles"):
        assert alarms[metric]["dimensions"] == {"FunctionName": function}
        assert (alarms[metric]["statistic"], alarms[metric]["threshold"]) == ("Sum", 0)
    assert alarms["Duration"]["statistic"] == "Maximum"
    assert alarms["Duration"]["threshold"] == 0.8 * 120_000  # near the timeout
    dlq = alarms["ApproximateNumberOfMessagesVisible"]
    assert dlq["namespace"] == "AWS/SQS" and dlq["threshold"] == 0
    assert dlq["dimensions"] == {"QueueName": mocks.one(QUEUE).outputs["name"]}
    assert mocks.of_type(SUBSCRIPTION) == []  # no alarmEmail, no subscription


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() -> None:
    mocks = deploy().mocks
    key = mocks.one(KMS_KEY)
    assert mocks.one(TOPIC).inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    # The AWS-managed alias/aws/sns key would silently drop every alarm notification.
    assert statements["CloudWatchAlarmsPublish"]["Principal"] == {
        "Service": "cloudwatch.amazonaws.com"
    }
    assert statements["CloudWatchAlarmsPublish"]["Action"] == [
        "kms:Decrypt",
        "kms:GenerateDataKey*",
    ]
    assert statements["AccountAdministersKey"]["Principal"] == {
        "AWS": f"arn:aws:iam::{ACCOUNT}:root"
    }


def test_tracing_is_off_by_default_and_active_with_its_grant_when_on() -> None:
    function = deploy().mocks.one(FUNCTION)
    # Sent even when off: the provider keeps a mode it is not given, so turning tracing
    # off after it was on would otherwise leave it on.
    assert function.inputs["tracingConfig"] == {"mode": "PassThrough"}
    mocks = deploy(settings=StackSettings(tracing=True)).mocks
    assert mocks.one(FUNCTION).inputs["tracingConfig"] == {"mode": "Active"}
    grants = {s["Sid"]: s for s in json.loads(mocks.one(ROLE_POLICY).inputs["policy"])["Statement"]}
    assert grants["WriteTraces"] == {
        "Sid": "WriteTraces",
        "Effect": "Allow",
        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        "Resource": "*",
    }


def test_alarm_email_subscribes_to_the_topic() -> None:
    mocks = deploy(settings=StackSettings(alarm_email="ops@example.com")).mocks
    assert mocks.one(SUBSCRIPTION).inputs == {
        "topic": mocks.one(TOPIC).outputs["arn"],
        "protocol": "email",
        "endpoint": "ops@example.com",
    }


# -- buckets ----------------------------------------------------------------------------


def test_kms_encryption_and_the_role_may_use_only_that_key() -> None:
    mocks = deploy(settings=StackSettings(kms_key_arn=KMS_KEY_ARN)).mocks
    for sse in mocks.of_type(ENCRYPTION):
        assert sse.inputs["rules"] == [
            {
                "applyServerSideEncryptionByDefault": {
                    "sseAlgorithm": "aws:kms",
                    "kmsMasterKeyId": KMS_KEY_ARN,
                },
                "bucketKeyEnabled": True,
            }
        ]
    grants = {s["Sid"]: s for s in json.loads(mocks.one(ROLE_POLICY).inputs["policy"])["Statement"]}
    assert grants["UseBucketKey"] == {
        "Sid": "UseBucketKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": KMS_KEY_ARN,
    }


def test_versioning_lifecycle_and_force_destroy_options() -> None:
    settings = StackSettings(versioning=True, output_expiration_days=30, force_destroy_input=True)
    deployment = deploy(settings=settings)
    mocks, names = deployment.mocks, deployment.names
    assert len(mocks.of_type(VERSIONING)) == 2
    for versioning in mocks.of_type(VERSIONING):
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    lifecycle = mocks.one(LIFECYCLE)
    assert lifecycle.inputs["bucket"] == deployment.physical(names.output_bucket)
    assert lifecycle.inputs["rules"] == [
        {
            "id": "expire-renditions",
            "status": "Enabled",
            "filter": {"prefix": "processed/"},
            "expiration": {"days": 30},
            "noncurrentVersionExpiration": {"noncurrentDays": 30},
        }
    ]
    buckets = {b.name: b.inputs for b in mocks.of_type(BUCKET)}
    assert buckets[names.input_bucket]["forceDestroy"] is True


def test_single_bucket_writes_renditions_beside_the_uploads() -> None:
    routes = (Route("thumbnail", prefix="uploads/"),)
    config = PipelineConfig((load_named("thumbnail"),), routes)
    deployment = deploy(config=config, settings=StackSettings(single_bucket=True, routes=routes))
    mocks = deployment.mocks
    (bucket,) = mocks.of_type(BUCKET)
    variables = mocks.one(FUNCTION).inputs["environment"]["variables"]
    assert variables["OUTPUT_BUCKET"] == bucket.outputs["bucket"]
    assert mocks.one(NOTIFICATION).inputs["lambdaFunctions"][0]["filterPrefix"] == "uploads/"
    grants = {s["Sid"]: s for s in json.loads(mocks.one(ROLE_POLICY).inputs["policy"])["Statement"]}
    arn = bucket.outputs["arn"]
    assert grants["ReadInputObjects"]["Resource"] == f"{arn}/uploads/*"
    assert grants["WriteRenditions"]["Resource"] == f"{arn}/processed/*"


# -- routing ----------------------------------------------------------------------------


def test_routes_become_notification_filters_and_read_grants() -> None:
    mocks = deploy(config=routed(*ROUTES)).mocks
    function_arn = mocks.one(FUNCTION).outputs["arn"]
    events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert mocks.one(NOTIFICATION).inputs["lambdaFunctions"] == [
        {"events": events, "filterPrefix": "avatars/", "lambdaFunctionArn": function_arn},
        {
            "events": events,
            "filterPrefix": "graphics/",
            "filterSuffix": ".png",
            "lambdaFunctionArn": function_arn,
        },
    ]
    policy = json.loads(mocks.one(ROLE_POLICY).inputs["policy"])
    reads = next(s for s in policy["Statement"] if s["Sid"] == "ReadInputObjects")
    input_arn = next(b for b in mocks.of_type(BUCKET) if "-input" in b.name).outputs["arn"]
    assert reads["Resource"] == [f"{input_arn}/avatars/*", f"{input_arn}/graphics/*.png"]
    variables = mocks.one(FUNCTION).inputs["environment"]["variables"]
    assert PipelineConfig.from_json(variables[ENV_PROFILE_CONFIG]).routes == ROUTES


def test_main_routes_from_stack_config() -> None:
    raw = json.dumps(
        [
            {"profile": "thumbnail"},
            {"prefix": "avatars/", "profile": "thumbnail"},
            {"prefix": "graphics/", "suffix": ".png", "profile": "web"},
        ]
    )
    mocks = run_main(config={"routes": raw})
    variables = mocks.one(FUNCTION).inputs["environment"]["variables"]
    config = PipelineConfig.from_json(variables[ENV_PROFILE_CONFIG])
    # The catch-all went last; both profiles are shipped, each once.
    assert config.routes == (*ROUTES, Route("thumbnail"))
    assert [p.name for p in config.profiles] == ["thumbnail", "web"]
    # With a catch-all, one unfiltered rule: the handler routes.
    (rule,) = mocks.one(NOTIFICATION).inputs["lambdaFunctions"]
    assert "filterPrefix" not in rule and "filterSuffix" not in rule


def refused(config: dict[str, str]) -> PipelineMocks:
    mocks = PipelineMocks()
    pulumi.runtime.reset_options(project="imgpipe", stack="dev")
    pulumi.runtime.set_all_config({f"imgpipe:{k}": v for k, v in config.items()})
    pulumi.runtime.set_mocks(mocks, project="imgpipe", stack="dev", preview=True)
    pulumi.runtime.test(lambda: runpy.run_path(str(REPO / "__main__.py"), run_name="__main__"))()
    return mocks


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        (
            {"routes": '[{"prefix": "a/", "profile": "web"}, {"prefix": "a/b", "profile": "web"}]'},
            RoutingError,
            "overlap",
        ),
        ({"singleBucket": "true"}, RoutingError, "own outputs"),
        (
            {"singleBucket": "true", "routes": '[{"prefix": "processed/x/", "profile": "web"}]'},
            RoutingError,
            "own outputs",
        ),
        ({"routes": '[{"prefix": "a/", "profile": "nope"}]'}, Exception, "one of .*thumbnail"),
        ({"memory": "256"}, DeployGuardError, "imgpipe:memory is 256 MB.*'thumbnail'"),
    ],
)
def test_bad_routing_or_sizing_fails_before_any_resource(
    config: dict[str, str], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        refused(config)


def test_misordered_routes_are_refused() -> None:
    config = routed(Route("thumbnail"), *ROUTES)  # catch-all first: S3 and handler disagree
    with pytest.raises(DeployGuardError, match="catch-all last"):
        image_pipeline(config, StackSettings(), resource_names("imgpipe", "dev"))


# -- function settings ------------------------------------------------------------------


def test_reserved_concurrency_is_optional() -> None:
    assert "reservedConcurrentExecutions" not in deploy().mocks.one(FUNCTION).inputs
    mocks = deploy(settings=StackSettings(reserved_concurrency=5)).mocks
    assert mocks.one(FUNCTION).inputs["reservedConcurrentExecutions"] == 5
