"""What the program passes pulumi-aws, checked against the installed pulumi-aws itself.

A renamed top-level argument already fails under the mocks (TypeError); what slips through
to deploy time are nested dict keys (`rule={"object_ownership": ...}`) and string values
(`recursive_loop="Terminate"`): the mocks accept anything there. So the real component runs
under the mocks of tests/support/pulumi_program.py while every pulumi_aws resource's
arguments are recorded as the program passed them, and each one is checked, recursively, against:
- the type hints of the resource's keyword `__init__` and of the `*ArgsDict` / `*Args` types
  they name: every dict key must be a key of the TypedDict, every value of an admitted type;
- a pulumi_aws enum the hint admits (`Union[str, Runtime]`): the string must be a member;
- otherwise the values the provider's docstring lists for that field ("Valid values are
  `Allow` or `Terminate`"), where it lists them.
Nothing here names a resource, an argument or a value of the component: new resources and
arguments are covered as they are added, and an upgrade that renames one fails here.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any, Union

import pulumi
import pulumi_aws as aws
import pytest

from lambda_pkg.profiles import Route
from pipeline.program.stack import StackSettings
from tests.support.aws import KMS_KEY_ARN
from tests.support.pulumi_program import (
    deploy,
    run_program,
)

pytestmark = pytest.mark.usefixtures("fake_layer")  # no pip build under the mocks

# pulumi.Input is Union[T, Awaitable[T], "Output[T]"]: its forward reference needs these.
_HINT_NAMES = {"Output": pulumi.Output, "T": Any}
# Sentences of a pulumi-aws docstring that list a field's allowed values in backticks.
_ALLOWED_SENTENCE = re.compile(
    r"valid (?:values|options)|are also valid|\bone of\b|possible values"
    r"|following (?:values )?(?:is|are) supported|can be specified",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Call:
    """One pulumi_aws resource as the program constructed it (snake_case keyword arguments)."""

    resource: type
    name: str
    kwargs: dict[str, Any]

    def where(self) -> str:
        return f"aws.{self.resource.__module__.split('.')[1]}.{self.resource.__name__}({self.name})"


@dataclass(frozen=True)
class Field:
    """Where a value's docstring lives: a property of a pulumi_aws `*Args` class."""

    owner: type
    key: str

    def allowed_values(self) -> set[str]:
        prop = inspect.getattr_static(self.owner, self.key, None)
        assert isinstance(prop, property), f"{self.owner.__name__} has no property {self.key}"
        sentences = re.split(r"(?<=\.)\s+", inspect.getdoc(prop) or "")
        return {
            token.strip("[]\"' ")
            for sentence in sentences
            if _ALLOWED_SENTENCE.search(sentence)
            for token in re.findall(r"`([^`]+)`", sentence)
        }

    def describe(self) -> str:
        return f"the docstring of {self.owner.__name__}.{self.key}"


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """From now on, every pulumi_aws resource constructed is appended to the returned list.

    Each resource hands its `*Args` object to CustomResource.__init__; its attributes are
    the keyword arguments as given (None for those not given, and for outputs).
    """
    calls: list[Call] = []
    original = pulumi.CustomResource.__init__

    def recording(self: Any, t: str, name: str, props: Any = None, *args: Any, **kwargs: Any):
        if type(self).__module__.startswith("pulumi_aws.") and props is not None:
            given = {key: value for key, value in vars(props).items() if value is not None}
            calls.append(Call(type(self), name, given))
        original(self, t, name, props, *args, **kwargs)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", recording)
    return calls


# -- the checker ------------------------------------------------------------------------


def check_call(call: Call) -> list[str]:
    """Every way `call` departs from pulumi-aws's declared contract, one message each."""
    problems: list[str] = []
    hints = keyword_hints(call.resource)
    args_class = args_class_of(call.resource)
    for key, value in call.kwargs.items():
        where = f"{call.where()}.{key}"
        if key not in hints:
            problems.append(f"{where}: not an argument; allowed: {sorted(hints)}")
            continue
        check(value, alternatives(hints[key]), Field(args_class, key), where, problems)
    return problems


def check(value: Any, kinds: list[Any], field: Field, where: str, problems: list[str]) -> None:
    """Check one value against the types its hint admits (`alternatives`)."""
    if isinstance(value, (pulumi.Output, collections.abc.Awaitable)):
        return  # known at deploy time only
    if Any in kinds:
        return
    if isinstance(value, str):
        check_string(value, kinds, field, where, problems)
    elif isinstance(value, Mapping):
        check_mapping(value, kinds, field, where, problems)
    elif isinstance(value, (list, tuple)):
        sequences = [k for k in kinds if origin(k) is collections.abc.Sequence]
        if not sequences:
            problems.append(f"{where}: a list where pulumi-aws takes {names(kinds)}")
            return
        items = [kind for k in sequences for kind in alternatives(typing.get_args(k)[0])]
        for index, item in enumerate(value):
            check(item, items, field, f"{where}[{index}]", problems)
    else:
        check_object(value, kinds, where, problems)


