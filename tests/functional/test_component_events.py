"""The stack's events under Pulumi's mocks: the bus (its own, or the account's default), the
function's EVENT_BUS, a PutEvents grant on that bus alone, and the bus in the outputs."""

from __future__ import annotations

import json

import pytest

from lambda_pkg.profiles import PipelineConfig, load_named
from lambda_pkg.settings import ENV_EVENT_BUS
from pipeline.program.component import validate
from pipeline.program.guards import DeployGuardError, check_environment_size
from pipeline.program.names import resource_names
from pipeline.program.stack import (
    EVENT_BUS_DEFAULT,
    OUTPUT_EVENT_BUS,
    OUTPUT_EVENT_BUS_ARN,
    StackSettings,
    StackSettingsError,
)
from tests.support.pulumi_program import (
    ACCOUNT,
    EVENT_BUS,
    FUNCTION,
    REGION,
    ROLE_POLICY,
    SUFFIX,
    arn,
    deploy,
    run_main,
)

pytestmark = pytest.mark.usefixtures("fake_layer")  # no pip build under the mocks


def grants(mocks) -> dict[str, dict]:
    document = json.loads(mocks.one(ROLE_POLICY).inputs["policy"])
    return {statement["Sid"]: statement for statement in document["Statement"]}


def put_events_resources(mocks) -> list[object]:
    return [
        statement["Resource"]
        for statement in grants(mocks).values()
        if any(action.startswith("events:") for action in statement["Action"])
    ]


def test_by_default_the_stack_publishes_on_a_bus_of_its_own():
    deployment = deploy()
    mocks, names = deployment.mocks, deployment.names
    bus = mocks.one(EVENT_BUS)
    # THEN the component creates the bus, named for the stack
    assert bus.name == names.event_bus == "imgpipe-dev-processor-outcomes"
    # AND the function is told its name, and may put events on it and nowhere else
    variables = mocks.one(FUNCTION).inputs["environment"]["variables"]
    assert variables[ENV_EVENT_BUS] == bus.outputs["name"] == names.event_bus + SUFFIX
    assert put_events_resources(mocks) == [bus.outputs["arn"]]
    assert grants(mocks)["PublishOutcomes"]["Action"] == ["events:PutEvents"]


def test_event_bus_default_creates_no_bus_and_grants_the_default_bus_only():
    mocks = deploy(settings=StackSettings(event_bus=EVENT_BUS_DEFAULT)).mocks
    assert mocks.of_type(EVENT_BUS) == []
    variables = mocks.one(FUNCTION).inputs["environment"]["variables"]
    assert variables[ENV_EVENT_BUS] == "default"
    assert put_events_resources(mocks) == [f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"]


@pytest.mark.parametrize(
    ("setting", "name", "bus_arn"),
    [
        ("own", "imgpipe-dev-processor-outcomes" + SUFFIX,
         arn("events", f"event-bus/imgpipe-dev-processor-outcomes{SUFFIX}")),
        ("default", "default", arn("events", "event-bus/default")),
    ],
)  # fmt: skip
def test_the_program_reads_the_setting_and_exports_the_bus(setting, name, bus_arn):
    mocks = run_main(config={"eventBus": setting})
    exported = mocks.exported  # type: ignore[attr-defined]
    assert (exported[OUTPUT_EVENT_BUS], exported[OUTPUT_EVENT_BUS_ARN]) == (name, bus_arn)


def test_a_bus_that_is_neither_own_nor_default_is_refused_naming_the_key():
    with pytest.raises(StackSettingsError, match="imgpipe:eventBus: got 'prod-bus'"):
        StackSettings.from_values({"eventBus": "prod-bus"}.get)


def test_the_bus_name_counts_toward_the_4_kb_environment(monkeypatch):
    # GIVEN the check the program runs before any resource exists
    config = PipelineConfig.single(load_named("web"))
    names = resource_names("imgpipe", "dev")
    measured: list[dict[str, str]] = []

    def measure(environment: dict[str, str], config: PipelineConfig) -> None:
        measured.append(environment)
        check_environment_size(environment, config)

    monkeypatch.setattr("pipeline.program.component.check_environment_size", measure)
    validate(config, StackSettings(), names)
    # THEN the check sees the bus's physical name (autonamed like the rest)
    (environment,) = measured
    assert len(environment[ENV_EVENT_BUS]) == len(names.event_bus + SUFFIX)
    # AND a bus name that pushes it over the limit is refused
    too_big = {**environment, ENV_EVENT_BUS: "b" * 4096}
    with pytest.raises(DeployGuardError):
        check_environment_size(too_big, config)
