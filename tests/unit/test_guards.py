"""program.guards: Lambda's limits and the measured sizing model, refused with clear messages."""

from __future__ import annotations

import math
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

import pipeline.program.artifacts
from lambda_pkg.profiles import PipelineConfig, Profile, Route, load_named, profile_from_dict
from lambda_pkg.settings import function_environment
from pipeline.program import guards
from pipeline.program.guards import (
    CPU_MARGIN,
    FULL_VCPU_MB,
    IO_SECONDS,
    LAMBDA_ENVIRONMENT_LIMIT,
    LAMBDA_MAX_MEMORY_MB,
    MEMORY_MARGIN,
    RUNTIME_MEMORY_MB,
    STILL,
    DeployGuardError,
    check_artifacts_fit,
    check_capacity,
    check_environment_size,
    cost,
    environment_size,
    largest_max_pixels,
    model_cpu_s,
    model_memory_mb,
    required_memory_mb,
    required_timeout_s,
)
from pipeline.program.names import autonamed
from pipeline.program.stack import StackSettings


def profile(name: str, description: str = "", max_pixels: int = 50_000_000) -> Profile:
    return profile_from_dict(
        {
            "name": name,
            "description": description,
            "max_pixels": max_pixels,
            "renditions": [
                {
                    "name": "thumb",
                    "resize": {"mode": "width", "width": 200},
                    "format": "jpeg",
                    "key": "processed/{key}/{rendition}.{ext}",
                }
            ],
        },
        "test",
    )


def test_environment_size_counts_names_and_values_in_utf8() -> None:
    assert environment_size({"AB": "c", "D": "é"}) == 2 + 1 + 1 + 2


def test_autonamed_has_the_physical_names_length() -> None:
    assert len(autonamed("imgpipe-dev-output")) == len("imgpipe-dev-output-a1b2c3d")


def test_shipped_profiles_fit_together() -> None:
    config = PipelineConfig(
        (load_named("thumbnail"), load_named("web")),
        (Route("web", prefix="w/"), Route("thumbnail")),
    )
    env = function_environment(autonamed("imgpipe-dev-output"), autonamed("x-metadata"), config)
    assert check_environment_size(env, config) <= LAMBDA_ENVIRONMENT_LIMIT


def test_oversized_environment_names_the_largest_profile_and_the_excess() -> None:
    # GIVEN two profiles, one with a 3,900-character description
    big, small = profile("big", "x" * 3900), profile("small")
    config = PipelineConfig((small, big), (Route("small", prefix="s/"), Route("big")))
    env = function_environment("out-1234567", "table-1234567", config)
    excess = environment_size(env) - LAMBDA_ENVIRONMENT_LIMIT
    assert excess > 0
    # THEN the error names the biggest profile and by how much the limit is exceeded
    with pytest.raises(DeployGuardError) as caught:
        check_environment_size(env, config)
    message = str(caught.value)
    assert f"{excess} over Lambda's 4096-byte limit" in message
    assert "the largest is 'big'" in message
    assert f"at least {excess} bytes" in message


def test_memory_is_the_measured_runtime_plus_the_costliest_kind_per_pixel() -> None:
    # The constants come from `python -m benchmarks.sizing`; the test pins the formula.
    for pixels in (1_000_000, 50_000_000):
        expected = (RUNTIME_MEMORY_MB + STILL.bytes_per_pixel * pixels / 2**20) * MEMORY_MARGIN
        assert required_memory_mb(profile("p", max_pixels=pixels)) == math.ceil(expected)


def test_the_issues_rgba_png_with_orientation_and_icc_is_covered() -> None:
    # Issue 12: an RGBA PNG 7071x7071 with EXIF orientation 6 and an ICC profile peaked at
    # 596 MB; benchmarks/sizing.py's png-rgba 50 Mpx row (that very shape) at 693 MB with
    # `web`. The old rule said 510 MB. The model covers it before its margin is added.
    pixels = 7071 * 7071
    assert model_memory_mb(STILL, pixels) >= 693
    assert required_memory_mb(profile("p", max_pixels=pixels)) >= 693 * MEMORY_MARGIN
    # and its time too: 4.34 CPU s measured with `web` on one core here
    assert model_cpu_s(STILL, pixels, renditions=7) >= 4.34


def test_animations_cost_more_time_only_when_the_profile_keeps_them() -> None:
    still = load_named("web")
    animated = replace(still, keep_animation=True)
    assert cost(still) == STILL
    assert required_timeout_s(animated, 1024) > required_timeout_s(still, 1024)
    assert required_memory_mb(animated) >= required_memory_mb(still)


def test_timeout_scales_with_cpu() -> None:
    p = profile("p", max_pixels=50_000_000)  # 1 rendition
    cpu = model_cpu_s(STILL, 50_000_000, renditions=1)
    assert required_timeout_s(p, FULL_VCPU_MB) == IO_SECONDS + math.ceil(cpu * CPU_MARGIN)
    at_1024 = IO_SECONDS + math.ceil(cpu * FULL_VCPU_MB / 1024 * CPU_MARGIN)  # ~1.7x slower
    assert required_timeout_s(p, 1024) == at_1024
    assert required_timeout_s(p, 512) > required_timeout_s(p, 1024) > required_timeout_s(p, 1769)
    assert required_timeout_s(p, 10240) == required_timeout_s(p, 1769)  # single-threaded


