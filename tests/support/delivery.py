"""Multi-format profiles for the CDN's tests: the function, the program and the local CDN."""

from __future__ import annotations

from typing import Any

from lambda_pkg.profiles import PipelineConfig, profile_from_dict

CANONICAL = "processed/{key}/{rendition}.{ext}"

# The Accept headers browsers send for an image (an <img>), as MDN's "List of default
# Accept values" records them (developer.mozilla.org/en-US/docs/Web/HTTP/Guides/
# Content_negotiation/List_of_default_Accept_values, "Values for an image"), checked against
# request headers captured in public code (per-engine tables of Chromium, WebKit and Gecko;
# Safari 17/18 and Firefox 128+ request logs).
# Chrome, and Edge and Opera with it (Chromium).
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
# Firefox 128 and later.
FIREFOX = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
# Firefox 92 to 127.
FIREFOX_92 = "image/avif,image/webp,*/*"
# Safari 17 and later (macOS and iOS): WebP listed before AVIF, both q=1.
SAFARI = (
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
    "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
)
# curl's default (and wget's): anything.
CURL = "*/*"


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
