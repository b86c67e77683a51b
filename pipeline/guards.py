"""Deploy-time guards: refuse, at `pulumi preview`, what Lambda would refuse or fail at later.

Pure functions of plain values (no pulumi, no Pillow). Each raises DeployGuardError with a
message that says what is too big, by how much, and what to change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from lambda_pkg.profiles import PipelineConfig, Profile
from lambda_pkg.settings import ENV_PROFILE_CONFIG
from pipeline.layer import LAMBDA_DIRECT_UPLOAD_LIMIT, LAMBDA_UNZIPPED_LIMIT, unzipped_size

# Lambda: "The total size of all environment variables doesn't exceed 4 KB" (names + values).
LAMBDA_ENVIRONMENT_LIMIT = 4096

# Memory rule of thumb (README "Sizing"): Python + boto3 + Pillow need about
# BASE_MEMORY_MB; the largest image a profile accepts is decoded once at up to 4 bytes a
# pixel (RGBA/CMYK) and needs one working copy of the same size while converting/resizing.
BASE_MEMORY_MB = 128
BYTES_PER_PIXEL = 4
WORKING_COPIES = 2
# Timeout rule of thumb: Lambda gives one full vCPU at 1769 MB (proportionally less below),
# Pillow's decode and each rendition are single-threaded; measured ~100 Mpx/s a pass on a
# desktop core, halved for a Lambda vCPU: PIXELS_PER_VCPU_SECOND per pass.
FULL_VCPU_MB = 1769
PIXELS_PER_VCPU_SECOND = 50_000_000
BASE_SECONDS = 2


class DeployGuardError(ValueError):
    """The stack would deploy something Lambda rejects or that cannot do its job."""


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB limit: every name plus every value, UTF-8."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())


def check_environment_size(variables: Mapping[str, str], config: PipelineConfig) -> int:
    """Raise if the environment would not fit in Lambda's 4 KB; return its size."""
    size = environment_size(variables)
    if size <= LAMBDA_ENVIRONMENT_LIMIT:
        return size
    sizes = {p.name: len(PipelineConfig.single(p).to_json().encode()) for p in config.profiles}
    largest = max(sizes, key=lambda name: sizes[name])
    excess = size - LAMBDA_ENVIRONMENT_LIMIT
    raise DeployGuardError(
        f"the function's environment is {size} bytes, {excess} over Lambda's "
        f"{LAMBDA_ENVIRONMENT_LIMIT}-byte limit; {ENV_PROFILE_CONFIG} holds "
        f"{len(config.profiles)} profile(s), the largest is '{largest}' "
        f"({sizes[largest]} bytes serialised): shorten it by at least {excess} bytes "
        "(fewer renditions, shorter key templates or descriptions) or route fewer profiles"
    )


def required_memory_mb(profile: Profile) -> int:
    decoded = profile.max_pixels * BYTES_PER_PIXEL * WORKING_COPIES
    return BASE_MEMORY_MB + math.ceil(decoded / 2**20)


def required_timeout_s(profile: Profile, memory_mb: int) -> int:
    vcpu = min(memory_mb / FULL_VCPU_MB, 1.0)
    passes = 1 + len(profile.renditions)  # one decode, then one pass per rendition
    return BASE_SECONDS + math.ceil(passes * profile.max_pixels / (PIXELS_PER_VCPU_SECOND * vcpu))


def check_capacity(config: PipelineConfig, memory_mb: int, timeout_s: int) -> None:
    """Memory and timeout must cover the largest image every routed profile accepts."""
    for profile in config.profiles:
        memory = required_memory_mb(profile)
        if memory_mb < memory:
            raise DeployGuardError(
                f"imgpipe:memory is {memory_mb} MB, but profile '{profile.name}' accepts images "
                f"up to max_pixels={profile.max_pixels:,}, which need about {memory} MB "
                f"({BASE_MEMORY_MB} MB + {BYTES_PER_PIXEL} bytes x {WORKING_COPIES} copies per "
                f"pixel): raise imgpipe:memory to at least {memory} or lower max_pixels"
            )
        seconds = required_timeout_s(profile, memory_mb)
        if timeout_s < seconds:
            raise DeployGuardError(
                f"imgpipe:timeout is {timeout_s} s, but profile '{profile.name}' "
                f"({len(profile.renditions)} renditions of up to {profile.max_pixels:,} pixels) "
                f"needs about {seconds} s at {memory_mb} MB: raise imgpipe:timeout to at least "
                f"{seconds}, raise imgpipe:memory (more CPU), or lower max_pixels"
            )


def check_artifacts_fit(
    layer_zip: Path, function_zip: Path, limit: int = LAMBDA_UNZIPPED_LIMIT
) -> int:
    """Each zip within what one upload may carry, and function + layer unzipped under
    Lambda's 250 MB; return their unzipped total."""
    for what, path in (("layer", layer_zip), ("function", function_zip)):
        zipped = Path(path).stat().st_size
        if zipped > LAMBDA_DIRECT_UPLOAD_LIMIT:
            raise DeployGuardError(
                f"the {what} zip {path} is {zipped / 2**20:.1f} MiB, over the "
                f"{LAMBDA_DIRECT_UPLOAD_LIMIT / 2**20:.0f} MiB Lambda accepts in a direct "
                "upload: trim requirements/layer.txt"
            )
    layer, function = unzipped_size(layer_zip), unzipped_size(function_zip)
    total = layer + function
    if total > limit:
        raise DeployGuardError(
            f"the function ({function / 2**20:.1f} MiB) and its layer ({layer / 2**20:.1f} MiB) "
            f"unzip to {total / 2**20:.1f} MiB, {(total - limit) / 2**20:.1f} MiB over Lambda's "
            f"{limit / 2**20:.0f} MiB limit: trim requirements/layer.txt"
        )
    return total
