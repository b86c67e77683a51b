"""imgpipe's production policy: the rules of the CrossGuard policy pack in this folder.

pulumi runs the pack as `python -m pulumi.policy <engine> <this folder>`, in this folder and
with it on sys.path, in the pack's own virtualenv; so `__main__.py` imports this module by its
plain name, and it depends on pulumi_policy and the standard library only. The tests import it
the same way (pytest's `pythonpath`), and call these rules on the mocked stack.

Resource rules see one resource's inputs before it is created or updated; stack rules see the
outputs of every resource at the end of a preview or update, each with the resources its
properties depend on. Every violation names the resource's URN and what is wrong with it.

Unknown values: during `pulumi preview` a new resource's id, ARN and computed name, and all
that is built from them (an attachment's `bucket`, a policy document holding ARNs), are not
known yet. pulumi_policy delivers them as sentinel strings behind a proxy that raises
UnknownValueError when one is read, and a rule that lets it escape is abandoned whole with a
"can't run policy during preview" note. Here every read goes through `get` (or `items`): an
unknown value reads as UNKNOWN, every check answers True, False or UNKNOWN, and only False
is reported. Resources are linked through property dependencies, which the engine knows in
preview too, or by known values that are equal; the value is judged by the update that knows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pulumi_policy import (
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

PACK_NAME = "imgpipe-production"

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
RECURSION = "aws:lambda/functionRecursionConfig:FunctionRecursionConfig"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUE = "aws:sqs/queue:Queue"
TABLE = "aws:dynamodb/table:Table"
TOPIC = "aws:sns/topic:Topic"

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
ENCRYPTION_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
# Actions that have no resource ARN: IAM only accepts "*" as their resource.
ACTIONS_WITHOUT_RESOURCES = frozenset(
    {
        "cloudwatch:PutMetricData",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
        "logs:DescribeLogGroups",
    }
)
FUNCTION_ALARM_METRICS = ("Errors", "Throttles", "Duration")
DLQ_METRIC = "ApproximateNumberOfMessagesVisible"
AWS_MANAGED_SNS_KEY = "alias/aws/sns"
NOT_TLS_ONLY = (
    "not TLS-only (no bucket policy denying aws:SecureTransport=false on the bucket and its "
    "objects)"
)

# -- values pulumi may not know yet ------------------------------------------------------


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""What `get` and `items` give for a value pulumi cannot know yet: never judged."""

# The engine marshals an unknown value as one of these strings (by the value's type);
# pulumi_policy's proxy raises UnknownValueError when a rule reads one.
_SENTINELS = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)

Verdict = Any  # True, False or UNKNOWN
# Does a resource (first) meet the rule for the resource it names (second)?
Check = Callable[[PolicyResource, PolicyResource], Verdict]


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in _SENTINELS)


def get(props: Any, *path: str) -> Any:
    """props[path[0]][path[1]]...: None where absent, UNKNOWN where not known yet."""
    value = props
    for key in path:
        if is_unknown(value):
            return UNKNOWN
        if not isinstance(value, Mapping):
            return None
        try:
            value = value[key]
        except KeyError:
            return None
        except UnknownValueError:
            return UNKNOWN
    return UNKNOWN if is_unknown(value) else value


def items(value: Any) -> Any:
    """A list value's elements (a lone value as a list of one), unknown ones as UNKNOWN;
    UNKNOWN when the list itself is not known."""
    if is_unknown(value):
        return UNKNOWN
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    elements = []
    for index in range(len(value)):
        try:
            element = value[index]
        except UnknownValueError:
            element = UNKNOWN
        elements.append(UNKNOWN if is_unknown(element) else element)
    return elements


def any_of(verdicts: Iterable[Verdict]) -> Verdict:
    """True if one is True; else UNKNOWN if one is unknown; else False."""
    unknown = False
    for verdict in verdicts:
        if verdict is True:
            return True
        unknown = unknown or verdict is UNKNOWN
    return UNKNOWN if unknown else False


