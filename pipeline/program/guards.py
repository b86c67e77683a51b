"""Deploy-time guards: refuse, at `pulumi preview`, what Lambda would refuse or fail at later.

Pure functions of plain values (no pulumi, no Pillow). Each raises DeployGuardError with a
message that says what is too big, by how much, and what to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, replace
from pathlib import Path

from lambda_pkg.profiles import PipelineConfig, Profile
from lambda_pkg.settings import ENV_PROFILE_CONFIG, LAMBDA_MB_PER_VCPU
from pipeline.delivery.edge import EdgeFunctionError, function_code
from pipeline.program.artifacts import LAMBDA_UNZIPPED_LIMIT, over_direct_upload, unzipped_size
from pipeline.program.stack import MEMORY_RANGE_MB, TIMEOUT_RANGE_S, StackSettings

# Lambda: "The total size of all environment variables doesn't exceed 4 KB" (names + values).
LAMBDA_ENVIRONMENT_LIMIT = 4096

LAMBDA_MAX_MEMORY_MB = MEMORY_RANGE_MB[1]
LAMBDA_MAX_TIMEOUT_S = TIMEOUT_RANGE_S[1]
FULL_VCPU_MB = LAMBDA_MB_PER_VCPU  # one full vCPU at 1769 MB, proportionally less below


@dataclass(frozen=True)
class Cost:
    """What one image costs, per pixel the profile accepts: the worst input kind measured."""

    bytes_per_pixel: float  # peak memory over the runtime's
    decode_s_per_mpx: float  # CPU seconds (one core here) per million source pixels
    rendition_s_per_mpx: float  # ... and per rendition, on top
    rendition_s: float  # ... and per rendition whatever the size (encoding, small passes)


# Measured, not estimated: `python -m benchmarks.sizing` (benchmarks/sizing.py) runs
# imaging.process on each input kind at 4, 12, 24 and 50 Mpx with both shipped profiles, one
# fresh process per case pinned to one core, and prints these from the peak RSS (VmHWM) and
# CPU time. Still kinds carry EXIF orientation 6 and an ICC profile where the format can:
# 8-bit RGB and CMYK JPEG, RGBA PNG, 16-bit PNG, 48-bit TIFF, palette GIF, RGBA WebP.
# Animated: GIF, WebP and APNG of 100 frames with keep_animation (without it, only the first
# frame is ever decoded: a still). Each field is its worst kind's; README "Sizing" has the
# table. Pillow 13.0, Python 3.11, x86_64.
RUNTIME_MEMORY_MB = 162  # interpreter, boto3 clients, Pillow, 7 renditions' encoders
STILL = Cost(20.02, 0.0905, 0.0026, 0.182)  # RGBA WebP; per rendition and Mpx: 16-bit PNG
ANIMATED = Cost(5.90, 0.0, 0.1282, 0.412)  # GIF; per rendition: WebP (every frame encoded)
# Margins over a fresh process's peak and CPU time: a warm container's heap fragmentation
# and Lambda's runtime client on the memory side; a shared CPU's jitter on the time side.
MEMORY_MARGIN = 1.10
CPU_MARGIN = 1.5
# S3 GetObject of up to max_bytes, the renditions' PutObjects and the DynamoDB writes:
# network time, not measured on this machine.
IO_SECONDS = 3


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


def cost(profile: Profile) -> Cost:
    """The worst kind a profile can meet: animated kinds only when it keeps animations."""
    if not profile.keep_animation:
        return STILL
    return Cost(*(max(a, b) for a, b in zip(astuple(STILL), astuple(ANIMATED), strict=True)))


def model_memory_mb(cost: Cost, pixels: int) -> float:
    """Peak memory the measurements predict for an image of `pixels`, before the margin."""
    return RUNTIME_MEMORY_MB + cost.bytes_per_pixel * pixels / 2**20


def encodes(profile: Profile) -> int:
    """The objects an image becomes: a rendition in several formats is encoded in each, and
    the model's per-rendition cost was measured as a resize and an encode."""
    return sum(len(rendition.formats) for rendition in profile.renditions)


def model_cpu_s(cost: Cost, pixels: int, renditions: int) -> float:
    """CPU seconds on one core here, before the margin."""
    per_mpx = cost.decode_s_per_mpx + renditions * cost.rendition_s_per_mpx
    return renditions * cost.rendition_s + per_mpx * pixels / 1e6


def required_memory_mb(profile: Profile) -> int:
    """Memory for the largest image the profile accepts, with the margin."""
    return math.ceil(model_memory_mb(cost(profile), profile.max_pixels) * MEMORY_MARGIN)


def required_timeout_s(profile: Profile, memory_mb: int) -> int:
    """Seconds for the largest image at `memory_mb`: Lambda's CPU share is memory/1769 of a
    vCPU (one vCPU ~ one core here; 1024 MB is 1.7x slower), Pillow mostly single-threaded."""
    slowdown = FULL_VCPU_MB / min(memory_mb, FULL_VCPU_MB)
    cpu = model_cpu_s(cost(profile), profile.max_pixels, encodes(profile))
    return IO_SECONDS + math.ceil(cpu * slowdown * CPU_MARGIN)


def largest_max_pixels(profile: Profile, fits: Callable[[Profile], bool]) -> int:
    """The largest max_pixels for which `fits` holds (0 if none): both needs only grow."""
    low, high = 0, 1
    while fits(replace(profile, max_pixels=high)):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(replace(profile, max_pixels=middle)) else (low, middle)
    return low


