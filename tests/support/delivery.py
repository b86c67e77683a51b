"""Multi-format profiles for the CDN's tests: the function, the program and the local CDN."""

from __future__ import annotations

from typing import Any

from lambda_pkg.profiles import PipelineConfig, profile_from_dict

CANONICAL = "processed/{key}/{rendition}.{ext}"


def rendition(name: str, formats: str | list[str], key: str = CANONICAL, width: int = 320) -> dict:
    return {
        "name": name,
        "resize": {"mode": "width", "width": width},
        "format": formats,
        "key": key,
    }


def config(*renditions: dict[str, Any], name: str = "site") -> PipelineConfig:
    """A one-profile PipelineConfig, validated as a YAML profile would be."""
    profile = profile_from_dict({"name": name, "renditions": list(renditions)}, "test")
    return PipelineConfig.single(profile)


def site() -> PipelineConfig:
    """A 3-format rendition, a 2-format one keyed by {hash}, and a single-format one."""
    return config(
        rendition("w800", ["avif", "webp", "jpeg"], width=800),
        rendition("card", ["webp", "png"], "processed/cards/{dir}{name}-{hash}.{ext}"),
        rendition("thumb", "jpeg", width=200),
    )
