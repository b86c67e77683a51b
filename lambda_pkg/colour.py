"""Colour: bring any decoded picture to 8-bit L, RGB or RGBA in sRGB.

ICC conversion uses Pillow's ImageCms (LittleCMS); transforms are cached per embedded
profile, because a batch of photos from one camera or phone shares one profile.
"""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:  # LittleCMS loads on the first picture that needs it, not at cold start
    from PIL import ImageCms

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# Modes LittleCMS converts here; L keeps its grey values (a grey ICC is a gamma tweak at most).
_CMS_INPUT_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}


def has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)


@functools.cache
def srgb_profile() -> ImageCms.ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc_bytes() -> bytes:
    return srgb_profile().tobytes()


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform | None:
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space.strip() != {"CMYK": "CMYK"}.get(in_mode, "RGB"):
            return None  # a profile for another colour space than the pixels': ignore it
        return ImageCms.buildTransform(
            source, srgb_profile(), in_mode, out_mode, ImageCms.Intent.PERCEPTUAL
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # a broken embedded profile must not lose the picture


def to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert pixels described by `icc` to sRGB; without a usable profile, leave them be."""
    out_mode = _CMS_INPUT_MODES.get(image.mode)
    if not icc or out_mode is None:
        return image
    transform = _transform(icc, image.mode, out_mode)
    if transform is None:
        return image
    return transform.apply(image)


def normalise_mode(image: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, RGB or RGBA, which every output format can take."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L"):
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit samples span 0..65535: scale to 8 bits, never clip.
        return image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if mode == "F":
        return image.point(lambda v: v * 255).convert("L")
    if mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, P without transparency