def all_of(verdicts: Iterable[Verdict]) -> Verdict:
    """False if one is False; else UNKNOWN if one is unknown; else True."""
    return negate(any_of(negate(verdict) for verdict in verdicts))


def negate(verdict: Verdict) -> Verdict:
    return UNKNOWN if verdict is UNKNOWN else not verdict


def equals(value: Any, expected: Any) -> Verdict:
    return UNKNOWN if value is UNKNOWN else value == expected


def present(value: Any) -> Verdict:
    """Set to something: an unknown value will be something."""
    return UNKNOWN if value is UNKNOWN else bool(value)


# -- linking resources the way the engine does -------------------------------------------


class Ref(NamedTuple):
    """Where a resource names another: the value at `path` in its props, equal to one of
    the target's props `by` (the engine records the dependency under `path[0]`)."""

    path: tuple[str, ...]
    by: tuple[str, ...]


BUCKET_OF = Ref(("bucket",), ("bucket", "id"))
FUNCTION_OF = Ref(("functionName",), ("name", "arn"))
LOG_GROUP_OF = Ref(("loggingConfig", "logGroup"), ("name",))
FAILURE_DESTINATION = Ref(("destinationConfig", "onFailure", "destination"), ("arn",))


def refers_to(resource: PolicyResource, ref: Ref, target: PolicyResource) -> Verdict:
    """Does `resource` name `target` where `ref` says?

    True when the value is known and equal to one of the target's known values, or when the
    property's only dependency is the target (the engine records that in preview too).
    UNKNOWN when the value is unknown and its dependencies cannot place it (none recorded,
    or several, the target among them); False otherwise.
    """
    value = get(resource.props, *ref.path)
    if value is None:
        return False
    dependencies = {d.urn for d in resource.property_dependencies.get(ref.path[0]) or []}
    if dependencies == {target.urn}:
        return True
    if value is not UNKNOWN:
        known = [get(target.props, prop) for prop in ref.by]
        return any(v == value for v in known if v is not None and v is not UNKNOWN)
    return UNKNOWN if not dependencies or target.urn in dependencies else False


StackCheck = Callable[["Stack"], Iterable[tuple[str, str]]]  # (URN, what is wrong) each


class Stack:
    """The resources a stack validation is given, by type and by reference."""

    def __init__(self, resources: Iterable[PolicyResource]) -> None:
        self.resources = list(resources)

    def of(self, typ: str) -> list[PolicyResource]:
        return [r for r in self.resources if r.resource_type == typ]

    def referring(
        self, typ: str, ref: Ref, target: PolicyResource
    ) -> list[tuple[PolicyResource, Verdict]]:
        """Every `typ` resource that names or may name `target`, with True or UNKNOWN."""
        found = [(r, refers_to(r, ref, target)) for r in self.of(typ)]
        return [(r, link) for r, link in found if link is not False]

    def covered(self, typ: str, ref: Ref, target: PolicyResource, ok: Check) -> Verdict:
        """Does a `typ` resource that names `target` satisfy `ok`?"""
        found = self.referring(typ, ref, target)
        return any_of(all_of((link, ok(r, target))) for r, link in found)


def every(target_type: str, typ: str, ref: Ref, ok: Check, message: str) -> StackCheck:
    """Every `target_type` resource is named (at `ref`) by a `typ` resource that is `ok`."""

    def check(stack: Stack) -> Iterable[tuple[str, str]]:
        for target in stack.of(target_type):
            if stack.covered(typ, ref, target, ok) is False:
                yield target.urn, message

    return check


def stack_policy(name: str, description: str, check: StackCheck) -> StackValidationPolicy:
    """A stack policy from a generator of (URN, what is wrong) over the stack's outputs."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for urn, message in check(Stack(args.resources)):
            report_violation(f"{urn}: {message}", urn)

    return StackValidationPolicy(name=name, description=description, validate=validate)


def resource_policy(
    name: str, description: str, types: tuple[str, ...], check: Callable[[Any], Iterable[str]]
) -> ResourceValidationPolicy:
    """A resource policy of `types` from a generator of what is wrong with the inputs."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in types:
            for message in check(args.props):
                report_violation(f"{args.urn}: {message}", None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)


