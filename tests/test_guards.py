"""pipeline.guards: Lambda's limits and the sizing rule of thumb, refused with clear messages."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from lambda_pkg.profiles import PipelineConfig, Profile, Route, load_named, profile_from_dict
from lambda_pkg.settings import function_environment
from pipeline import guards
from pipeline.guards import (
    LAMBDA_ENVIRONMENT_LIMIT,
    DeployGuardError,
    check_artifacts_fit,
    check_capacity,
    check_environment_size,
    environment_size,
    required_memory_mb,
    required_timeout_s,
)
from pipeline.names import autonamed


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


def test_memory_rule_of_thumb() -> None:
    # 128 MB + 4 bytes x 2 copies per pixel of the largest accepted image.
    assert required_memory_mb(profile("p", max_pixels=50_000_000)) == 128 + 382
    assert required_memory_mb(profile("p", max_pixels=1_000_000)) == 128 + 8


def test_timeout_rule_of_thumb_scales_with_cpu() -> None:
    p = profile("p", max_pixels=50_000_000)  # 1 rendition: 2 passes
    assert required_timeout_s(p, 1769) == 2 + 2  # one full vCPU
    assert required_timeout_s(p, 512) > required_timeout_s(p, 1024) > required_timeout_s(p, 1769)
    assert required_timeout_s(p, 10240) == required_timeout_s(p, 1769)  # single-threaded


def test_capacity_refuses_too_little_memory_naming_the_profile() -> None:
    config = PipelineConfig((profile("huge", max_pixels=200_000_000),), (Route("huge"),))
    with pytest.raises(DeployGuardError, match=r"imgpipe:memory is 1024 MB, .*'huge'.*1654"):
        check_capacity(config, memory_mb=1024, timeout_s=900)
    check_capacity(config, memory_mb=1654, timeout_s=900)


def test_capacity_refuses_too_short_a_timeout() -> None:
    config = PipelineConfig.single(load_named("web"))
    with pytest.raises(DeployGuardError, match=r"imgpipe:timeout is 5 s, .*'web'"):
        check_capacity(config, memory_mb=1024, timeout_s=5)


def test_defaults_pass_for_the_shipped_profiles() -> None:
    for name in ("thumbnail", "web"):
        check_capacity(PipelineConfig.single(load_named(name)), memory_mb=1024, timeout_s=60)


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
    monkeypatch.setattr(guards, "LAMBDA_DIRECT_UPLOAD_LIMIT", layer.stat().st_size - 1)
    with pytest.raises(DeployGuardError, match=r"the layer zip .* Lambda accepts in a direct"):
        check_artifacts_fit(layer, function)
