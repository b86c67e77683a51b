"""The production policy pack (policy/), run over the program under Pulumi's mocks.

The pack's own validations are called on resources shaped as pulumi_policy shapes them for
the engine (policy.py, `Analyze` and `AnalyzeStack`): resource policies get each resource's
inputs, stack policies every resource's outputs with its parent, dependencies and property
dependencies; all values pass through a protobuf Struct (numbers become floats),
pulumi_policy's deserializer and its proxy that raises on unknown values. Then the pack is
started as pulumi starts it and asked over gRPC, to show it says the same.

Good stacks pass; deliberately broken ones fail with a message naming the resource; in a
preview, where ids, ARNs and names are unknown, the rules report nothing false.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties, serialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

import imgpipe_policy
from imgpipe_policy import PACK_NAME, POLICIES, UNKNOWN
from lambda_pkg.profiles import PipelineConfig, Route, load_named
from pipeline.program import component, iam
from pipeline.program.component import ImagePipeline
from pipeline.program.names import resource_names
from pipeline.program.stack import StackSettings
from tests.support.aws import KMS_KEY_ARN
from tests.support.pulumi_program import (
    ALARM,
    BUCKET,
    BUCKET_POLICY,
    FUNCTION,
    INVOKE_CONFIG,
    LOG_GROUP,
    PUBLIC_ACCESS,
    QUEUE,
    RECURSION,
    REPO,
    ROLE_POLICY,
    TABLE,
    TOPIC,
    PipelineMocks,
    Registered,
    image_pipeline,
    run_program,
)

pytestmark = pytest.mark.usefixtures("fake_layer")  # no pip build under the mocks

POLICY_DIR = REPO / "policy"
THUMBNAIL = PipelineConfig.single(load_named("thumbnail"))
EVERYTHING_ON = StackSettings(
    kms_key_arn=KMS_KEY_ARN,
    versioning=True,
    output_expiration_days=30,
    alarm_email="ops@example.com",
    reserved_concurrency=5,
    tracing=True,
)

# -- resources as the engine hands them to a policy pack ----------------------------------


def as_engine_sends(value: Any) -> Any:
    """An unknown Output reaches the mocks as pulumi's Unknown; the engine sends a policy
    pack the string sentinel the SDK put on the wire (the same UnknownStringValue)."""
    if isinstance(value, Unknown):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, Mapping):
        return {key: as_engine_sends(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_engine_sends(v) for v in value]
    return value


def to_struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(serialize_properties(as_engine_sends(values)))
    return struct


def policy_props(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a validation sees as `props` (pulumi_policy's Analyze/AnalyzeStack)."""
    return unknown_checking_proxy(
        deserialize_properties(json_format.MessageToDict(to_struct(values)))
    )


def stack_props(resource: Registered) -> dict[str, Any]:
    """A resource's outputs as the engine keeps them: the provider's outputs and its id."""
    return {"id": resource.id, **resource.outputs}


def options(resource: Registered) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], resource.parent or None
    )


def stack_resources(resources: Iterable[Registered]) -> list[PolicyResource]:
    """The resources of a StackValidationArgs, linked by URN like AnalyzeStack links them
    (the engine sends a property's dependencies only when there are some)."""
    registered = list(resources)
    by_urn = {
        r.urn: PolicyResource(
            r.typ, policy_props(stack_props(r)), r.urn, r.name, options(r), None, None, [], {}
        )
        for r in registered
    }
    for r in registered:
        resource = by_urn[r.urn]
        resource.parent = by_urn.get(r.parent)
        resource.dependencies = [by_urn[u] for u in r.dependencies if u in by_urn]
        resource.property_dependencies = {
            key: [by_urn[u] for u in urns if u in by_urn]
            for key, urns in r.property_dependencies.items()
            if urns
        }
    return list(by_urn.values())


