"""The function's configuration: environment variables read in exactly one place.

The Pulumi program (pipeline/program/component.py) and the local stack set these same names;
they import the constants from here so the two sides cannot drift.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from lambda_pkg.profiles import PipelineConfig

ENV_OUTPUT_BUCKET = "OUTPUT_BUCKET"
ENV_METADATA_TABLE = "METADATA_TABLE"
ENV_PROFILE_CONFIG = "PROFILE_CONFIG"
ENV_EVENT_BUS = "EVENT_BUS"  # where outcomes are published (lambda_pkg/outcomes.py)
FUNCTION_ENVIRONMENT = (ENV_OUTPUT_BUCKET, ENV_METADATA_TABLE, ENV_PROFILE_CONFIG, ENV_EVENT_BUS)
# The bus every AWS account (and moto) has without creating one.
DEFAULT_EVENT_BUS = "default"
# Set by Lambda itself (and the local stack): the function's memory, which the per-image
# budget (lambda_pkg/budget.py) divides. Unset elsewhere: no memory budget.
ENV_MEMORY_SIZE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"


class SettingsError(RuntimeError):
    """The function was deployed without the environment it needs."""


@dataclass(frozen=True)
class Settings:
    output_bucket: str
    metadata_table: str
    config: PipelineConfig
    memory_mb: int | None = None
    # The deployed function always has one (EVENT_BUS is required); None, for in-process
    # callers (tests, benchmarks) that construct Settings themselves, publishes nothing.
    event_bus: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        missing = [name for name in FUNCTION_ENVIRONMENT if not env.get(name)]
        if missing:
            raise SettingsError(f"missing environment variable(s): {', '.join(missing)}")
        return cls(
            output_bucket=env[ENV_OUTPUT_BUCKET],
            metadata_table=env[ENV_METADATA_TABLE],
            config=PipelineConfig.from_json(env[ENV_PROFILE_CONFIG], source=ENV_PROFILE_CONFIG),
            memory_mb=_memory_mb(env.get(ENV_MEMORY_SIZE)),
            event_bus=env[ENV_EVENT_BUS],
        )


def _memory_mb(value: str | None) -> int | None:
    if not value:
        return None
    try:
        memory_mb = int(value)
    except ValueError:
        memory_mb = 0
    if memory_mb <= 0:
        raise SettingsError(f"{ENV_MEMORY_SIZE} must be a positive number of MB, got {value!r}")
    return memory_mb


def function_environment(
    output_bucket: str,
    metadata_table: str,
    config: PipelineConfig,
    event_bus: str = DEFAULT_EVENT_BUS,
) -> dict[str, str]:
    """The exact environment the function gets; used by Pulumi and the local stack alike.
    `event_bus` is a bus name or ARN; the account's default bus unless the stack has its own."""
    return {
        ENV_OUTPUT_BUCKET: output_bucket,
        ENV_METADATA_TABLE: metadata_table,
        ENV_PROFILE_CONFIG: config.to_json(),
        ENV_EVENT_BUS: event_bus,
    }


# Lambda gives a function one vCPU's worth of time per 1,769 MB (its documented ratio): at
# the stack's 1,536 MB that is 0.87 of one core, shared by every thread the function starts.
LAMBDA_MB_PER_VCPU = 1769
_CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


@functools.cache
def usable_cores() -> int:
    """How many cores' worth of time this process can use at once (see `cores_from`);
    read once per process: it does not change while the process lives."""
    return cores_from(os.environ)


def cores_from(environ: Mapping[str, str]) -> int:
    """The fewest of the process's CPU affinity, its cgroup's CPU quota and, on Lambda,
    its memory's vCPU share. Below 2, a second thread only adds hand-offs (imaging encodes
    inline, transforms resize in one pass); os.cpu_count() counts the host's cores whatever
    the process may use."""
    limits = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0]
    limits.append(_cgroup_quota())
    try:
        memory_mb = _memory_mb(environ.get(ENV_MEMORY_SIZE))
    except SettingsError:
        memory_mb = None  # Settings.from_env refuses it; a thread count must not
    if memory_mb is not None:
        limits.append(max(1, memory_mb // LAMBDA_MB_PER_VCPU))
    known = [limit for limit in limits if limit > 0] or [os.cpu_count() or 1]
    return max(1, min(known))


def _cgroup_quota() -> int:
    """cgroup v2's `cpu.max` ("max 100000" or "150000 100000"), in whole cores; 0: none."""
    try:
        with open(_CGROUP_CPU_MAX) as limits:
            quota, period = limits.read().split()[:2]
        return 0 if quota == "max" else max(1, int(quota) // int(period))
    except (OSError, ValueError, ZeroDivisionError):
        return 0
