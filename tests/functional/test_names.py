"""pipeline.program.names: every physical name within its service's limit, for every stack name.

The component test at the end runs the real program under the mocks with the longest
names Pulumi accepts and measures what each registered resource would be called in AWS.
"""

from __future__ import annotations

import re

import pytest

from pipeline.program.component import TYPE_TOKEN
from pipeline.program.names import (
    AUTONAME_SUFFIX_LENGTH,
    NAME_PREFIX_SUFFIX_LENGTH,
    NAME_RULES,
    ResourceNames,
    StackNameError,
    longest_prefix,
    resource_names,
)
from pipeline.program.stack import StackSettings
from tests.support.pulumi_program import (
    PipelineMocks,
    image_pipeline,
    run_program,
)

pytestmark = pytest.mark.usefixtures("fake_layer")  # no pip build under the mocks

BUCKET_NAME = re.compile(r"^(?!xn--|sthree-)[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$")
# Pulumi's own limit on project and stack names.
LONGEST_PULUMI_NAME = 100
# Types the component creates that have no physical name of their own.
UNNAMED_TYPES = {
    TYPE_TOKEN,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketNotification:BucketNotification",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
    "aws:lambda/functionRecursionConfig:FunctionRecursionConfig",
    "aws:sns/topicSubscription:TopicSubscription",
    "aws:kms/key:Key",  # a key is known by its id; its description has no practical limit
}


def test_short_clean_names_are_kept_as_they_are() -> None:
    # Existing stacks must keep their names: a rename would replace every resource.
    assert resource_names("imgpipe", "dev") == ResourceNames(
        input_bucket="imgpipe-dev-input",
        output_bucket="imgpipe-dev-output",
        metadata_table="imgpipe-dev-metadata",
        function="imgpipe-dev-processor",
        dead_letter_queue="imgpipe-dev-dlq",
        event_queue="imgpipe-dev-events",
    )


def test_the_tightest_limit_is_the_role_not_s3() -> None:
    # <prefix>-processor-role + Pulumi's suffix within IAM's 64: the failing case.
    assert longest_prefix() == 64 - AUTONAME_SUFFIX_LENGTH - len("-processor-role")
    stack = "x" * (longest_prefix() - len("imgpipe-") + 1)  # one too many to keep as is
    names = resource_names("imgpipe", stack)
    assert len(names.role) + AUTONAME_SUFFIX_LENGTH <= 64
    assert names.function.startswith("imgpipe-xxxx") and names != resource_names("imgpipe", "x")


def test_the_longest_name_that_is_kept_fits_exactly() -> None:
    stack = "s" * (longest_prefix() - len("imgpipe-"))
    names = resource_names("imgpipe", stack)
    assert names.function == f"imgpipe-{stack}-processor"
    assert len(names.role) + AUTONAME_SUFFIX_LENGTH == 64
    assert names.too_long() == []


@pytest.mark.parametrize(
    "stack",
    [
        "x" * LONGEST_PULUMI_NAME,
        "Prod_EU.2026",
        "a",
        "-dev-",
        "__",
        "de--v",
        "9" * LONGEST_PULUMI_NAME,
        "A.b_C-d" * 14,
    ],
)
def test_every_stack_name_pulumi_accepts_makes_valid_names(stack: str) -> None:
    for project in ("imgpipe", "P" * LONGEST_PULUMI_NAME):
        names = resource_names(project, stack)
        assert names.too_long() == []
        for typ, name in names.planned():
            rule = NAME_RULES[typ]
            assert rule.physical_length(name) <= rule.limit, (typ, name)
        for bucket in (names.input_bucket, names.output_bucket):
            assert BUCKET_NAME.match(bucket), bucket
            assert BUCKET_NAME.match(f"{bucket}-a1b2c3d"), bucket


def test_shortened_names_stay_distinct_and_stable() -> None:
    # Folding and cutting must not map two stacks onto one set of names.
    stacks = ["Dev", "dev_", "dev.", "DEV", "x" * 99 + "a", "x" * 99 + "b", "my_stack", "my.stack"]
    prefixes = [resource_names("imgpipe", s).function for s in stacks]
    assert len(set(prefixes)) == len(stacks), prefixes
    assert prefixes == [resource_names("imgpipe", s).function for s in stacks]


@pytest.mark.parametrize("stack", ["", "x" * (LONGEST_PULUMI_NAME + 1), "dev/eu", "dév"])
def test_names_pulumi_itself_refuses_are_refused(stack: str) -> None:
    with pytest.raises(StackNameError, match="Pulumi allows 1-100 letters"):
        resource_names("imgpipe", stack)


@pytest.mark.parametrize(
    ("project", "stack"), [("sthree", "dev"), ("amzn", "s3-demo"), ("amzn-s3", "demo")]
)
def test_names_s3_reserves_are_refused_with_what_to_do(project: str, stack: str) -> None:
    with pytest.raises(StackNameError, match=r"S3 reserves names starting with .*; rename"):
        resource_names(project, stack)


def test_a_log_group_prefix_is_measured_with_the_providers_unique_suffix() -> None:
    rule = NAME_RULES["aws:cloudwatch/logGroup:LogGroup"]
    assert rule.physical_length("/aws/lambda/x-") == 14 + NAME_PREFIX_SUFFIX_LENGTH


# -- the real program ---------------------------------------------------------------------


def physical_name(mocks: PipelineMocks, typ: str, name: str) -> str:
    """What AWS would call the resource: its explicit name, prefix + id, or autoname."""
    resource = next(r for r in mocks.of_type(typ) if r.name == name)
    rule = NAME_RULES[typ]
    explicit = resource.inputs.get(rule.prop)
    if explicit:
        return explicit
    if rule.how == "prefix":
        return resource.inputs["namePrefix"] + "0" * NAME_PREFIX_SUFFIX_LENGTH
    return name + "-" + "a" * (AUTONAME_SUFFIX_LENGTH - 1)


@pytest.mark.parametrize(
    "settings",
    [
        StackSettings(),
        StackSettings(alarm_email="ops@example.com", versioning=True, output_expiration_days=9),
    ],
    ids=["defaults", "everything-on"],
)
def test_every_registered_name_fits_for_the_longest_stack_name(settings: StackSettings) -> None:
    names = resource_names("P" * LONGEST_PULUMI_NAME, "S" * LONGEST_PULUMI_NAME)
    config = StackSettings().pipeline_config()
    mocks = run_program(lambda: image_pipeline(config, settings, names))
    planned = set(names.planned())
    seen = set()
    for resource in mocks.resources.values():
        if resource.typ in UNNAMED_TYPES:
            continue
        # A named type without a rule would escape the limits: add it to NAME_RULES.
        assert resource.typ in NAME_RULES, f"{resource.typ} has no name rule"
        rule = NAME_RULES[resource.typ]
        physical = physical_name(mocks, resource.typ, resource.name)
        assert len(physical) <= rule.limit, (resource.typ, physical, rule.limit)
        key = (resource.typ, resource.name)
        if rule.how == "prefix":
            key = (resource.typ, resource.inputs["namePrefix"])
        elif rule.how == "literal":
            key = (resource.typ, resource.inputs[rule.prop])
        seen.add(key)
    # The plan the limits are computed from is exactly what the program registers.
    assert seen == planned
