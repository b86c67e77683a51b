"""Resource names: one prefix per stack, and every name within its service's limit.

Pulumi autonames most resources (`<logical name>-<7 hex>`) and pulumi-aws refuses a name
that would pass the service's limit; S3's 63 characters are not the tightest (IAM roles
and Lambda functions allow 64 with a longer suffix of our own). Every name the component
gives a resource is listed here with its type, so one check covers them all for every
stack name Pulumi accepts: a prefix that would not fit is shortened, with a hash of the
full name so two stacks never share one. A plain module (no pulumi import): the local
stack uses the same names literally.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Pulumi's autonaming appends "-" and 7 random characters to the logical name.
AUTONAME_SUFFIX_LENGTH = 8
# A `name_prefix` is completed by the provider with a 26-digit unique id (timestamp+counter).
NAME_PREFIX_SUFFIX_LENGTH = 26
# Pulumi's own rule for project and stack names.
PULUMI_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# The part of the prefix kept when it must be shortened, then "-" and this many hex digits.
HASH_LENGTH = 6
# S3 refuses bucket names with these beginnings (reserved for its own naming schemes).
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")

BUCKET = "aws:s3/bucket:Bucket"
TABLE = "aws:dynamodb/table:Table"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LAYER = "aws:lambda/layerVersion:LayerVersion"
QUEUE = "aws:sqs/queue:Queue"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
TOPIC = "aws:sns/topic:Topic"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
EVENT_BUS = "aws:cloudwatch/eventBus:EventBus"
EDGE_FUNCTION = "aws:cloudfront/function:Function"
ORIGIN_ACCESS = "aws:cloudfront/originAccessControl:OriginAccessControl"
CACHE_POLICY = "aws:cloudfront/cachePolicy:CachePolicy"
HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"


@dataclass(frozen=True)
class NameRule:
    """Where a resource type's physical name lives and how long AWS lets it be."""

    prop: str  # the Pulumi property holding the physical name
    limit: int
    how: str = "autonamed"  # "autonamed" (+8), "prefix" (+26) or "literal"

    def physical_length(self, name: str) -> int:
        extra = {"autonamed": AUTONAME_SUFFIX_LENGTH, "prefix": NAME_PREFIX_SUFFIX_LENGTH}
        return len(name) + extra.get(self.how, 0)


# Every named resource type the component creates, with the service's documented limit.
NAME_RULES: dict[str, NameRule] = {
    BUCKET: NameRule("bucket", 63),
    TABLE: NameRule("name", 255),
    LOG_GROUP: NameRule("name", 512, "prefix"),
    LAYER: NameRule("layerName", 140, "literal"),
    QUEUE: NameRule("name", 80),
    ROLE: NameRule("name", 64),
    ROLE_POLICY: NameRule("name", 128),
    FUNCTION: NameRule("name", 64),
    PERMISSION: NameRule("statementId", 100),
    TOPIC: NameRule("name", 256),
    ALARM: NameRule("name", 255),
    EVENT_BUS: NameRule("name", 256),
    EDGE_FUNCTION: NameRule("name", 64),
    ORIGIN_ACCESS: NameRule("name", 64),
    CACHE_POLICY: NameRule("name", 128),
    HEADERS_POLICY: NameRule("name", 128),
}

# The component's alarms, by the suffix of their names.
ALARM_SUFFIXES = ("errors", "throttles", "duration", "dlq-depth")


class StackNameError(ValueError):
    """The project or stack name cannot make valid resource names."""


