"""Production policy over a registered stack: what every imgpipe deployment must satisfy.

Runs on plain values (type, URN, inputs, outputs of every resource), which the tests get
from Pulumi's mocks; no pulumi import, so the rules are plain functions. Every violation
names the resource's URN and what is wrong with it.

The rules:
- every bucket blocks public access, enforces bucket-owner ownership (no ACLs), is
  encrypted at rest and denies requests not made over TLS, on the bucket and its objects;
- no Allow statement in an IAM policy uses `*` (or `service:*`) as an action, or `*` as a
  resource for an action that has resource ARNs; no AWS-managed *FullAccess/Administrator
  policy is attached;
- every function has a log group with retention, an on-failure destination, recursion
  set to Terminate, and alarms on errors, throttles and duration; every failure
  destination queue has a depth alarm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class DeployedResource:
    typ: str
    urn: str
    id: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)


class PolicyViolationError(AssertionError):
    """The stack breaks the production policy; one line per violation."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        super().__init__("production policy violated:\n- " + "\n- ".join(violations))


def enforce(resources: Iterable[DeployedResource]) -> None:
    violations = check(resources)
    if violations:
        raise PolicyViolationError(violations)


def check(resources: Iterable[DeployedResource]) -> list[str]:
    """Every violation of the policy, each naming the resource's URN."""
    stack = _Stack(list(resources))
    return [*stack.buckets(), *stack.iam(), *stack.functions()]


class _Stack:
    def __init__(self, resources: list[DeployedResource]) -> None:
        self.resources = resources

    def of(self, typ: str) -> list[DeployedResource]:
        return [r for r in self.resources if r.typ == typ]

    def attached(self, typ: str, bucket: DeployedResource) -> list[DeployedResource]:
        return [r for r in self.of(typ) if r.inputs.get("bucket") == bucket.id]

    # -- buckets ---------------------------------------------------------------------------

    def buckets(self) -> Iterable[str]:
        for bucket in self.of(BUCKET):
            blocks = self.attached(PUBLIC_ACCESS, bucket)
            if not any(all(b.inputs.get(f) is True for f in PUBLIC_ACCESS_FLAGS) for b in blocks):
                flags = ", ".join(PUBLIC_ACCESS_FLAGS)
                yield f"{bucket.urn}: public access is not fully blocked ({flags})"
            owners = self.attached(OWNERSHIP, bucket)
            if not any(
                (o.inputs.get("rule") or {}).get("objectOwnership") == "BucketOwnerEnforced"
                for o in owners
            ):
                yield f"{bucket.urn}: ownership is not BucketOwnerEnforced (ACLs still apply)"
            if not any(_encrypted(e.inputs) for e in self.attached(ENCRYPTION, bucket)):
                yield f"{bucket.urn}: no default encryption at rest"
            arn = bucket.outputs.get("arn", "")
            if not any(_tls_only(p.inputs, arn) for p in self.attached(BUCKET_POLICY, bucket)):
                yield (
                    f"{bucket.urn}: not TLS-only (no bucket policy denying "
                    "aws:SecureTransport=false on the bucket and its objects)"
                )

    # -- IAM -------------------------------------------------------------------------------

    def iam(self) -> Iterable[str]:
        for resource in [*self.of(ROLE_POLICY), *self.of(MANAGED_POLICY)]:
            document = _document(resource.inputs.get("policy"))
            for statement in _statements(document):
                yield from _statement_violations(resource.urn, statement)
        for role in self.of(ROLE):
            for arn in role.inputs.get("managedPolicyArns") or []:
                if _broad_managed(arn):
                    yield f"{role.urn}: attaches the broad managed policy {arn}"
        for attachment in self.of(POLICY_ATTACHMENT):
            arn = attachment.inputs.get("policyArn", "")
            if _broad_managed(arn):
                yield f"{attachment.urn}: attaches the broad managed policy {arn}"

    # -- functions -------------------------------------------------------------------------

    def functions(self) -> Iterable[str]:
        for function in self.of(FUNCTION):
            name = function.outputs.get("name")
            yield from self._logs(function)
            configs = [c for c in self.of(INVOKE_CONFIG) if c.inputs.get("functionName") == name]
            destinations = [
                ((c.inputs.get("destinationConfig") or {}).get("onFailure") or {}).get(
                    "destination"
                )
                for c in configs
            ]
            if not any(destinations):
                yield f"{function.urn}: no on-failure destination (failed events would be dropped)"
            for destination in filter(None, destinations):
                yield from self._queue_alarm(function, destination)
            if not any(
                r.inputs.get("functionName") == name
                and r.inputs.get("recursiveLoop") == "Terminate"
                for r in self.of(RECURSION)
            ):
                yield f"{function.urn}: recursive loop detection is not set to Terminate"
            alarmed = {
                a.inputs.get("metricName")
                for a in self.of(ALARM)
                if (a.inputs.get("dimensions") or {}).get("FunctionName") == name
                and a.inputs.get("alarmActions")
            }
            missing = [m for m in FUNCTION_ALARM_METRICS if m not in alarmed]
            if missing:
                yield f"{function.urn}: no alarm (with an action) on {', '.join(missing)}"

    def _logs(self, function: DeployedResource) -> Iterable[str]:
        group_name = (function.inputs.get("loggingConfig") or {}).get("logGroup")
        groups = [g for g in self.of(LOG_GROUP) if g.outputs.get("name") == group_name]
        if not group_name or not groups:
            yield f"{function.urn}: logs go to no log group of this stack (no retention set)"
        elif not all(g.inputs.get("retentionInDays") for g in groups):
            yield f"{groups[0].urn}: log group of {function.urn} keeps logs forever (no retention)"

    def _queue_alarm(self, function: DeployedResource, destination: str) -> Iterable[str]:
        queues = [q for q in self.of(QUEUE) if q.outputs.get("arn") == destination]
        if not queues:
            return  # a destination outside the stack (another function, a bus): not ours to alarm
        queue = queues[0].outputs.get("name")
        if not any(
            a.inputs.get("metricName") == DLQ_METRIC
            and (a.inputs.get("dimensions") or {}).get("QueueName") == queue
            and a.inputs.get("alarmActions")
            for a in self.of(ALARM)
        ):
            yield f"{queues[0].urn}: failure queue of {function.urn} has no depth alarm"