def check(resources: Iterable[Registered]) -> dict[str, list[str]]:
    """Every violation the pack's policies report, by policy name, in the pack's order."""
    registered = list(resources)
    stack = stack_resources(registered)
    urns = {r.urn for r in registered}
    report: dict[str, list[str]] = {}
    for policy in POLICIES:

        def report_violation(message: str, urn: str | None = None, name: str = policy.name):
            # A stack violation points at a resource of the stack; every message names it.
            assert urn is None or (urn in urns and message.startswith(f"{urn}: ")), message
            report.setdefault(name, []).append(message)

        if isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(stack), report_violation)
            continue
        assert isinstance(policy, ResourceValidationPolicy)
        for r in registered:
            args = ResourceValidationArgs(
                r.typ, policy_props(r.inputs), r.urn, r.name, options(r), None
            )
            policy.validate(args, report_violation)
    return report


# -- running the program ------------------------------------------------------------------


class PreviewMocks(PipelineMocks):
    """Answers as a `pulumi preview` of a new stack does: what AWS assigns is unknown."""

    ASSIGNED = ("arn", "name", "bucket", "url")

    def new_resource(self, args: Any) -> tuple[str, dict]:
        _, outputs = super().new_resource(args)
        for key in self.ASSIGNED:
            if key in outputs and key not in args.inputs:
                outputs[key] = UNKNOWN_STRING_VALUE  # the SDK resolves it as unknown
        self.resources[args.name].id = UNKNOWN_STRING_VALUE
        return "", outputs  # no id yet


def run(
    cls: type[ImagePipeline] = ImagePipeline,
    settings: StackSettings | None = None,
    config: PipelineConfig = THUMBNAIL,
    preview: bool = False,
) -> PipelineMocks:
    names = resource_names("imgpipe", "dev")
    settings = settings or StackSettings()
    mocks = PreviewMocks() if preview else PipelineMocks()
    program = lambda: image_pipeline(config, settings, names, cls=cls)  # noqa: E731
    return run_program(program, mocks=mocks, preview=preview)


def resources(mocks: PipelineMocks) -> list[Registered]:
    return list(mocks.resources.values())


SINGLE_BUCKET_ROUTES = (Route("thumbnail", prefix="uploads/"),)
GOOD_STACKS = {
    "defaults": {},
    "everything-on": {"settings": EVERYTHING_ON},
    "single-bucket": {
        "settings": StackSettings(single_bucket=True, routes=SINGLE_BUCKET_ROUTES),
        "config": PipelineConfig(THUMBNAIL.profiles, SINGLE_BUCKET_ROUTES),
    },
}

# -- good stacks pass, in an update and in a preview --------------------------------------


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", GOOD_STACKS)
def test_the_stack_meets_the_production_policy(stack: str, preview: bool) -> None:
    mocks = run(preview=preview, **GOOD_STACKS[stack])
    if stack == "single-bucket":
        assert len(mocks.of_type(BUCKET)) == 1
    assert check(resources(mocks)) == {}


def test_a_preview_links_resources_by_dependency_not_by_unknown_values() -> None:
    # GIVEN a preview: the values that link resources are unknown, so matching an attachment
    # to its bucket by `bucket == bucket.id` (as the hand-rolled check did) finds none
    assert rpc.UNKNOWN == UNKNOWN_STRING_VALUE  # what the SDK sends is what a pack receives
    mocks = run(preview=True)
    stack = stack_resources(resources(mocks))
    for typ, path in [
        (PUBLIC_ACCESS, ("bucket",)),
        (BUCKET_POLICY, ("policy",)),
        (ROLE_POLICY, ("policy",)),
        (INVOKE_CONFIG, ("functionName",)),
        (RECURSION, ("functionName",)),
        (ALARM, ("dimensions", "FunctionName")),
        (FUNCTION, ("loggingConfig", "logGroup")),
        (QUEUE, ("arn",)),
    ]:
        values = [imgpipe_policy.get(r.props, *path) for r in stack if r.resource_type == typ]
        assert UNKNOWN in values, (typ, path)
    # AND each attachment's `bucket` depends on its bucket alone
    for attachment in [r for r in stack if r.resource_type == PUBLIC_ACCESS]:
        (bucket,) = attachment.property_dependencies["bucket"]
        assert bucket.resource_type == BUCKET
    # THEN the pack links through those dependencies and reports nothing false
    assert check(resources(mocks)) == {}


