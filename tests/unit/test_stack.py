"""pipeline.program.stack: config parsing, validation messages and resource names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lambda_pkg.profiles import Route
from pipeline.program import artifacts as layer
from pipeline.program.routing import RoutingError
from pipeline.program.stack import (
    LOG_RETENTION_DAYS,
    RUNTIMES,
    StackSettings,
    StackSettingsError,
)
from tests.support import REPO
from tests.support.aws import KMS_KEY_ARN


def settings_from(**values: str) -> StackSettings:
    return StackSettings.from_values(values.get)


def test_defaults_when_nothing_is_set() -> None:
    assert settings_from() == StackSettings(
        profile="thumbnail",
        runtime="python3.12",
        architecture="arm64",
        memory_mb=1536,
        timeout_s=60,
        log_retention_days=14,
    )


def test_every_key_is_read_under_its_camel_case_name() -> None:
    settings = settings_from(
        profile="web",
        runtime="python3.13",
        architecture="x86_64",
        memory="2048",
        timeout="900",
        logRetentionDays="30",
    )
    assert settings == StackSettings("web", "python3.13", "x86_64", 2048, 900, 30)


def test_empty_strings_take_the_default() -> None:
    assert settings_from(memory="", runtime="") == StackSettings()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("runtime", "python3.11", "cannot load current Pillow wheels"),
        ("runtime", "nodejs20.x", "one of python3.12, python3.13"),
        ("architecture", "arm", "arm64 or x86_64"),
        ("memory", "127", "from 128 to 10240"),
        ("memory", "10241", "from 128 to 10240"),
        ("memory", "1GB", "a whole number"),
        ("timeout", "0", "from 1 to 900"),
        ("timeout", "901", "from 1 to 900"),
        ("logRetentionDays", "10", "one of 0, 1, 3, 5, 7, 14"),
        ("profile", "../secrets", "a profile name"),
        ("retryAttempts", "3", "from 0 to 2"),
        ("maxEventAgeSeconds", "59", "from 60 to 21600"),
        ("alarmEmail", "not-an-address", "an e-mail address"),
        ("kmsKeyArn", "alias/aws/s3", "a KMS key ARN"),
        ("versioning", "yes", "true or false"),
        ("outputExpirationDays", "-1", "from 0 to 36500"),
        ("reservedConcurrency", "0", "from 1 to 10000"),
        ("singleBucket", "1", "true or false"),
        ("protect", "no", "true or false"),
        ("tracing", "Active", "true or false"),
        ("layerArn", "arn:aws:lambda:eu-west-1:123456789012:layer:pillow", "with its version"),
        ("layerArn", "pillow:3", "a layer version ARN"),
    ],
)
def test_invalid_values_name_the_key_the_value_and_what_is_allowed(
    key: str, value: str, expected: str
) -> None:
    with pytest.raises(StackSettingsError) as caught:
        settings_from(**{key: value})
    message = str(caught.value)
    assert message.startswith(f"imgpipe:{key}: got ")
    assert value.strip("./") in message
    assert expected in message


def test_limits_are_inclusive() -> None:
    low = settings_from(memory="128", timeout="1", logRetentionDays="1")
    high = settings_from(memory="10240", timeout="900", logRetentionDays="3653")
    assert (low.memory_mb, low.timeout_s) == (128, 1)
    assert (high.memory_mb, high.timeout_s, high.log_retention_days) == (10240, 900, 3653)
    assert 0 in LOG_RETENTION_DAYS  # "never expire"


def test_every_runtime_the_stack_accepts_has_a_layer_platform() -> None:
    assert set(RUNTIMES) == set(layer.RUNTIME_GLIBC_MINOR)


# -- production settings ----------------------------------------------------------------


def test_production_keys_and_their_defaults() -> None:
    defaults = settings_from()
    assert (defaults.retry_attempts, defaults.max_event_age_s) == (2, 21600)
    assert (defaults.alarm_email, defaults.kms_key_arn, defaults.reserved_concurrency) == (
        None,
        None,
        None,
    )
    assert (defaults.versioning, defaults.force_destroy_input, defaults.single_bucket) == (
        False,
        False,
        False,
    )
    assert defaults.output_expiration_days == 0
    assert defaults.resolved_routes() == (Route(profile="thumbnail"),)

    key = KMS_KEY_ARN
    settings = settings_from(
        retryAttempts="0",
        maxEventAgeSeconds="3600",
        alarmEmail="ops@example.com",
        kmsKeyArn=key,
        versioning="true",
        outputExpirationDays="30",
        forceDestroyInput="True",
        reservedConcurrency="10",
        singleBucket="true",
        routes='[{"prefix": "uploads/", "profile": "web"}]',
    )
    assert (settings.retry_attempts, settings.max_event_age_s) == (0, 3600)
    assert (settings.alarm_email, settings.kms_key_arn) == ("ops@example.com", key)
    assert settings.versioning and settings.force_destroy_input and settings.single_bucket
    assert (settings.output_expiration_days, settings.reserved_concurrency) == (30, 10)
    assert settings.resolved_routes() == (Route(profile="web", prefix="uploads/"),)
    assert settings.profile_names() == ("web",)


def test_data_protection_tracing_and_layer_keys() -> None:
    defaults = settings_from()
    assert (defaults.protect, defaults.tracing) == (True, False)
    assert (defaults.layer_arn, defaults.layer_zip) == (None, None)
    arn = "arn:aws:lambda:eu-west-1:123456789012:layer:pillow-arm64:12"
    settings = settings_from(protect="false", tracing="true", layerArn=arn)
    assert (settings.protect, settings.tracing, settings.layer_arn) == (False, True, arn)
    assert settings_from(layerZip="layers/p.zip").layer_zip == Path("layers/p.zip")


def test_one_prebuilt_layer_at_most() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:layer:pillow-arm64:12"
    with pytest.raises(
        StackSettingsError, match=r"imgpipe:layerZip: .*unset when imgpipe:layerArn"
    ):
        settings_from(layerArn=arn, layerZip="layers/p.zip")


def test_single_bucket_with_the_default_catch_all_is_refused() -> None:
    # The catch-all would match processed/..., so every rendition would re-trigger.
    with pytest.raises(RoutingError, match="would match the function's own outputs"):
        settings_from(singleBucket="true")


def test_routes_name_profiles_that_are_profile_names() -> None:
    with pytest.raises(StackSettingsError, match="imgpipe:routes"):
        settings_from(routes='[{"prefix": "a/", "profile": "../etc"}]')


# -- Pulumi.example.yaml ----------------------------------------------------------------

EXAMPLE = REPO / "Pulumi.example.yaml"
COMMENTED_KEY = re.compile(r"^\s*#\s*imgpipe:(\w+):\s*(\S.*?)\s*(?:#.*)?$")


def keys_read() -> list[str]:
    keys: list[str] = []

    def get(key: str) -> None:
        keys.append(key)

    StackSettings.from_values(get)
    return keys


def test_the_example_stack_file_is_exactly_the_defaults() -> None:
    config = yaml.safe_load(EXAMPLE.read_text())["config"]
    active = {k.removeprefix("imgpipe:"): v for k, v in config.items() if k.startswith("imgpipe:")}
    assert all(isinstance(v, str) for v in active.values()), "pulumi config values are strings"
    assert StackSettings.from_values(active.get) == StackSettings()


def test_the_example_stack_file_shows_every_key_with_a_valid_example() -> None:
    config = yaml.safe_load(EXAMPLE.read_text())["config"]
    active = {k.removeprefix("imgpipe:") for k in config if k.startswith("imgpipe:")}
    commented = {}
    for line in EXAMPLE.read_text().splitlines():
        match = COMMENTED_KEY.match(line)
        if match:
            commented[match[1]] = yaml.safe_load(match[2])
    assert active.isdisjoint(commented)
    assert active | set(commented) == set(keys_read())
    for key, value in commented.items():
        settings = StackSettings.from_values({key: str(value)}.get)  # each example parses
        assert settings != StackSettings(), key


def test_a_malformed_route_entry_is_a_bad_setting_named_to_its_field() -> None:
    with pytest.raises(StackSettingsError) as caught:
        settings_from(routes='[{"prefix": "a/*", "profile": "web"}]')
    assert str(caught.value).startswith("imgpipe:routes[0].prefix: got 'a/*'; allowed: literal")


# -- imgpipe:cdn ----------------------------------------------------------------------------

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978"


@pytest.mark.parametrize(
    "aliases", ['["img.example.com", "*.cdn.example.com"]', "IMG.example.com, *.cdn.example.com"]
)
def test_cdn_aliases_are_a_json_list_or_comma_separated(aliases: str) -> None:
    settings = settings_from(cdn="true", cdnAliases=aliases, cdnCertificateArn=CERTIFICATE)
    assert settings.cdn is True
    assert settings.cdn_aliases == ("img.example.com", "*.cdn.example.com")
    assert settings.cdn_certificate_arn == CERTIFICATE


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("cdnAliases", '["img.example.com", 3]', "DNS names"),
        ("cdnAliases", "-bad-.example.com", "DNS names"),
        ("cdnAliases", "localhost", "DNS names"),
        ("cdnCertificateArn", "arn:aws:acm:eu-west-1:123456789012:certificate/x", "us-east-1"),
        ("cdnCertificateArn", "arn:aws:iam::123456789012:server-certificate/x", "ACM certificate"),
    ],
)
def test_a_bad_cdn_setting_names_itself(key: str, value: str, allowed: str) -> None:
    with pytest.raises(StackSettingsError, match=f"imgpipe:{key}: .*{allowed}"):
        settings_from(**{key: value})
