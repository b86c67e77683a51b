"""Encode one rendition: pick the concrete format, then save with the rendition's options.

Metadata is decided here and only here: pixels arrive with `info` cleared, so nothing the
input carried (EXIF, XMP, GPS, ICC) reaches an output unless the profile asks for it.
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin

from lambda_pkg.colour import srgb_icc_bytes
from lambda_pkg.profiles import MEDIA_TYPES, Profile, Rendition

CONTENT_TYPES = {**MEDIA_TYPES, "gif": "image/gif"}  # gif: an animated `same` of a GIF
OUTPUT_EXTENSIONS = {"gif": "gif"}  # beyond profiles.EXTENSIONS: animated `same` of a GIF
# `same` keeps the input's family: photos stay JPEG, graphics and alpha stay PNG.
_SAME = {"jpeg": "jpeg", "png": "png", "gif": "png", "webp": "webp", "avif": "avif"}


@dataclass(frozen=True)
class Carried:
    """What the profile lets through from the input: EXIF/XMP (keep_metadata) and ICC."""

    exif: bytes | None = None
    xmp: bytes | None = None
    icc: bytes | None = None


def output_format(fmt: str, input_format: str, has_alpha: bool, animated: bool = False) -> str:
    if fmt != "same":
        return fmt
    if animated and input_format == "gif":
        return "gif"
    if input_format in _SAME:
        return _SAME[input_format]
    return "png" if has_alpha else "jpeg"  # tiff, bmp, heic


def carried(profile: Profile, exif: bytes | None, xmp: bytes | None) -> Carried:
    keep = profile.keep_metadata
    return Carried(
        exif=exif if keep else None,
        xmp=xmp if keep else None,
        icc=srgb_icc_bytes() if profile.icc == "embed" else None,
    )


def _options(fmt: str, rendition: Rendition) -> dict[str, Any]:
    options = rendition.encoder_options(fmt)
    if fmt == "png":
        # Pillow's optimize is zlib level 9 and overrides compress_level.
        if options["optimize"]:
            return {"optimize": True}
        return {"compress_level": options["compress_level"]}
    if fmt == "gif":
        return {"optimize": False}
    return options


def _metadata(fmt: str, mode: str, meta: Carried) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if meta.exif and fmt != "gif":
        params["exif"] = meta.exif
    if meta.xmp and fmt in ("jpeg", "webp", "avif"):
        params["xmp"] = meta.xmp
    elif meta.xmp and fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace"))
        params["pnginfo"] = info
    if meta.icc and mode in ("RGB", "RGBA") and fmt != "gif":
        params["icc_profile"] = meta.icc
    return params


def prepare(image: Image.Image, fmt: str, background: str) -> Image.Image:
    """Make the pixels something the format can store."""
    if fmt == "jpeg" and image.mode == "RGBA":
        base = Image.new("RGB", image.size, background)  # JPEG has no alpha
        base.paste(image, mask=image.getchannel("A"))
        return base
    if fmt == "avif" and image.mode == "L":
        return image.convert("RGB")
    return image


_SAVE_PLUGINS = {"webp": "WebPImagePlugin", "avif": "AvifImagePlugin"}


def saver(fmt: str) -> str:
    """Pillow's format name, its encoder registered. Unregistered, Image.save would import
    every plugin Pillow has; JPEG, PNG and GIF come with Image.preinit()."""
    if fmt in _SAVE_PLUGINS:
        importlib.import_module(f"PIL.{_SAVE_PLUGINS[fmt]}")
    return fmt.upper()


def encode(
    image: Image.Image, fmt: str, rendition: Rendition, meta: Carried, background: str
) -> bytes:
    prepared = prepare(image, fmt, background)
    if prepared is image:
        # Image.save parks its options on the image object (_default_encoderinfo), and
        # renditions of one size share one picture and encode on the pool at the same time:
        # without a copy of their own they read each other's quality and subsampling.
        prepared = image.copy()
    buffer = io.BytesIO()
    params = _options(fmt, rendition) | _metadata(fmt, prepared.mode, meta)
    prepared.save(buffer, saver(fmt), **params)
    return buffer.getvalue()


def encode_animation(
    frames: list[Image.Image],
    durations: list[int],
    loop: int,
    fmt: str,
    rendition: Rendition,
    background: str,
) -> bytes:
    """An animated WebP, GIF, APNG or AVIF; metadata is not carried into animations."""
    frames = [prepare(frame, fmt, background) for frame in frames]
    buffer = io.BytesIO()
    params = _options(fmt, rendition)
    frames[0].save(
        buffer,
        saver(fmt),
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=loop,
        **params,
    )
    return buffer.getvalue()