def test_a_stack_with_nothing_known_yet_is_never_judged() -> None:
    # GIVEN every property of every resource unknown (but the dependencies recorded)
    unknown = [
        replace(
            r, inputs={k: Unknown() for k in r.inputs}, outputs={k: Unknown() for k in r.outputs}
        )
        for r in resources(run(settings=EVERYTHING_ON))
    ]
    # THEN no rule reports anything, and none reads an unknown value unguarded
    assert check(unknown) == {}


# -- deliberately broken stacks fail, naming the resource ---------------------------------


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_a_function_that_drops_failures_is_named(preview: bool) -> None:
    # Linked through property dependencies: found in a preview too, where names are unknown.
    mocks = run(NoFailureDestination, preview=preview)
    function = mocks.one(FUNCTION)
    assert check(resources(mocks)) == {
        "lambda-failures-kept": [
            f"{function.urn}: no on-failure destination (failed events would be dropped)"
        ],
        "lambda-recursion-terminated": [
            f"{function.urn}: recursive loop detection is not set to Terminate"
        ],
    }


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_a_function_without_alarms_is_named(preview: bool) -> None:
    mocks = run(NoAlarms, preview=preview)
    function, queue = mocks.one(FUNCTION), mocks.one(QUEUE)
    assert check(resources(mocks)) == {
        "lambda-failure-queue-alarmed": [
            f"{queue.urn}: failure queue of {function.urn} has no depth alarm"
        ],
        "lambda-alarmed": [
            f"{function.urn}: no alarm (with an action) on Errors, Throttles, Duration"
        ],
    }


def test_a_bucket_without_tls_only_policy_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the output bucket's TLS policy is replaced by one that allows plain HTTP
    real = iam.tls_only_bucket_policy

    def broken(arn: str) -> dict:
        document = real(arn)
        if "-output" in arn:
            document["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
        return document

    monkeypatch.setattr(iam, "tls_only_bucket_policy", broken)
    mocks = run()
    # THEN the pack names the output bucket, and only it
    output = next(b for b in mocks.of_type(BUCKET) if "-output" in b.name)
    assert check(resources(mocks)) == {"s3-bucket-tls-only": [f"{output.urn}: {NOT_TLS_ONLY}"]}
    assert len(mocks.of_type(BUCKET_POLICY)) == 2
    # AND a preview cannot tell yet (the document holds the bucket's ARN): it says nothing
    assert check(resources(run(preview=True))) == {}


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
    policy_urn = mocks.one(ROLE_POLICY).urn
    assert check(resources(mocks)) == {
        "iam-no-wildcard-grants": [
            f"{policy_urn}: statement Quickfix allows the wildcard action 's3:*'",
            f"{policy_urn}: statement Quickfix allows s3:* on resource '*' "
            "(these actions take resource ARNs)",
        ]
    }


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            {"Action": "iam:Pass*", "Resource": "arn:aws:iam::1:role/r"},
            "wildcard action 'iam:Pass*'",
        ),
        ({"Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/*"}, "allows NotResource"),
        (
            {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"},
            "s3:GetObject on resource 'arn:aws:s3:::*', every resource of its kind",
        ),
        (
            {"Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:eu-west-1:1:table/*"},
            "on resource 'arn:aws:dynamodb:eu-west-1:1:table/*', every resource of its kind",
        ),
    ],
    ids=["partial-action", "not-resource", "any-bucket", "any-table"],
)
def test_grants_wider_than_they_look_are_named(statement: dict, expected: str) -> None:
    document = {"Statement": [{"Sid": "Wide", "Effect": "Allow", **statement}]}
    for props in ({"policy": json.dumps(document)}, {"inlinePolicies": [{"policy": document}]}):
        assert [m for m in imgpipe_policy.no_wildcard_grants(props) if expected in m], props


