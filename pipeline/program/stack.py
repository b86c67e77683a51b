"""Stack settings shared by the Pulumi program and the local stack.

A plain module (no pulumi import): `__main__.py` feeds it `pulumi.Config("imgpipe").get`,
the local stack feeds it whatever it reads, and both get the same validation and the
same resource names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg.profile_fields import PROFILE_NAME_ALLOWED, is_name
from lambda_pkg.profiles import PROFILES_DIR, PipelineConfig, Route, load_named
from pipeline.program.routing import (
    RouteEntryError,
    check_no_self_trigger,
    order_routes,
    parse_routes,
)

CONFIG_NAMESPACE = "imgpipe"

# Stack output names: the local stack and the CLI look the outputs up by these.
OUTPUT_INPUT_BUCKET = "inputBucket"
OUTPUT_OUTPUT_BUCKET = "outputBucket"
OUTPUT_METADATA_TABLE = "metadataTable"
OUTPUT_FUNCTION_NAME = "functionName"
# The SQS queue Lambda's on-failure destination writes to (`imgpipe dlq ls/redrive` read it).
OUTPUT_DEAD_LETTER_QUEUE = "deadLetterQueueUrl"
OUTPUT_DEAD_LETTER_QUEUE_ARN = "deadLetterQueueArn"
# The SNS topic every alarm notifies; subscribe more endpoints to it than alarmEmail.
OUTPUT_ALARM_TOPIC = "alarmTopicArn"
# The EventBridge bus outcomes are published on: put rules on it (README "Events").
OUTPUT_EVENT_BUS = "eventBusName"
OUTPUT_EVENT_BUS_ARN = "eventBusArn"
# With imgpipe:cdn: the distribution's own domain (the CNAME target for custom domains) and
# the base URL renditions are served from (the first custom domain, if any).
OUTPUT_CDN_DOMAIN = "cdnDomain"
OUTPUT_CDN_URL = "cdnUrl"

# What the input bucket notifies the function of: the Pulumi program and the local stack
# wire the same list, so the emulator sees what AWS would deliver.
# ObjectRemoved lets the function delete the renditions of a deleted original.
TRIGGER_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")

# Lambda's python3.11 runs on Amazon Linux 2 (glibc 2.26); Pillow 13's wheels need glibc
# 2.27+ (manylinux_2_27/2_28), so only the Amazon Linux 2023 runtimes (glibc 2.34) qualify.
RUNTIMES = ("python3.12", "python3.13")
ARCHITECTURES = ("arm64", "x86_64")
MEMORY_RANGE_MB = (128, 10240)
TIMEOUT_RANGE_S = (1, 900)
# Lambda's async invoke config limits (FunctionEventInvokeConfig).
RETRY_RANGE = (0, 2)
EVENT_AGE_RANGE_S = (60, 21600)
# Reserved concurrency: 0 would disable the function, so "unset" means unreserved.
RESERVED_CONCURRENCY_RANGE = (1, 10000)
# S3 lifecycle expiration needs a positive number of days; 0 here means "no rule".
OUTPUT_EXPIRATION_RANGE_DAYS = (0, 36500)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# A layer *version* ARN: Lambda attaches versions, never a layer as such.
_LAYER_VERSION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]{1,140}:[1-9]\d*$"
)
# CloudFront uses ACM certificates from us-east-1 only, whatever region the stack is in.
CDN_CERTIFICATE_REGION = "us-east-1"
_ACM_CERTIFICATE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$"
)
# A DNS name CloudFront accepts as an alternate domain name, a leading "*." allowed.
_HOSTNAME_RE = re.compile(
    r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
)
_BOOLEANS = {"true": True, "false": False}
# imgpipe:eventBus: a bus of the stack's own, created with it, or the account's default bus.
EVENT_BUS_OWN, EVENT_BUS_DEFAULT = "own", "default"
EVENT_BUSES = (EVENT_BUS_OWN, EVENT_BUS_DEFAULT)
# The values CloudWatch Logs accepts for PutRetentionPolicy; 0 means "never expire".
LOG_RETENTION_DAYS = (
    0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


class StackSettingsError(ValueError):
    """A stack config value is invalid; the message names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{CONFIG_NAMESPACE}:{key}: got {value!r}; allowed: {allowed}")