def check_string(
    value: str, kinds: list[Any], field: Field, where: str, problems: list[str]
) -> None:
    enums = [k for k in kinds if inspect.isclass(k) and issubclass(k, Enum)]
    if enums:
        allowed = {member.value for enum in enums for member in enum}
        source = f"enum {', '.join(f'{e.__module__}.{e.__name__}' for e in enums)}"
    elif str in kinds:
        allowed, source = field.allowed_values(), field.describe()
    else:
        problems.append(f"{where}: a string where pulumi-aws takes {names(kinds)}")
        return
    if allowed and value not in allowed:
        problems.append(f"{where}: {value!r} is not one of {sorted(allowed)} ({source})")


def check_mapping(
    value: Mapping, kinds: list[Any], field: Field, where: str, problems: list[str]
) -> None:
    typed = [k for k in kinds if typing.is_typeddict(k)]
    if typed:
        keys = {key: hint for td in reversed(typed) for key, hint in hints_of(td).items()}
        for key, item in value.items():
            if key not in keys:
                allowed = f"{' | '.join(td.__name__ for td in typed)}: {sorted(keys)}"
                problems.append(f"{where}.{key}: not a key of {allowed}")
                continue
            owner = next(args_of(td) for td in typed if key in hints_of(td))
            check(item, alternatives(keys[key]), Field(owner, key), f"{where}.{key}", problems)
        return
    maps = [k for k in kinds if origin(k) is collections.abc.Mapping]
    if not maps:
        problems.append(f"{where}: a dict where pulumi-aws takes {names(kinds)}")
        return
    values = [kind for k in maps for kind in alternatives(typing.get_args(k)[1])]
    for key, item in value.items():
        check(item, values, field, f"{where}[{key!r}]", problems)


def check_object(value: Any, kinds: list[Any], where: str, problems: list[str]) -> None:
    classes = [k for k in kinds if inspect.isclass(k) and not typing.is_typeddict(k)]
    if not any(admits(cls, value) for cls in classes):
        what = f"{type(value).__name__} {value!r}"
        problems.append(f"{where}: {what} where pulumi-aws takes {names(kinds)}")
        return
    cls = type(value)
    if cls.__module__.startswith("pulumi_aws."):
        # An *Args object: Python checked its keywords; its values are checked here.
        hints = hints_of(cls.__init__)
        for key, item in vars(value).items():
            if item is not None:
                check(item, alternatives(hints[key]), Field(cls, key), f"{where}.{key}", problems)


# -- reading pulumi-aws's annotations ---------------------------------------------------


@cache
def hints_of(annotated: Any) -> dict[str, Any]:
    return typing.get_type_hints(annotated, localns=_HINT_NAMES)


@cache
def keyword_hints(resource: type) -> dict[str, Any]:
    """The hints of `Resource(resource_name, opts=None, **arguments)`, the keyword overload."""
    for overload in typing.get_overloads(resource.__init__):
        if list(inspect.signature(overload).parameters)[2:3] == ["opts"]:
            hints = hints_of(overload)
            return {k: v for k, v in hints.items() if k not in ("resource_name", "opts", "return")}
    raise AssertionError(f"{resource.__name__}.__init__ has no keyword-argument overload")


@cache
def args_class_of(resource: type) -> type:
    """The `*Args` class of `Resource(resource_name, args, opts=None)`: its docstrings."""
    for overload in typing.get_overloads(resource.__init__):
        if list(inspect.signature(overload).parameters)[2:3] == ["args"]:
            (args_class,) = alternatives(hints_of(overload)["args"])  # Optional when none required
            return args_class
    raise AssertionError(f"{resource.__name__}.__init__ has no args-class overload")


def args_of(typed_dict: type) -> type:
    """The `XArgs` class beside `XArgsDict` (pulumi codegen): TypedDicts keep no docstrings."""
    name = typed_dict.__name__.removesuffix("Dict")
    args = getattr(sys.modules[typed_dict.__module__], name, None)
    assert inspect.isclass(args), f"no {name} beside {typed_dict.__name__} for its docstrings"
    return args


def alternatives(hint: Any) -> list[Any]:
    """The types a hint admits for a plain value: Union flattened; None, Awaitable, Output out."""
    if origin(hint) is Union:
        return [kind for arg in typing.get_args(hint) for kind in alternatives(arg)]
    if hint is type(None) or origin(hint) in (collections.abc.Awaitable, pulumi.Output):
        return []
    return [hint]


def admits(cls: type, value: Any) -> bool:
    if type(value) is bool:
        return cls is bool  # not where an int is taken, though Python says True is an int
    # PEP 484's numeric tower: an int is fine where a float is taken.
    return isinstance(value, cls) or (cls is float and type(value) is int)


def origin(hint: Any) -> Any:
    return typing.get_origin(hint)


def names(kinds: list[Any]) -> str:
    return " | ".join(sorted({getattr(k, "__name__", None) or str(k) for k in kinds}))


# -- the program's calls ----------------------------------------------------------------