# -- buckets -----------------------------------------------------------------------------


def _blocks_public_access(block: PolicyResource, _: PolicyResource) -> Verdict:
    return all_of(equals(get(block.props, flag), True) for flag in PUBLIC_ACCESS_FLAGS)


def _enforces_owner(owner: PolicyResource, _: PolicyResource) -> Verdict:
    return equals(get(owner.props, "rule", "objectOwnership"), "BucketOwnerEnforced")


def _encrypts(sse: PolicyResource, _: PolicyResource) -> Verdict:
    rules = items(get(sse.props, "rules"))
    if rules is UNKNOWN:
        return UNKNOWN
    algorithms = [get(r, "applyServerSideEncryptionByDefault", "sseAlgorithm") for r in rules]
    return any_of(UNKNOWN if a is UNKNOWN else a in ENCRYPTION_ALGORITHMS for a in algorithms)


def _denies_plain_http_to(policy: PolicyResource, bucket: PolicyResource) -> Verdict:
    document = _document(get(policy.props, "policy"))
    if document is UNKNOWN:
        return UNKNOWN
    arn = get(bucket.props, "arn")
    return any_of(_denies_plain_http(s, arn) for s in _statements(document))


def _denies_plain_http(statement: Mapping[str, Any], bucket_arn: Any) -> Verdict:
    condition = (statement.get("Condition") or {}).get("Bool") or {}
    if statement.get("Effect") != "Deny":
        return False
    # Every request from anyone: a Deny limited to some actions or principals leaves the
    # others free to use plain HTTP.
    if "s3:*" not in _as_list(statement.get("Action")):
        return False
    if statement.get("Principal") not in ("*", {"AWS": "*"}):
        return False
    if str(condition.get("aws:SecureTransport")).lower() != "false":
        return False
    if bucket_arn is UNKNOWN:
        return UNKNOWN  # which bucket it covers is judged once the ARN is known
    resources = _as_list(statement.get("Resource"))
    return bucket_arn in resources and f"{bucket_arn}/*" in resources


# -- IAM ---------------------------------------------------------------------------------


def no_wildcard_grants(props: Any) -> Iterable[str]:
    # A role's inline policies are grants too, as much as a RolePolicy's.
    inline = items(get(props, "inlinePolicies"))
    documents = [get(props, "policy")]
    if inline is not UNKNOWN:
        documents += [get(p, "policy") for p in inline]
    for raw in documents:
        document = _document(raw)
        if document is UNKNOWN:
            continue  # built from ARNs not known yet: judged when the update knows them
        for statement in _statements(document):
            yield from _statement_violations(statement)


def _statement_violations(statement: Mapping[str, Any]) -> Iterable[str]:
    if statement.get("Effect") != "Allow":
        return  # a Deny with wildcards only takes rights away
    sid = statement.get("Sid", "?")
    actions = _as_list(statement.get("Action"))
    if "NotAction" in statement:
        yield f"statement {sid} allows NotAction (everything but a list)"
    if "NotResource" in statement:
        yield f"statement {sid} allows NotResource (everything but a list)"
    for action in actions:
        # Any wildcard in an action grants actions nobody listed, today's and future ones.
        if isinstance(action, str) and "*" in action:
            yield f"statement {sid} allows the wildcard action {action!r}"
    with_arns = [a for a in actions if a not in ACTIONS_WITHOUT_RESOURCES]
    for resource in _as_list(statement.get("Resource")):
        if with_arns and isinstance(resource, str) and _every_resource(resource):
            scope = "" if resource == "*" else ", every resource of its kind"
            yield (
                f"statement {sid} allows {', '.join(with_arns)} on resource {resource!r}"
                f"{scope} (these actions take resource ARNs)"
            )


def _every_resource(resource: str) -> bool:
    """`*`, or an ARN whose resource part names no resource (`arn:aws:s3:::*`, `table/*`)."""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return False
    return re.fullmatch(r"(?:[A-Za-z-]+[/:])?\*(?:/\*)?", parts[5]) is not None


