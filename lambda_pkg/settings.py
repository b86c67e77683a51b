"""The function's configuration: environment variables read in exactly one place.

The Pulumi program (pipeline/program/component.py) and the local stack set these same names;
they import the constants from here so the two sides cannot drift.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lambda_pkg.profiles import PipelineConfig

ENV_OUTPUT_BUCKET = "OUTPUT_BUCKET"
ENV_METADATA_TABLE = "METADATA_TABLE"
ENV_PROFILE_CONFIG = "PROFILE_CONFIG"
FUNCTION_ENVIRONMENT = (ENV_OUTPUT_BUCKET, ENV_METADATA_TABLE, ENV_PROFILE_CONFIG)
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
    output_bucket: str, metadata_table: str, config: PipelineConfig
) -> dict[str, str]:
    """The exact environment the function gets; used by Pulumi and the local stack alike."""
    return {
        ENV_OUTPUT_BUCKET: output_bucket,
        ENV_METADATA_TABLE: metadata_table,
        ENV_PROFILE_CONFIG: config.to_json(),
    }