def test_the_functions_own_grants_are_not_mistaken_for_wide_ones() -> None:
    # processed/* in one bucket, the log group's streams (:*), the owner index: all scoped.
    mocks = run(settings=StackSettings(tracing=True, kms_key_arn=KMS_KEY_ARN))
    assert list(imgpipe_policy.no_wildcard_grants(mocks.one(ROLE_POLICY).inputs)) == []


def test_a_topic_under_the_aws_managed_key_is_named() -> None:
    (message,) = imgpipe_policy.topic_encrypted({"kmsMasterKeyId": "alias/aws/sns"})
    assert "alarm notifications would be dropped" in message
    assert list(imgpipe_policy.topic_encrypted({"kmsMasterKeyId": KMS_KEY_ARN})) == []


@pytest.mark.parametrize(
    "narrowing",
    [{"Action": "s3:GetObject"}, {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}}],
    ids=["one-action", "one-principal"],
)
def test_a_tls_deny_that_leaves_requests_out_is_not_tls_only(
    monkeypatch: pytest.MonkeyPatch, narrowing: dict
) -> None:
    real = iam.tls_only_bucket_policy

    def narrowed(bucket_arn: str) -> dict:
        document = real(bucket_arn)
        document["Statement"][0].update(narrowing)
        return document

    monkeypatch.setattr(iam, "tls_only_bucket_policy", narrowed)
    violations = check(resources(run()))
    assert list(violations) == ["s3-bucket-tls-only"]
    assert len(violations["s3-bucket-tls-only"]) == 2  # both buckets


def test_logs_kept_forever_are_named() -> None:
    mocks = run(settings=StackSettings(log_retention_days=0))
    function, logs = mocks.one(FUNCTION), mocks.one(LOG_GROUP)
    assert check(resources(mocks)) == {
        "lambda-logs-retained": [
            f"{logs.urn}: log group of {function.urn} keeps logs forever (no retention)"
        ]
    }