def _encrypted(inputs: Mapping[str, Any]) -> bool:
    for rule in inputs.get("rules") or []:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") in ENCRYPTION_ALGORITHMS:
            return True
    return False


def _tls_only(inputs: Mapping[str, Any], bucket_arn: str) -> bool:
    for statement in _statements(_document(inputs.get("policy"))):
        condition = (statement.get("Condition") or {}).get("Bool") or {}
        resources = _as_list(statement.get("Resource"))
        if (
            statement.get("Effect") == "Deny"
            and str(condition.get("aws:SecureTransport")).lower() == "false"
            and bucket_arn in resources
            and f"{bucket_arn}/*" in resources
        ):
            return True
    return False


def _statement_violations(urn: str, statement: Mapping[str, Any]) -> Iterable[str]:
    if statement.get("Effect") != "Allow":
        return  # a Deny with wildcards only takes rights away
    sid = statement.get("Sid", "?")
    actions = _as_list(statement.get("Action"))
    if "NotAction" in statement:
        yield f"{urn}: statement {sid} allows NotAction (everything but a list)"
    for action in actions:
        if action == "*" or action.endswith(":*"):
            yield f"{urn}: statement {sid} allows the wildcard action {action!r}"
    if "*" in _as_list(statement.get("Resource")):
        with_arns = [a for a in actions if a not in ACTIONS_WITHOUT_RESOURCES]
        if with_arns:
            yield (
                f"{urn}: statement {sid} allows {', '.join(with_arns)} on resource '*' "
                "(these actions take resource ARNs)"
            )


def _broad_managed(arn: str) -> bool:
    name = arn.rsplit("/", 1)[-1]
    return ":aws:policy/" in arn and (name.endswith("FullAccess") or name == "AdministratorAccess")


def _document(policy: Any) -> Mapping[str, Any]:
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