# Every setting that changes which resources exist or which arguments they get.
SETTINGS = {
    "defaults": StackSettings(),
    "everything-on": StackSettings(
        kms_key_arn=KMS_KEY_ARN,
        versioning=True,
        output_expiration_days=30,
        alarm_email="ops@example.com",
        reserved_concurrency=10,
    ),
    "single-bucket-routed": StackSettings(
        single_bucket=True, routes=(Route("thumbnail", prefix="uploads/"),)
    ),
    # the distribution and its parts, on a custom domain
    "cdn": StackSettings(
        cdn=True,
        cdn_aliases=("img.example.com",),
        cdn_certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c",
    ),
}


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS)
def test_every_argument_the_component_passes_is_in_pulumi_aws_contract(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = record_calls(monkeypatch)
    mocks = deploy(settings=settings, config=settings.pipeline_config()).mocks
    # The recorder saw every AWS resource the mocks registered, so every one is checked.
    registered = [r.name for r in mocks.resources.values() if r.typ.startswith("aws:")]
    assert sorted(call.name for call in calls) == sorted(registered)
    problems = [problem for call in calls for problem in check_call(call)]
    assert not problems, "\n".join(problems)


# -- the checker bites ------------------------------------------------------------------

# (resource, arguments as the component passes them, one mistake, what the message names)
MISTAKES = [
    (
        aws.s3.BucketOwnershipControls,
        {"bucket": "b", "rule": {"object_ownership": "BucketOwnerEnforced"}},
        {"bucket": "b", "rule": {"object_owner": "BucketOwnerEnforced"}},
        "rule.object_owner: not a key of BucketOwnershipControlsRuleArgsDict: ['object_ownership']",
    ),
    (
        aws.lambda_.FunctionEventInvokeConfig,
        {"function_name": "f", "destination_config": {"on_failure": {"destination": "arn"}}},
        {"function_name": "f", "destination_config": {"onFailure": {"destination": "arn"}}},
        "destination_config.onFailure: not a key of",
    ),
    (
        aws.s3.BucketServerSideEncryptionConfiguration,
        {
            "bucket": "b",
            "rules": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        },
        {
            "bucket": "b",
            "rules": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES-256"}}],
        },
        "rules[0].apply_server_side_encryption_by_default.sse_algorithm: 'AES-256' is not one of "
        "['AES256', 'aws:kms', 'aws:kms:dsse']",
    ),
    (
        aws.lambda_.Function,
        {"role": "r", "runtime": "python3.12"},
        {"role": "r", "runtime": "python3.99"},
        "runtime: 'python3.99' is not one of",
    ),
    (
        aws.lambda_.Function,
        {"role": "r", "architectures": ["arm64"]},
        {"role": "r", "architectures": ["aarch64"]},
        "architectures[0]: 'aarch64' is not one of ['arm64', 'x86_64']",
    ),
    (
        aws.lambda_.FunctionRecursionConfig,
        {"function_name": "f", "recursive_loop": "Terminate"},
        {"function_name": "f", "recursive_loop": "Terminated"},
        "recursive_loop: 'Terminated' is not one of ['Allow', 'Terminate'] "
        "(the docstring of FunctionRecursionConfigArgs.recursive_loop)",
    ),
    (
        aws.cloudwatch.MetricAlarm,
        {"comparison_operator": "GreaterThanThreshold", "statistic": "Sum"},
        {"comparison_operator": "GreaterThanThreshold", "statistic": "Total"},
        "statistic: 'Total' is not one of ['Average', 'Maximum', 'Minimum', 'SampleCount', 'Sum'] "
        "(the docstring of MetricAlarmArgs.statistic)",
    ),
    (
        aws.lambda_.Function,
        {"role": "r", "reserved_concurrent_executions": 10},
        {"role": "r", "reserved_concurrent_executions": True},
        "reserved_concurrent_executions: bool True where pulumi-aws takes int",
    ),
    (
        aws.cloudwatch.MetricAlarm,
        {"comparison_operator": "GreaterThanThreshold", "evaluation_periods": 1, "threshold": 0},
        {"comparison_operator": "GreaterThanThreshold", "evaluation_periods": "1", "threshold": 0},
        "evaluation_periods: a string where pulumi-aws takes int",
    ),
]


@pytest.mark.parametrize(
    ("resource", "right", "wrong", "message"),
    MISTAKES,
    ids=[message.partition(":")[0] for *_, message in MISTAKES],
)
def test_the_checker_fails_a_mistake_and_passes_its_fix(
    resource: type, right: dict[str, Any], wrong: dict[str, Any], message: str
) -> None:
    assert check_call(Call(resource, "fake", right)) == []
    problems = check_call(Call(resource, "fake", wrong))
    assert len(problems) == 1, problems
    assert message in problems[0], problems[0]


def test_a_nested_typo_the_mocks_accept_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = record_calls(monkeypatch)

    def program() -> None:
        aws.s3.BucketOwnershipControls("typo", bucket="b", rule={"object_owner": "x"})

    mocks = run_program(program)
    assert mocks.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").name == "typo"
    (call,) = calls
    (problem,) = check_call(call)
    assert problem.startswith("aws.s3.BucketOwnershipControls(typo).rule.object_owner: "), problem