@dataclass(frozen=True)
class StackSettings:
    profile: str = "thumbnail"
    runtime: str = "python3.12"
    architecture: str = "arm64"
    memory_mb: int = 1536  # covers the shipped profiles (max_pixels 50 M): README "Sizing"
    timeout_s: int = 60
    log_retention_days: int = 14
    # () = one catch-all route to `profile`; see pipeline/program/routing.py for the rules.
    routes: tuple[Route, ...] = ()
    retry_attempts: int = 2
    max_event_age_s: int = 21600
    alarm_email: str | None = None
    kms_key_arn: str | None = None  # None: SSE-S3 (AES256)
    versioning: bool = False
    output_expiration_days: int = 0  # 0: renditions never expire
    force_destroy_input: bool = False
    reserved_concurrency: int | None = None  # None: unreserved
    single_bucket: bool = False  # renditions under processed/ in the input bucket
    # Pulumi `protect` on the table and input bucket, plus the table's deletion protection.
    protect: bool = True
    tracing: bool = False  # X-Ray active tracing
    # A prebuilt layer instead of a pip build at deploy: a layer version ARN, or a zip file
    # (`imgpipe build-layer`). At most one; both None means build from requirements/layer.txt.
    layer_arn: str | None = None
    layer_zip: Path | None = None
    # Where outcomes are published. Its own bus by default: stacks sharing an account (dev
    # and prod) stay apart, as every stack's events carry the same source; the function may
    # put events on that bus only, and rules on it concern this stack alone. `default` is
    # for consumers that only listen there. Either costs the same: per event, not per bus.
    event_bus: str = EVENT_BUS_OWN
    # A CloudFront distribution in front of the output bucket (README "Serving images"),
    # optionally on custom domains with an ACM certificate from us-east-1.
    cdn: bool = False
    cdn_aliases: tuple[str, ...] = ()
    cdn_certificate_arn: str | None = None

    def resolved_routes(self) -> tuple[Route, ...]:
        """The routes in handler order (specific first, catch-all last)."""
        return order_routes(self.routes or (Route(profile=self.profile),))

    def profile_names(self) -> tuple[str, ...]:
        """Every profile the routes use, each once, in route order."""
        return tuple(dict.fromkeys(r.profile for r in self.resolved_routes()))

    def pipeline_config(self, profiles_dir: Path = PROFILES_DIR) -> PipelineConfig:
        """Every routed profile, loaded and validated once, with the routes: what the
        function is configured with, in AWS and in the local stack alike."""
        profiles = tuple(load_named(name, profiles_dir) for name in self.profile_names())
        return PipelineConfig(profiles=profiles, routes=self.resolved_routes())

    @classmethod
    def from_values(cls, get: Callable[[str], str | None]) -> StackSettings:
        """Parse and validate the `imgpipe:*` config keys; a missing key takes the default."""
        defaults = cls()

        def value(key: str, default: object) -> str:
            raw = get(key)
            return str(default) if raw is None or raw == "" else str(raw).strip()

        profile = value("profile", defaults.profile)
        if not is_name(profile):
            raise StackSettingsError("profile", profile, PROFILE_NAME_ALLOWED)
        runtime = value("runtime", defaults.runtime)
        if runtime not in RUNTIMES:
            allowed = f"one of {', '.join(RUNTIMES)}"
            if runtime == "python3.11":
                allowed += (
                    " (python3.11 cannot load current Pillow wheels: its Amazon Linux 2 has "
                    "glibc 2.26, Pillow 13 needs manylinux_2_27 or later)"
                )
            raise StackSettingsError("runtime", runtime, allowed)
        architecture = value("architecture", defaults.architecture)
        if architecture not in ARCHITECTURES:
            raise StackSettingsError("architecture", architecture, " or ".join(ARCHITECTURES))
        retention = _int("logRetentionDays", value("logRetentionDays", defaults.log_retention_days))
        if retention not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise StackSettingsError("logRetentionDays", retention, f"one of {allowed}")
        routes = _routes(get("routes"), profile)
        alarm_email = value("alarmEmail", "") or None
        if alarm_email is not None and not _EMAIL_RE.match(alarm_email):
            raise StackSettingsError("alarmEmail", alarm_email, "an e-mail address, or unset")
        kms_key_arn = value("kmsKeyArn", "") or None
        if kms_key_arn is not None and not _KMS_KEY_ARN_RE.match(kms_key_arn):
            raise StackSettingsError(
                "kmsKeyArn",
                kms_key_arn,
                "a KMS key ARN like arn:aws:kms:eu-west-1:123456789012:key/<id> (an alias "
                "cannot be granted in IAM by ARN), or unset for SSE-S3",
            )
        reserved = value("reservedConcurrency", "")
        layer_arn = value("layerArn", "") or None
        if layer_arn is not None and not _LAYER_VERSION_ARN_RE.match(layer_arn):
            raise StackSettingsError(
                "layerArn",
                layer_arn,
                "a layer version ARN like arn:aws:lambda:eu-west-1:123456789012:layer:pillow:3 "
                "(with its version number), or unset",
            )
        event_bus = value("eventBus", defaults.event_bus)
        if event_bus not in EVENT_BUSES:
            raise StackSettingsError(
                "eventBus",
                event_bus,
                f"{EVENT_BUS_OWN} (a bus the stack creates) or {EVENT_BUS_DEFAULT} (the "
                "account's default bus)",
            )
        layer_zip = value("layerZip", "") or None
        if layer_arn and layer_zip:
            raise StackSettingsError(
                "layerZip", layer_zip, "unset when imgpipe:layerArn is set (one prebuilt layer)"
            )
        settings = cls(
            profile=profile,
            runtime=runtime,
            architecture=architecture,
            memory_mb=_int("memory", value("memory", defaults.memory_mb), *MEMORY_RANGE_MB),
            timeout_s=_int("timeout", value("timeout", defaults.timeout_s), *TIMEOUT_RANGE_S),
            log_retention_days=retention,
            routes=routes,
            retry_attempts=_int(
                "retryAttempts", value("retryAttempts", defaults.retry_attempts), *RETRY_RANGE
            ),
            max_event_age_s=_int(
                "maxEventAgeSeconds",
                value("maxEventAgeSeconds", defaults.max_event_age_s),
                *EVENT_AGE_RANGE_S,
            ),
            alarm_email=alarm_email,
            kms_key_arn=kms_key_arn,
            versioning=_bool("versioning", value("versioning", defaults.versioning)),
            output_expiration_days=_int(
                "outputExpirationDays",
                value("outputExpirationDays", defaults.output_expiration_days),
                *OUTPUT_EXPIRATION_RANGE_DAYS,
            ),
            force_destroy_input=_bool(
                "forceDestroyInput", value("forceDestroyInput", defaults.force_destroy_input)
            ),
            reserved_concurrency=(
                _int("reservedConcurrency", reserved, *RESERVED_CONCURRENCY_RANGE)
                if reserved
                else None
            ),
            single_bucket=_bool("singleBucket", value("singleBucket", defaults.single_bucket)),
            protect=_bool("protect", value("protect", defaults.protect)),
            tracing=_bool("tracing", value("tracing", defaults.tracing)),
            layer_arn=layer_arn,
            layer_zip=Path(layer_zip).expanduser() if layer_zip else None,
            event_bus=event_bus,
            cdn=_bool("cdn", value("cdn", defaults.cdn)),
            cdn_aliases=_hostnames("cdnAliases", get("cdnAliases")),
            cdn_certificate_arn=_certificate("cdnCertificateArn", value("cdnCertificateArn", "")),
        )
        check_no_self_trigger(settings.resolved_routes(), settings.single_bucket)
        return settings