def no_broad_managed_policies(props: Any) -> Iterable[str]:
    arns = items(get(props, "managedPolicyArns"))
    for arn in [*([] if arns is UNKNOWN else arns), get(props, "policyArn")]:
        if isinstance(arn, str) and _broad_managed(arn):
            yield f"attaches the broad managed policy {arn}"


def _broad_managed(arn: str) -> bool:
    name = arn.rsplit("/", 1)[-1]
    return ":aws:policy/" in arn and (name.endswith("FullAccess") or name == "AdministratorAccess")


# -- functions ---------------------------------------------------------------------------


def logs_retained(stack: Stack) -> Iterable[tuple[str, str]]:
    for function in stack.of(FUNCTION):
        links = [(g, refers_to(function, LOG_GROUP_OF, g)) for g in stack.of(LOG_GROUP)]
        groups = [g for g, link in links if link is True]
        for group in groups:
            if present(get(group.props, "retentionInDays")) is False:
                yield group.urn, f"log group of {function.urn} keeps logs forever (no retention)"
        unplaced = get(function.props, *LOG_GROUP_OF.path) is UNKNOWN or any(
            link is UNKNOWN for _, link in links
        )
        if not groups and not unplaced:
            yield function.urn, "logs go to no log group of this stack (no retention set)"


def _has_failure_destination(config: PolicyResource, _: PolicyResource) -> Verdict:
    return present(get(config.props, *FAILURE_DESTINATION.path))


def _terminates_loops(config: PolicyResource, _: PolicyResource) -> Verdict:
    return equals(get(config.props, "recursiveLoop"), "Terminate")


def failure_queue_alarmed(stack: Stack) -> Iterable[tuple[str, str]]:
    for function in stack.of(FUNCTION):
        configs = stack.referring(INVOKE_CONFIG, FUNCTION_OF, function)
        for config in [c for c, link in configs if link is True]:
            # A destination outside the stack (another function, a bus) is not ours to alarm.
            for queue in stack.of(QUEUE):
                if refers_to(config, FAILURE_DESTINATION, queue) is not True:
                    continue
                if _alarmed(stack, queue, "QueueName", DLQ_METRIC) is False:
                    yield queue.urn, f"failure queue of {function.urn} has no depth alarm"


def function_alarmed(stack: Stack) -> Iterable[tuple[str, str]]:
    for function in stack.of(FUNCTION):
        missing = [
            metric
            for metric in FUNCTION_ALARM_METRICS
            if _alarmed(stack, function, "FunctionName", metric) is False
        ]
        if missing:
            yield function.urn, f"no alarm (with an action) on {', '.join(missing)}"


def _alarmed(stack: Stack, target: PolicyResource, dimension: str, metric: str) -> Verdict:
    """Does an alarm with an action watch `metric` of `target` (named by `dimension`)?"""

    def watches(alarm: PolicyResource, _: PolicyResource) -> Verdict:
        actions = items(get(alarm.props, "alarmActions"))
        has_action = UNKNOWN if actions is UNKNOWN else bool(actions)
        return all_of((equals(get(alarm.props, "metricName"), metric), has_action))

    return stack.covered(ALARM, Ref(("dimensions", dimension), ("name",)), target, watches)


# -- data and notifications --------------------------------------------------------------


def point_in_time_recovery(props: Any) -> Iterable[str]:
    if equals(get(props, "pointInTimeRecovery", "enabled"), True) is False:
        yield (
            "point-in-time recovery is off (pointInTimeRecovery.enabled): a bad write or "
            "delete cannot be rolled back"
        )


def topic_encrypted(props: Any) -> Iterable[str]:
    key = get(props, "kmsMasterKeyId")
    if present(key) is False:
        yield "not encrypted at rest (no kmsMasterKeyId)"
    elif isinstance(key, str) and key.endswith(AWS_MANAGED_SNS_KEY):
        yield (
            f"encrypted with the AWS-managed {AWS_MANAGED_SNS_KEY}, whose key policy does not "
            "let CloudWatch (or other AWS services) publish: alarm notifications would be "
            "dropped; use a customer-managed key that allows cloudwatch.amazonaws.com"
        )