class NoAlarms(ImagePipeline):
    def _alarm(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None


class NoFailureDestination(ImagePipeline):
    def _create_failure_handling(self) -> None:
        # Retries configured, but where do failures go? Nowhere: they are dropped.
        self.invoke_config = component.aws.lambda_.FunctionEventInvokeConfig(
            "imgpipe-dev-processor-async",
            function_name=self.function.name,
            maximum_retry_attempts=2,
            opts=self._child,
        )


NOT_TLS_ONLY = (
    "not TLS-only (no bucket policy denying aws:SecureTransport=false on the bucket and its "
    "objects)"
)

# -- hand-written resources ----------------------------------------------------------------


def resource(
    typ: str, name: str, props: dict[str, Any], **property_dependencies: Registered
) -> Registered:
    urn = f"urn:pulumi:dev::imgpipe::{typ}::{name}"
    deps = {key: (r.urn,) for key, r in property_dependencies.items()}
    return Registered(
        typ,
        name,
        props,
        props,
        name,
        urn,
        dependencies=tuple(deps.values()),
        property_dependencies=deps,
    )


def test_a_bare_bucket_is_named_for_every_bucket_rule() -> None:
    bare = resource(BUCKET, "bare", {"bucket": "bare", "arn": "arn:aws:s3:::bare"})
    assert check([bare]) == {
        "s3-bucket-public-access-blocked": [
            f"{bare.urn}: public access is not fully blocked (blockPublicAcls, "
            "blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets)"
        ],
        "s3-bucket-owner-enforced": [
            f"{bare.urn}: ownership is not BucketOwnerEnforced (ACLs still apply)"
        ],
        "s3-bucket-encrypted": [f"{bare.urn}: no default encryption at rest"],
        "s3-bucket-tls-only": [f"{bare.urn}: {NOT_TLS_ONLY}"],
    }


def test_attachments_are_linked_by_their_dependency_or_a_known_name() -> None:
    # GIVEN three buckets: one blocked by its known name, one through the attachment's
    # dependency (its `bucket` unknown, as in a preview), one by neither
    named, linked, lonely = (
        resource(BUCKET, name, {"bucket": f"{name}-1", "arn": f"arn:aws:s3:::{name}-1"})
        for name in ("named", "linked", "lonely")
    )
    flags = dict.fromkeys(imgpipe_policy.PUBLIC_ACCESS_FLAGS, True)
    blocks = [
        resource(PUBLIC_ACCESS, "by-name", {**flags, "bucket": "named-1"}),
        resource(PUBLIC_ACCESS, "by-dependency", {**flags, "bucket": Unknown()}, bucket=linked),
    ]
    # THEN only the lonely bucket is named: neither attachment can be its
    report = check([named, linked, lonely, *blocks])
    assert report["s3-bucket-public-access-blocked"] == [
        f"{lonely.urn}: public access is not fully blocked (blockPublicAcls, "
        "blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets)"
    ]


def test_values_not_known_yet_are_not_judged() -> None:
    bucket = resource(BUCKET, "b", {"bucket": "b-1", "arn": Unknown()})
    # Unknown with no dependency recorded: it may be this bucket's, so the bucket may be fine.
    flags = dict.fromkeys(imgpipe_policy.PUBLIC_ACCESS_FLAGS, True)
    block = resource(PUBLIC_ACCESS, "block", {**flags, "bucket": Unknown()})
    stack = [
        bucket,
        block,
        resource(ROLE_POLICY, "policy", {"policy": Unknown()}),
        resource(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "attach", {"policyArn": Unknown()}
        ),
        resource("aws:iam/role:Role", "role", {"managedPolicyArns": [Unknown()]}),
        resource(TABLE, "table", {"pointInTimeRecovery": {"enabled": Unknown()}}),
        resource(TOPIC, "topic", {"kmsMasterKeyId": Unknown()}),
    ]
    # THEN none of those is judged, while what is known still is (nothing else is attached)
    assert check(stack) == {
        "s3-bucket-owner-enforced": [
            f"{bucket.urn}: ownership is not BucketOwnerEnforced (ACLs still apply)"
        ],
        "s3-bucket-encrypted": [f"{bucket.urn}: no default encryption at rest"],
        "s3-bucket-tls-only": [f"{bucket.urn}: {NOT_TLS_ONLY}"],
    }


def test_broad_managed_policies_and_resource_wildcards() -> None:
    role = resource(
        "aws:iam/role:Role",
        "role",
        {"managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]},
    )
    attachment = resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "attachment",
        {"policyArn": "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"},
    )
    fine = {
        "Statement": [
            {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
             "Resource": "*"},
            {"Sid": "Deny", "Effect": "Deny", "Action": "*", "Resource": "*"},
        ]
    }  # fmt: skip
    policy = resource(ROLE_POLICY, "policy", {"policy": json.dumps(fine)})
    assert check([role, attachment, policy]) == {
        "iam-no-broad-managed-policies": [
            f"{role.urn}: attaches the broad managed policy "
            "arn:aws:iam::aws:policy/AmazonS3FullAccess",
            f"{attachment.urn}: attaches the broad managed policy "
            "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
        ]
    }


def test_tables_without_point_in_time_recovery_and_plain_topics_are_named() -> None:
    table = resource(TABLE, "table", {"pointInTimeRecovery": {"enabled": False}})
    bare_table = resource(TABLE, "bare-table", {})
    topic = resource(TOPIC, "topic", {"kmsMasterKeyId": ""})
    fine = [
        resource(TABLE, "fine-table", {"pointInTimeRecovery": {"enabled": True}}),
        resource(TOPIC, "fine-topic", {"kmsMasterKeyId": KMS_KEY_ARN}),
    ]
    pitr = (
        "point-in-time recovery is off (pointInTimeRecovery.enabled): a bad write or delete "
        "cannot be rolled back"
    )
    assert check([table, bare_table, topic, *fine]) == {
        "dynamodb-point-in-time-recovery": [f"{table.urn}: {pitr}", f"{bare_table.urn}: {pitr}"],
        "sns-topic-encrypted": [f"{topic.urn}: not encrypted at rest (no kmsMasterKeyId)"],
    }


# -- the pack, started as pulumi starts it ------------------------------------------------


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """`python -u -m pulumi.policy <engine> <pack>` in the pack's folder: the command the
    python language host's RunPlugin builds for a policy pack. It prints its port."""
    command = [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY_DIR)]
    log = tmp_path_factory.mktemp("pack") / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=POLICY_DIR, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        port = process.stdout.readline().strip() if ready else ""  # type: ignore[union-attr]
        if not port.isdigit():
            pytest.fail(f"the pack did not start: {port!r}\n{log.read_text()}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_pack_starts_and_describes_its_policies(
    pack: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == PACK_NAME
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    assert len(set(p.name for p in POLICIES)) == len(POLICIES)
    for policy in info.policies:
        assert policy.enforcementLevel == analyzer_pb2.MANDATORY, policy.name
        assert policy.description.endswith("."), policy.name
    types = {p.name: p.policy_type for p in info.policies}
    assert types["dynamodb-point-in-time-recovery"] == analyzer_pb2.POLICY_TYPE_RESOURCE
    assert types["s3-bucket-tls-only"] == analyzer_pb2.POLICY_TYPE_STACK


def analyzer_resource(r: Registered) -> analyzer_pb2.AnalyzerResource:
    return analyzer_pb2.AnalyzerResource(
        urn=r.urn,
        type=r.typ,
        name=r.name,
        properties=to_struct(stack_props(r)),
        options=analyzer_pb2.AnalyzerResourceOptions(parent=r.parent),
        parent=r.parent,
        dependencies=r.dependencies,
        propertyDependencies={
            key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
            for key, urns in r.property_dependencies.items()
            if urns
        },
    )


def ask(pack: analyzer_pb2_grpc.AnalyzerStub, stack: list[Registered]) -> dict[str, list[str]]:
    """The pack's diagnostics over gRPC, as `check` reports them."""
    diagnostics = list(
        pack.AnalyzeStack(
            analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_resource(r) for r in stack])
        ).diagnostics
    )
    for r in stack:
        request = analyzer_pb2.AnalyzeRequest(
            urn=r.urn, type=r.typ, name=r.name, properties=to_struct(r.inputs)
        )
        diagnostics += pack.Analyze(request).diagnostics
    report: dict[str, list[str]] = {}
    order = [p.name for p in POLICIES]
    for d in sorted(diagnostics, key=lambda d: order.index(d.policyName)):
        # Mandatory, never the advisory "can't run policy ... during preview".
        assert d.enforcementLevel == analyzer_pb2.MANDATORY, d.message
        description, message = d.message.split("\n", 1)
        assert description == d.description
        report.setdefault(d.policyName, []).append(message)
    return report


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_the_running_pack_reports_what_the_rules_report(
    pack: analyzer_pb2_grpc.AnalyzerStub, preview: bool
) -> None:
    # The same verdicts, whatever the stack: through the wire and proxies, nothing is lost.
    good = resources(run(settings=EVERYTHING_ON, preview=preview))
    broken = resources(run(NoAlarms, preview=preview))
    assert ask(pack, good) == check(good)
    assert ask(pack, broken) == check(broken)
    assert "lambda-alarmed" in check(broken)