def test_capacity_refuses_too_little_memory_naming_the_profile_and_what_fits() -> None:
    huge = profile("huge", max_pixels=200_000_000)
    need = required_memory_mb(huge)
    largest = largest_max_pixels(huge, lambda p: required_memory_mb(p) <= 1024)
    assert required_memory_mb(replace(huge, max_pixels=largest)) <= 1024
    assert required_memory_mb(replace(huge, max_pixels=largest + 1)) > 1024
    config = PipelineConfig((huge,), (Route("huge"),))
    with pytest.raises(DeployGuardError) as caught:
        check_capacity(config, memory_mb=1024, timeout_s=900)
    message = str(caught.value)
    assert message.startswith("imgpipe:memory is 1024 MB, but profile 'huge'")
    assert f"max_pixels=200,000,000, which need about {need:,} MB" in message
    assert f"at least {need} or lower max_pixels to at most {largest:,}" in message
    check_capacity(config, memory_mb=need, timeout_s=900)


def test_below_the_runtimes_own_memory_only_more_memory_helps() -> None:
    config = PipelineConfig.single(profile("p", max_pixels=1))
    with pytest.raises(DeployGuardError) as caught:
        check_capacity(config, memory_mb=128, timeout_s=60)
    message = str(caught.value)
    assert message.endswith(
        f"raise imgpipe:memory to at least {required_memory_mb(config.profiles[0])}"
    )


def test_a_profile_lambda_cannot_hold_is_refused_with_the_largest_that_fits() -> None:
    # GIVEN a profile whose max_pixels needs more than Lambda's 10,240 MB
    giant = profile("giant", max_pixels=600_000_000)
    assert required_memory_mb(giant) > LAMBDA_MAX_MEMORY_MB
    largest = largest_max_pixels(giant, lambda p: required_memory_mb(p) <= LAMBDA_MAX_MEMORY_MB)
    assert required_memory_mb(replace(giant, max_pixels=largest)) <= LAMBDA_MAX_MEMORY_MB
    assert required_memory_mb(replace(giant, max_pixels=largest + 1)) > LAMBDA_MAX_MEMORY_MB
    # THEN even the largest function is refused, naming the profile, max_pixels and the fix
    config = PipelineConfig.single(giant)
    with pytest.raises(DeployGuardError) as caught:
        check_capacity(config, memory_mb=LAMBDA_MAX_MEMORY_MB, timeout_s=900)
    message = str(caught.value)
    assert "profile 'giant' accepts images up to max_pixels=600,000,000" in message
    assert "more than Lambda's largest function (10,240 MB)" in message
    assert f"lower max_pixels to at most {largest:,}" in message
    check_capacity(PipelineConfig.single(replace(giant, max_pixels=largest)), 10240, 900)


def test_capacity_refuses_too_short_a_timeout() -> None:
    config = PipelineConfig.single(load_named("web"))
    need = required_timeout_s(load_named("web"), 1536)
    with pytest.raises(DeployGuardError, match=rf"imgpipe:timeout is 5 s, .*'web'.* {need} s"):
        check_capacity(config, memory_mb=1536, timeout_s=5)


def test_defaults_pass_for_the_shipped_profiles() -> None:
    defaults = StackSettings()
    for name in ("thumbnail", "web"):
        config = PipelineConfig.single(load_named(name))
        check_capacity(config, memory_mb=defaults.memory_mb, timeout_s=defaults.timeout_s)


def test_the_old_default_memory_is_too_small_for_max_pixels_50_m() -> None:
    # Why the default is 1536 MB: a 50 Mpx RGBA WebP peaks past 1,000 MB in a fresh process.
    with pytest.raises(DeployGuardError, match="imgpipe:memory is 1024 MB"):
        check_capacity(PipelineConfig.single(load_named("thumbnail")), 1024, 60)


def zip_of(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("python/blob", b"\0" * size)
    return path


def test_layer_and_function_together_must_fit_in_250_mb(tmp_path: Path) -> None:
    layer, function = zip_of(tmp_path / "l.zip", 600), zip_of(tmp_path / "f.zip", 500)
    assert check_artifacts_fit(layer, function, limit=1100) == 1100
    with pytest.raises(DeployGuardError, match="over Lambda's"):
        check_artifacts_fit(layer, function, limit=1099)


def test_each_zip_must_fit_in_one_direct_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer, function = zip_of(tmp_path / "l.zip", 600), zip_of(tmp_path / "f.zip", 500)
    monkeypatch.setattr(
        pipeline.program.artifacts, "LAMBDA_DIRECT_UPLOAD_LIMIT", layer.stat().st_size - 1
    )
    with pytest.raises(DeployGuardError, match=r"the layer zip .* Lambda accepts in a direct"):
        check_artifacts_fit(layer, function)


def test_each_format_of_a_rendition_is_an_encode_the_timeout_pays_for() -> None:
    web = load_named("web")
    assert guards.encodes(web) == 7  # three widths in two formats and the square
    one_format = tuple(replace(r, format=r.formats[-1]) for r in web.renditions)
    single = replace(web, renditions=one_format)
    assert guards.encodes(single) == 4
    assert required_timeout_s(web, 1024) > required_timeout_s(single, 1024)
