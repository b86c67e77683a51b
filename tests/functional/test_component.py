"""The Pulumi program under Pulumi's own mocks: every resource, its inputs, its wiring.

The mocks record every registration (type, name, inputs, the outputs they answered with,
and from the monitor the URN, parent and dependencies), so assertions run after the
program has finished, on plain values. Output-level checks go through Output.all().apply()
inside `pulumi.runtime.test`, whose failures fail the test.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import zipfile
from collections import Counter

import pulumi
import pytest

from lambda_pkg.profiles import PipelineConfig, ProfileError, load_named
from lambda_pkg.records import table_definition
from lambda_pkg.settings import function_environment
from pipeline.program.component import HANDLER, TYPE_TOKEN, ImagePipeline
from pipeline.program.iam import assume_role_policy, function_policy, tls_only_bucket_policy
from pipeline.program.names import resource_names
from pipeline.program.stack import (
    OUTPUT_ALARM_TOPIC,
    OUTPUT_DEAD_LETTER_QUEUE,
    OUTPUT_DEAD_LETTER_QUEUE_ARN,
    OUTPUT_EVENT_BUS,
    OUTPUT_EVENT_BUS_ARN,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_INPUT_BUCKET,
    OUTPUT_METADATA_TABLE,
    OUTPUT_OUTPUT_BUCKET,
    StackSettings,
    StackSettingsError,
)
from tests.support.pulumi_program import (
    ACCOUNT,
    ALARM,
    BUCKET,
    BUCKET_POLICY,
    CALLER_IDENTITY,
    ENCRYPTION,
    EVENT_BUS,
    FUNCTION,
    INVOKE_CONFIG,
    KMS_KEY,
    LAYER,
    LIFECYCLE,
    LOG_GROUP,
    NOTIFICATION,
    OWNERSHIP,
    PERMISSION,
    PUBLIC_ACCESS,
    QUEUE,
    RECURSION,
    REGION,
    REPO,
    ROLE,
    ROLE_POLICY,
    SUFFIX,
    TABLE,
    TOPIC,
    VERSIONING,
    Deployment,
    PipelineMocks,
    arn,
    deploy,
    image_pipeline,
    run_main,
    run_program,
)

pytestmark = pytest.mark.usefixtures("fake_layer")  # no pip build under the mocks


@pytest.fixture(params=["thumbnail", "web"])
def deployed(request: pytest.FixtureRequest) -> Deployment:
    return deploy(request.param)


# -- shape -----------------------------------------------------------------------------


def test_every_resource_once_and_parented_under_the_component(deployed: Deployment) -> None:
    mocks = deployed.mocks
    assert Counter(r.typ for r in mocks.resources.values()) == {
        TYPE_TOKEN: 1,
        BUCKET: 2,
        PUBLIC_ACCESS: 2,
        OWNERSHIP: 2,
        ENCRYPTION: 2,
        BUCKET_POLICY: 2,
        TABLE: 1,
        LOG_GROUP: 1,
        LAYER: 1,
        QUEUE: 1,
        ROLE: 1,
        ROLE_POLICY: 1,
        FUNCTION: 1,
        INVOKE_CONFIG: 1,
        RECURSION: 1,
        TOPIC: 1,
        KMS_KEY: 1,
        ALARM: 4,
        PERMISSION: 1,
        NOTIFICATION: 1,
        EVENT_BUS: 1,
    }
    root = mocks.one(TYPE_TOKEN)
    for resource in mocks.resources.values():
        if resource is root:
            continue
        assert resource.parent == root.urn, resource.urn
        assert f"::{TYPE_TOKEN}${resource.typ}::" in resource.urn, resource.urn


def test_buckets_are_private_and_encrypted(deployed: Deployment) -> None:
    mocks, names = deployed.mocks, deployed.names
    buckets = {r.name: r for r in mocks.of_type(BUCKET)}
    assert set(buckets) == {names.input_bucket, names.output_bucket}
    # Originals must survive a careless destroy; renditions can be regenerated.
    assert buckets[names.input_bucket].inputs.get("forceDestroy") is False
    assert buckets[names.output_bucket].inputs.get("forceDestroy") is True
    for bucket in buckets.values():
        (block,) = [r for r in mocks.of_type(PUBLIC_ACCESS) if r.inputs["bucket"] == bucket.id]
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"):
            assert block.inputs[flag] is True, (block.urn, flag)
        assert block.inputs["restrictPublicBuckets"] is True, block.urn
        (sse,) = [r for r in mocks.of_type(ENCRYPTION) if r.inputs["bucket"] == bucket.id]
        assert sse.inputs["rules"] == [
            {
                "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
                "bucketKeyEnabled": False,
            }
        ], sse.urn
        (owner,) = [r for r in mocks.of_type(OWNERSHIP) if r.inputs["bucket"] == bucket.id]
        assert owner.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, owner.urn
        (tls,) = [r for r in mocks.of_type(BUCKET_POLICY) if r.inputs["bucket"] == bucket.id]
        assert json.loads(tls.inputs["policy"]) == tls_only_bucket_policy(bucket.outputs["arn"])
        # One configuration change at a time per bucket (S3 answers OperationAborted).
        assert block.urn in owner.dependencies and owner.urn in sse.dependencies
        assert sse.urn in tls.dependencies
    assert mocks.of_type(VERSIONING) == [] and mocks.of_type(LIFECYCLE) == []


def test_table_is_on_demand_keyed_by_image_name_with_the_owner_index(
    deployed: Deployment,
) -> None:
    table = deployed.mocks.one(TABLE)
    assert table.name == deployed.names.metadata_table
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["hashKey"] == "image_name"
    assert table.inputs["attributes"] == [
        {"name": "image_name", "type": "S"},
        {"name": "owner", "type": "S"},
    ]
    assert "rangeKey" not in table.inputs
    # The index the function queries (iam.py grants Query on it and nothing else)
    assert table.inputs["globalSecondaryIndexes"] == [
        {
            "name": "owner",
            "keySchemas": [{"attributeName": "owner", "keyType": "HASH"}],
            "projectionType": "KEYS_ONLY",
        }
    ]


def test_the_table_is_the_spec_the_local_stack_the_tests_and_reliability_create(
    deployed: Deployment,
) -> None:
    # The Pulumi table and every moto table (create_table(**table_definition())) are one spec
    spec = table_definition()
    table = deployed.mocks.one(TABLE)
    assert table.inputs["billingMode"] == spec["BillingMode"]
    assert [{"attributeName": table.inputs["hashKey"], "keyType": "HASH"}] == [
        {"attributeName": k["AttributeName"], "keyType": k["KeyType"]} for k in spec["KeySchema"]
    ]
    assert table.inputs["attributes"] == [
        {"name": a["AttributeName"], "type": a["AttributeType"]}
        for a in spec["AttributeDefinitions"]
    ]
    assert table.inputs["globalSecondaryIndexes"] == [
        {
            "name": index["IndexName"],
            "keySchemas": [
                {"attributeName": k["AttributeName"], "keyType": k["KeyType"]}
                for k in index["KeySchema"]
            ],
            "projectionType": index["Projection"]["ProjectionType"],
        }
        for index in spec["GlobalSecondaryIndexes"]
    ]
    assert "ttl" not in table.inputs and "TimeToLiveSpecification" not in spec


def test_the_record_and_the_originals_are_protected_by_default(deployed: Deployment) -> None:
    mocks, names = deployed.mocks, deployed.names
    table = mocks.one(TABLE)
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert table.inputs["deletionProtectionEnabled"] is True
    protected = {r.name for r in mocks.resources.values() if r.protect}
    assert protected == {names.metadata_table, names.input_bucket}


def test_protect_false_lets_destroy_remove_the_table_and_input_bucket() -> None:
    mocks = deploy(settings=StackSettings(protect=False)).mocks
    assert [r.name for r in mocks.resources.values() if r.protect] == []
    table = mocks.one(TABLE)
    assert table.inputs["deletionProtectionEnabled"] is False
    # Point-in-time recovery stays: it protects against bad writes, not only deletes.
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}


def test_log_group_retention_and_function_logging(deployed: Deployment) -> None:
    mocks = deployed.mocks
    logs = mocks.one(LOG_GROUP)
    assert logs.inputs["retentionInDays"] == 14
    assert logs.inputs["namePrefix"] == f"/aws/lambda/{deployed.names.function}-"
    assert mocks.one(FUNCTION).inputs["loggingConfig"] == {
        "logFormat": "Text",
        "logGroup": logs.outputs["name"],
    }


def test_layer_is_built_for_the_function_platform(
    deployed: Deployment, fake_layer: list[tuple[str, str]]
) -> None:
    layer = deployed.mocks.one(LAYER)
    assert fake_layer == [("python3.12", "arm64")]
    assert layer.inputs["compatibleRuntimes"] == ["python3.12"]
    assert layer.inputs["compatibleArchitectures"] == ["arm64"]
    assert isinstance(layer.inputs["code"], pulumi.FileArchive)


def test_function_is_configured_from_settings_and_profile(deployed: Deployment) -> None:
    mocks, names = deployed.mocks, deployed.names
    function = mocks.one(FUNCTION)
    inputs = function.inputs
    assert function.name == names.function
    assert inputs["runtime"] == "python3.12"
    assert inputs["architectures"] == ["arm64"]
    assert (inputs["memorySize"], inputs["timeout"]) == (1536, 60)
    assert inputs["handler"] == HANDLER == "lambda_pkg.handler.handler"
    assert inputs["role"] == mocks.one(ROLE).outputs["arn"]
    assert inputs["layers"] == [mocks.one(LAYER).outputs["arn"]]

    variables = inputs["environment"]["variables"]
    assert variables == function_environment(
        deployed.physical(names.output_bucket),
        deployed.physical(names.metadata_table),
        deployed.config,
        deployed.physical(names.event_bus),
    )
    assert PipelineConfig.from_json(variables["PROFILE_CONFIG"]) == deployed.config
    # Its policy exists before it can be invoked (else even its logs would be denied).
    assert mocks.one(ROLE_POLICY).urn in function.dependencies


def test_function_code_is_the_lambda_package() -> None:
    mocks = deploy()
    code = mocks.mocks.one(FUNCTION).inputs["code"]
    assert isinstance(code, pulumi.FileArchive)
    with zipfile.ZipFile(code.path) as archive:
        names = archive.namelist()
    assert "lambda_pkg/profiles.py" in names
    assert "lambda_pkg/settings.py" in names
    assert all(name.startswith("lambda_pkg/") for name in names)
    # the sources, and their bytecode for the runtime when this machine has its interpreter
    assert {n.rpartition("/")[2].split(".")[-1] for n in names} <= {"py", "pyc"}
    assert all(".cpython-312.pyc" in n for n in names if n.endswith(".pyc"))


def test_role_trusts_lambda_and_its_policy_is_exactly_function_policy(
    deployed: Deployment,
) -> None:
    mocks, names = deployed.mocks, deployed.names
    role = mocks.one(ROLE)
    assert json.loads(role.inputs["assumeRolePolicy"]) == assume_role_policy()
    assert "managedPolicyArns" not in role.inputs
    policy = mocks.one(ROLE_POLICY)
    assert policy.inputs["role"] == role.id
    buckets = {r.name: r.outputs["arn"] for r in mocks.of_type(BUCKET)}
    assert json.loads(policy.inputs["policy"]) == function_policy(
        buckets[names.input_bucket],
        buckets[names.output_bucket],
        mocks.one(TABLE).outputs["arn"],
        mocks.one(LOG_GROUP).outputs["arn"],
        read_patterns=[("", "")],
        dead_letter_queue_arn=mocks.one(QUEUE).outputs["arn"],
        event_bus_arn=mocks.one(EVENT_BUS).outputs["arn"],
    )


def test_s3_may_invoke_the_function_only_from_the_input_bucket(deployed: Deployment) -> None:
    mocks, names = deployed.mocks, deployed.names
    permission = mocks.one(PERMISSION).inputs
    assert permission == {
        "action": "lambda:InvokeFunction",
        "function": mocks.one(FUNCTION).outputs["name"],
        "principal": "s3.amazonaws.com",
        "sourceArn": f"arn:aws:s3:::{deployed.physical(names.input_bucket)}",
        "sourceAccount": ACCOUNT,
    }
    assert mocks.calls == [CALLER_IDENTITY]


def test_uploads_trigger_the_function_after_the_permission_exists(deployed: Deployment) -> None:
    mocks, names = deployed.mocks, deployed.names
    notification = mocks.one(NOTIFICATION)
    assert notification.inputs == {
        "bucket": deployed.physical(names.input_bucket),
        "lambdaFunctions": [
            {
                "events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                "lambdaFunctionArn": mocks.one(FUNCTION).outputs["arn"],
            }
        ],
    }
    assert mocks.one(PERMISSION).urn in notification.dependencies


def test_settings_reach_the_function_layer_and_logs(fake_layer: list[tuple[str, str]]) -> None:
    settings = StackSettings(
        runtime="python3.13",
        architecture="x86_64",
        memory_mb=2048,
        timeout_s=300,
        log_retention_days=30,
    )
    mocks = deploy(settings=settings).mocks
    function = mocks.one(FUNCTION).inputs
    assert (function["runtime"], function["architectures"]) == ("python3.13", ["x86_64"])
    assert (function["memorySize"], function["timeout"]) == (2048, 300)
    assert mocks.one(LAYER).inputs["compatibleArchitectures"] == ["x86_64"]
    assert mocks.one(LAYER).inputs["compatibleRuntimes"] == ["python3.13"]
    assert mocks.one(LOG_GROUP).inputs["retentionInDays"] == 30
    assert fake_layer == [("python3.13", "x86_64")]


def test_component_outputs_are_the_physical_names() -> None:
    names = resource_names("imgpipe", "dev")
    config = PipelineConfig.single(load_named("web"))

    def program() -> pulumi.Output:
        pipeline = image_pipeline(config, StackSettings(), names)

        def check(values: list[str]) -> None:
            assert values == [
                names.input_bucket + SUFFIX,
                names.output_bucket + SUFFIX,
                names.metadata_table + SUFFIX,
                names.function + SUFFIX,
            ]

        return pulumi.Output.all(
            pipeline.input_bucket_name,
            pipeline.output_bucket_name,
            pipeline.table_name,
            pipeline.function_name,
        ).apply(check)

    run_program(program)


def test_a_failing_output_check_fails_the_test() -> None:
    # Guards the guard: an assertion inside apply() must not be swallowed.
    def program() -> pulumi.Output:
        pipeline = deploy_inline()
        return pipeline.function_name.apply(lambda name: _fail(name))

    with pytest.raises(AssertionError, match="imgpipe-dev-processor"):
        run_program(program)


def deploy_inline() -> ImagePipeline:
    names = resource_names("imgpipe", "dev")
    config = PipelineConfig.single(load_named("thumbnail"))
    return image_pipeline(config, StackSettings(), names)


def _fail(value: str) -> None:
    raise AssertionError(value)


# -- the program (__main__.py) ----------------------------------------------------------


def test_main_exports_the_outputs() -> None:
    mocks = run_main()
    names = resource_names("imgpipe", "dev")
    dlq = names.dead_letter_queue + SUFFIX
    assert mocks.exported == {  # type: ignore[attr-defined]
        OUTPUT_INPUT_BUCKET: names.input_bucket + SUFFIX,
        OUTPUT_OUTPUT_BUCKET: names.output_bucket + SUFFIX,
        OUTPUT_METADATA_TABLE: names.metadata_table + SUFFIX,
        OUTPUT_FUNCTION_NAME: names.function + SUFFIX,
        OUTPUT_DEAD_LETTER_QUEUE: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{dlq}",
        OUTPUT_DEAD_LETTER_QUEUE_ARN: arn("sqs", dlq),
        OUTPUT_ALARM_TOPIC: arn("sns", f"{names.function}-alarms{SUFFIX}"),
        OUTPUT_EVENT_BUS: names.event_bus + SUFFIX,
        OUTPUT_EVENT_BUS_ARN: arn("events", f"event-bus/{names.event_bus}{SUFFIX}"),
    }
    assert mocks.one(TYPE_TOKEN).name == "image-pipeline"


def test_main_reads_stack_config(fake_layer: list[tuple[str, str]]) -> None:
    config = {"profile": "web", "architecture": "x86_64", "memory": "2048", "timeout": "30"}
    mocks = run_main(config=config, stack="prod")
    function = mocks.one(FUNCTION)
    assert function.name == "imgpipe-prod-processor"
    assert function.inputs["architectures"] == ["x86_64"]
    assert (function.inputs["memorySize"], function.inputs["timeout"]) == (2048, 30)
    profile_config = PipelineConfig.from_json(
        function.inputs["environment"]["variables"]["PROFILE_CONFIG"]
    )
    assert profile_config == PipelineConfig.single(load_named("web"))
    assert fake_layer == [("python3.12", "x86_64")]


@pytest.mark.parametrize(
    ("config", "stack", "error", "match"),
    [
        ({"profile": "no-such-profile"}, "dev", ProfileError, "one of .*thumbnail"),
        ({"runtime": "python3.11"}, "dev", StackSettingsError, "imgpipe:runtime"),
        ({"logRetentionDays": "10"}, "dev", StackSettingsError, "imgpipe:logRetentionDays"),
        ({"protect": "no"}, "dev", StackSettingsError, "imgpipe:protect"),
        (
            {"layerArn": "arn:aws:lambda:eu-west-1:123456789012:layer:pillow"},
            "dev",
            StackSettingsError,
            "with its version number",
        ),
    ],
)
def test_bad_config_fails_before_any_resource(
    config: dict[str, str], stack: str, error: type[Exception], match: str
) -> None:
    mocks = PipelineMocks()

    def program() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")

    pulumi.runtime.reset_options(project="imgpipe", stack=stack)
    pulumi.runtime.set_all_config({f"imgpipe:{k}": v for k, v in config.items()})
    pulumi.runtime.set_mocks(mocks, project="imgpipe", stack=stack, preview=True)
    with pytest.raises(error, match=match):
        pulumi.runtime.test(program)()
    assert mocks.resources == {}
    assert mocks.calls == []


def test_the_program_never_imports_pillow() -> None:
    # pipeline/ runs where Pulumi runs; Pillow is fetched for another platform, never loaded.
    code = "import sys, pipeline.program.component; assert 'PIL' not in sys.modules, 'PIL imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