def check_capacity(config: PipelineConfig, memory_mb: int, timeout_s: int) -> None:
    """Memory and timeout must cover the largest image every routed profile accepts, and
    no profile may accept images larger than Lambda's largest function can process."""
    for profile in config.profiles:
        _check_lambda_can(profile)
        _check_memory(profile, memory_mb)
        _check_timeout(profile, memory_mb, timeout_s)


def _accepts(profile: Profile) -> str:
    return f"profile '{profile.name}' accepts images up to max_pixels={profile.max_pixels:,}"


def _check_lambda_can(profile: Profile) -> None:
    memory = required_memory_mb(profile)
    if memory > LAMBDA_MAX_MEMORY_MB:
        largest = largest_max_pixels(
            profile, lambda p: required_memory_mb(p) <= LAMBDA_MAX_MEMORY_MB
        )
        raise DeployGuardError(
            f"{_accepts(profile)}, which need about {memory:,} MB, more than Lambda's largest "
            f"function ({LAMBDA_MAX_MEMORY_MB:,} MB): lower max_pixels to at most "
            f"{largest:,} (the largest that fits in {LAMBDA_MAX_MEMORY_MB:,} MB)"
        )
    seconds = required_timeout_s(profile, LAMBDA_MAX_MEMORY_MB)
    if seconds > LAMBDA_MAX_TIMEOUT_S:
        largest = largest_max_pixels(
            profile,
            lambda p: required_timeout_s(p, LAMBDA_MAX_MEMORY_MB) <= LAMBDA_MAX_TIMEOUT_S,
        )
        raise DeployGuardError(
            f"{_accepts(profile)} with {encodes(profile)} renditions, which need about "
            f"{seconds:,} s even at {LAMBDA_MAX_MEMORY_MB:,} MB, more than Lambda's "
            f"{LAMBDA_MAX_TIMEOUT_S} s: lower max_pixels to at most {largest:,} or use "
            "fewer renditions"
        )


def _check_memory(profile: Profile, memory_mb: int) -> None:
    memory = required_memory_mb(profile)
    if memory_mb >= memory:
        return
    largest = largest_max_pixels(profile, lambda p: required_memory_mb(p) <= memory_mb)
    worst = cost(profile)
    fix = f"raise imgpipe:memory to at least {memory}"
    if largest:  # below the runtime's own memory no max_pixels fits at all
        fix += f" or lower max_pixels to at most {largest:,}"
    raise DeployGuardError(
        f"imgpipe:memory is {memory_mb} MB, but {_accepts(profile)}, which need about "
        f"{memory:,} MB (measured: {RUNTIME_MEMORY_MB} MB + {worst.bytes_per_pixel:g} bytes a "
        f'pixel for the costliest input kind, +{MEMORY_MARGIN - 1:.0%}; README "Sizing"): {fix}'
    )


def _check_timeout(profile: Profile, memory_mb: int, timeout_s: int) -> None:
    seconds = required_timeout_s(profile, memory_mb)
    if timeout_s >= seconds:
        return
    raise DeployGuardError(
        f"imgpipe:timeout is {timeout_s} s, but profile '{profile.name}' "
        f"({encodes(profile)} renditions of up to {profile.max_pixels:,} pixels) "
        f"needs about {seconds} s at {memory_mb} MB: raise imgpipe:timeout to at least "
        f"{seconds}, raise imgpipe:memory (more CPU), or lower max_pixels"
    )


def check_artifacts_fit(
    layer_zip: Path, function_zip: Path, limit: int = LAMBDA_UNZIPPED_LIMIT
) -> int:
    """Each zip within what one upload may carry, and function + layer unzipped under
    Lambda's 250 MB; return their unzipped total."""
    for what, path in (("layer", layer_zip), ("function", function_zip)):
        too_big = over_direct_upload(path)
        if too_big:
            raise DeployGuardError(f"the {what} zip {path} {too_big}: trim requirements/layer.txt")
    layer, function = unzipped_size(layer_zip), unzipped_size(function_zip)
    total = layer + function
    if total > limit:
        raise DeployGuardError(
            f"the function ({function / 2**20:.1f} MiB) and its layer ({layer / 2**20:.1f} MiB) "
            f"unzip to {total / 2**20:.1f} MiB, {(total - limit) / 2**20:.1f} MiB over Lambda's "
            f"{limit / 2**20:.0f} MiB limit: trim requirements/layer.txt"
        )
    return total


def check_cdn(config: PipelineConfig, settings: StackSettings) -> None:
    """The CDN settings agree with each other, and the profiles can be negotiated at the edge
    (canonical URLs that do not read as naming a format; a function within 10 KB)."""
    domain = settings.cdn_aliases or settings.cdn_certificate_arn
    if domain and not settings.cdn:
        raise DeployGuardError(
            "imgpipe:cdnAliases and imgpipe:cdnCertificateArn are for the CDN: set imgpipe:cdn "
            "true, or unset them"
        )
    if bool(settings.cdn_aliases) != bool(settings.cdn_certificate_arn):
        raise DeployGuardError(
            "imgpipe:cdnAliases and imgpipe:cdnCertificateArn go together: CloudFront serves a "
            "custom domain only with a certificate (ACM, us-east-1) that covers it"
        )
    if not settings.cdn:
        return
    try:
        function_code(config)  # checks the profiles too (check_negotiable)
    except EdgeFunctionError as problem:
        raise DeployGuardError(f"imgpipe:cdn: {problem}") from None