@dataclass(frozen=True)
class ResourceNames:
    """Logical names in Pulumi (autonamed with a suffix) and literal names in the local stack.

    The fields are what the local stack creates and what its state file records; the
    properties are the Pulumi program's other names, derived from them.
    """

    input_bucket: str
    output_bucket: str
    metadata_table: str
    function: str
    dead_letter_queue: str
    event_queue: str

    @property
    def role(self) -> str:
        return f"{self.function}-role"

    @property
    def role_policy(self) -> str:
        return f"{self.function}-policy"

    @property
    def layer(self) -> str:
        return f"{self.function}-pillow"

    @property
    def log_group_prefix(self) -> str:
        return f"/aws/lambda/{self.function}-"

    @property
    def alarm_topic(self) -> str:
        return f"{self.function}-alarms"

    @property
    def permission(self) -> str:
        return f"{self.function}-s3-invoke"

    @property
    def event_bus(self) -> str:
        """The stack's own bus for outcomes (imgpipe:eventBus own; the local stack's bus)."""
        return f"{self.function}-outcomes"

    @property
    def event_tail_queue(self) -> str:
        """Local stack only: the queue a rule on the bus copies outcomes to, which
        `imgpipe events` reads (EventBridge has no API to read a bus)."""
        return f"{self.event_bus}-tail"

    # With imgpipe:cdn. The distribution has no name of its own (AWS gives it an id).
    @property
    def cdn(self) -> str:
        return f"{self.function}-cdn"

    @property
    def cdn_function(self) -> str:
        return f"{self.function}-edge"

    @property
    def cdn_access(self) -> str:
        return f"{self.function}-oac"

    @property
    def cdn_cache_policy(self) -> str:
        return f"{self.function}-cache"

    @property
    def cdn_headers_policy(self) -> str:
        return f"{self.function}-headers"

    def alarm(self, suffix: str) -> str:
        if suffix not in ALARM_SUFFIXES:
            raise ValueError(f"unknown alarm {suffix!r}; add it to ALARM_SUFFIXES")
        return f"{self.function}-{suffix}"

    def planned(self, cdn: bool = False) -> list[tuple[str, str]]:
        """(type, name) of every named resource the Pulumi program creates (with `cdn`,
        a stack with imgpipe:cdn)."""
        served = [
            (EDGE_FUNCTION, self.cdn_function),
            (ORIGIN_ACCESS, self.cdn_access),
            (CACHE_POLICY, self.cdn_cache_policy),
            (HEADERS_POLICY, self.cdn_headers_policy),
        ]
        return [
            (BUCKET, self.input_bucket),
            (BUCKET, self.output_bucket),
            (TABLE, self.metadata_table),
            (LOG_GROUP, self.log_group_prefix),
            (LAYER, self.layer),
            (QUEUE, self.dead_letter_queue),
            (ROLE, self.role),
            (ROLE_POLICY, self.role_policy),
            (FUNCTION, self.function),
            (PERMISSION, self.permission),
            (TOPIC, self.alarm_topic),
            (EVENT_BUS, self.event_bus),
            *((ALARM, self.alarm(suffix)) for suffix in ALARM_SUFFIXES),
            *(served if cdn else ()),
        ]

    def too_long(self) -> list[str]:
        """Each planned name whose physical name would pass its type's limit, explained."""
        problems = []
        for typ, name in self.planned(cdn=True):
            rule = NAME_RULES[typ]
            length = rule.physical_length(name)
            if length > rule.limit:
                problems.append(
                    f"{typ.rsplit(':', 1)[-1]} {name!r} becomes {length} characters "
                    f"({rule.how}), over the limit of {rule.limit}"
                )
        return problems


def autonamed(logical_name: str) -> str:
    """A stand-in with the exact length of the physical name Pulumi will generate."""
    return logical_name + "-" + "x" * (AUTONAME_SUFFIX_LENGTH - 1)


def names_for_prefix(prefix: str) -> ResourceNames:
    return ResourceNames(
        input_bucket=f"{prefix}-input",
        output_bucket=f"{prefix}-output",
        metadata_table=f"{prefix}-metadata",
        function=f"{prefix}-processor",
        dead_letter_queue=f"{prefix}-dlq",
        event_queue=f"{prefix}-events",
    )


def longest_prefix() -> int:
    """The longest prefix with which every planned name fits its limit."""
    probe = names_for_prefix("")
    return min(
        NAME_RULES[typ].limit - NAME_RULES[typ].physical_length(name)
        for typ, name in probe.planned(cdn=True)
    )


def resource_names(project: str, stack: str) -> ResourceNames:
    """`<project>-<stack>-<role>`, valid for S3 and within every limit.

    A project+stack that is already lower-case letters, digits and single hyphens, and
    short enough, is used as it is (existing stacks keep their names). Anything else
    Pulumi accepts (capitals, `_`, `.`, up to 100 characters) is folded to that alphabet
    and, if it changed or is too long, cut and suffixed with a hash of the original.
    """
    for what, part in (("project", project), ("stack", stack)):
        if not PULUMI_NAME.match(part):
            raise StackNameError(
                f"{what} name {part!r}: Pulumi allows 1-100 letters, digits, '-', '_' and '.'"
            )
    original = f"{project}-{stack}"
    folded = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", original.lower())).strip("-")
    limit = longest_prefix()
    if folded == original and len(folded) <= limit:
        prefix = folded
    else:
        digest = hashlib.sha256(original.encode()).hexdigest()[:HASH_LENGTH]
        kept = folded[: limit - HASH_LENGTH - 1].strip("-")
        prefix = f"{kept}-{digest}" if kept else digest
    names = names_for_prefix(prefix)
    for bucket in (names.input_bucket, names.output_bucket):
        reserved = [p for p in RESERVED_BUCKET_PREFIXES if bucket.startswith(p)]
        if reserved:
            raise StackNameError(
                f"project+stack {original!r} makes the bucket name {bucket!r}, and S3 "
                f"reserves names starting with {reserved[0]!r}; rename the project or the stack"
            )
    problems = names.too_long()
    if problems:  # unreachable by construction; kept so a new name cannot slip past
        raise StackNameError("; ".join(problems))
    return names