def _routes(raw: str | None, profile: str) -> tuple[Route, ...]:
    """A malformed entry is a bad setting, named down to its field (imgpipe:routes[0].profile);
    routes that cannot be deployed together raise RoutingError, which names imgpipe:routes."""
    try:
        return parse_routes(raw, profile) if raw else ()
    except RouteEntryError as bad:
        raise StackSettingsError(bad.path, bad.value, bad.allowed) from None


def _hostnames(key: str, raw: str | None) -> tuple[str, ...]:
    """A JSON list (`pulumi config set --path 'imgpipe:cdnAliases[0]' ...`) or a
    comma-separated string of DNS names."""
    if raw is None or not str(raw).strip():
        return ()
    text = str(raw).strip()
    try:
        names = json.loads(text) if text.startswith("[") else text.split(",")
    except json.JSONDecodeError:
        names = None
    allowed = 'DNS names, as a JSON list or comma-separated: "img.example.com,*.cdn.example.com"'
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise StackSettingsError(key, raw, allowed)
    found = tuple(dict.fromkeys(n.strip().lower() for n in names))
    for name in found:
        if len(name) > 253 or not _HOSTNAME_RE.match(name):
            raise StackSettingsError(key, name, allowed)
    return found


def _certificate(key: str, raw: str) -> str | None:
    if not raw:
        return None
    match = _ACM_CERTIFICATE_ARN_RE.match(raw)
    if not match:
        raise StackSettingsError(
            key,
            raw,
            "an ACM certificate ARN like arn:aws:acm:us-east-1:123456789012:certificate/<id>",
        )
    if match["region"] != CDN_CERTIFICATE_REGION:
        raise StackSettingsError(
            key,
            raw,
            f"a certificate in {CDN_CERTIFICATE_REGION} (CloudFront uses ACM certificates from "
            f"{CDN_CERTIFICATE_REGION} only, whatever the stack's region; this one is in "
            f"{match['region']})",
        )
    return raw


def _bool(key: str, raw: str) -> bool:
    try:
        return _BOOLEANS[raw.lower()]
    except KeyError:
        raise StackSettingsError(key, raw, "true or false") from None


def _int(key: str, raw: str, low: int | None = None, high: int | None = None) -> int:
    allowed = "a whole number" if low is None else f"a whole number from {low} to {high}"
    try:
        number = int(raw)
    except ValueError:
        raise StackSettingsError(key, raw, allowed) from None
    if low is not None and high is not None and not low <= number <= high:
        raise StackSettingsError(key, number, allowed)
    return number