# -- policy documents --------------------------------------------------------------------


def _document(policy: Any) -> Any:
    if policy is UNKNOWN:
        return UNKNOWN
    if isinstance(policy, str):
        try:
            return json.loads(policy)
        except json.JSONDecodeError:
            return {}
    return policy if isinstance(policy, Mapping) else {}


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# -- the pack ----------------------------------------------------------------------------

POLICIES: list[Policy] = [
    stack_policy(
        "s3-bucket-public-access-blocked",
        "Every S3 bucket blocks all public access (all four flags).",
        every(
            BUCKET,
            PUBLIC_ACCESS,
            BUCKET_OF,
            _blocks_public_access,
            f"public access is not fully blocked ({', '.join(PUBLIC_ACCESS_FLAGS)})",
        ),
    ),
    stack_policy(
        "s3-bucket-owner-enforced",
        "Every S3 bucket enforces bucket-owner ownership: ACLs are disabled.",
        every(
            BUCKET,
            OWNERSHIP,
            BUCKET_OF,
            _enforces_owner,
            "ownership is not BucketOwnerEnforced (ACLs still apply)",
        ),
    ),
    stack_policy(
        "s3-bucket-encrypted",
        "Every S3 bucket has default encryption at rest.",
        every(BUCKET, ENCRYPTION, BUCKET_OF, _encrypts, "no default encryption at rest"),
    ),
    stack_policy(
        "s3-bucket-tls-only",
        "Every S3 bucket denies requests not made over TLS, to it and its objects.",
        every(BUCKET, BUCKET_POLICY, BUCKET_OF, _denies_plain_http_to, NOT_TLS_ONLY),
    ),
    resource_policy(
        "iam-no-wildcard-grants",
        "No IAM Allow statement (role policies, managed policies, a role's inline policies) "
        "grants an action with a wildcard, NotAction, NotResource, or every resource of a "
        "kind ('*', arn:...:*, table/*) to an action that takes resource ARNs.",
        (ROLE_POLICY, MANAGED_POLICY, ROLE),
        no_wildcard_grants,
    ),
    resource_policy(
        "iam-no-broad-managed-policies",
        "No role is given an AWS-managed *FullAccess or AdministratorAccess policy.",
        (ROLE, POLICY_ATTACHMENT),
        no_broad_managed_policies,
    ),
    stack_policy(
        "lambda-logs-retained",
        "Every Lambda function logs to a log group of the stack that has retention.",
        logs_retained,
    ),
    stack_policy(
        "lambda-failures-kept",
        "Every Lambda function has an on-failure destination for async events.",
        every(
            FUNCTION,
            INVOKE_CONFIG,
            FUNCTION_OF,
            _has_failure_destination,
            "no on-failure destination (failed events would be dropped)",
        ),
    ),
    stack_policy(
        "lambda-failure-queue-alarmed",
        "Every failure-destination queue has a depth alarm with an action.",
        failure_queue_alarmed,
    ),
    stack_policy(
        "lambda-recursion-terminated",
        "Every Lambda function has recursive loop detection set to Terminate.",
        every(
            FUNCTION,
            RECURSION,
            FUNCTION_OF,
            _terminates_loops,
            "recursive loop detection is not set to Terminate",
        ),
    ),
    stack_policy(
        "lambda-alarmed",
        "Every Lambda function has alarms with actions on Errors, Throttles and Duration.",
        function_alarmed,
    ),
    resource_policy(
        "dynamodb-point-in-time-recovery",
        "Every DynamoDB table has point-in-time recovery enabled.",
        (TABLE,),
        point_in_time_recovery,
    ),
    resource_policy(
        "sns-topic-encrypted",
        "Every SNS topic is encrypted at rest with a customer-managed KMS key "
        "(kmsMasterKeyId; not alias/aws/sns, which CloudWatch alarms cannot publish with).",
        (TOPIC,),
        topic_encrypted,
    ),
]
