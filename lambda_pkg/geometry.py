"""Sizes and boxes: pure arithmetic on (width, height), no pixels touched.

Every size here is in the displayed orientation (after EXIF orientation).
"""

from __future__ import annotations

import math

from lambda_pkg.profiles import Resize

# Decode JPEG DCT-scaled only to at least this much more than the largest rendition: the
# scaled IDCT is itself a good (box-like) filter, so a small margin keeps quality, and it
# lets 4000 px -> 1600 px decode at 1/2 instead of full size.
DRAFT_GAP = 1.25
# A previous rendition is a source for the next only with this much margin, so the final
# LANCZOS pass has pixels to average (Pillow's thumbnail() uses the same margin).
CASCADE_GAP = 2.0

Size = tuple[int, int]
Box = tuple[float, float, float, float]


def _round(value: float) -> int:
    # Round half up: 1080 * 200 / 1920 = 112.5 must give the seed's 113, not banker's 112.
    return math.floor(value + 0.5)


def _fit_scale(source: Size, resize: Resize) -> float:
    width, height = source
    if resize.mode == "width":
        assert resize.width
        scale = resize.width / width
    elif resize.mode == "height":
        assert resize.height
        scale = resize.height / height
    else:  # fit, pad
        assert resize.width and resize.height
        scale = min(resize.width / width, resize.height / height)
    return 1.0 if scale > 1 and not resize.upscale else scale


def content_size(source: Size, resize: Resize) -> Size:
    """The size of the picture itself: for pad, without the padding."""
    if resize.mode == "cover":
        return target_size(source, resize)
    scale = _fit_scale(source, resize)
    return max(1, _round(source[0] * scale)), max(1, _round(source[1] * scale))


def target_size(source: Size, resize: Resize) -> Size:
    """The rendition's final size for a source of this size (after orientation)."""
    width, height = source
    if resize.mode == "pad":
        assert resize.width and resize.height
        return resize.width, resize.height
    if resize.mode == "cover":
        assert resize.width and resize.height
        target = (resize.width, resize.height)
        if not resize.upscale and (target[0] > width or target[1] > height):
            # Never upscale: keep the requested aspect ratio inside the source.
            scale = min(width / target[0], height / target[1])
            target = (max(1, _round(target[0] * scale)), max(1, _round(target[1] * scale)))
        return target
    return content_size(source, resize)


def scale_of(source: Size, resize: Resize) -> float:
    """How much the full frame is scaled by for this rendition."""
    target = content_size(source, resize)
    if resize.mode == "cover":
        return max(target[0] / source[0], target[1] / source[1])
    return target[0] / source[0]


def need(source: Size, resize: Resize, gap: float) -> Size:
    """How big the full-frame source must stay for this rendition, margin included."""
    scale = scale_of(source, resize) * gap
    return math.ceil(source[0] * scale), math.ceil(source[1] * scale)


def crop_extent(source: Size, target: Size) -> tuple[float, float]:
    """Width and height of the largest region of `source` with the target's aspect ratio."""
    scale = max(target[0] / source[0], target[1] / source[1])
    return target[0] / scale, target[1] / scale


def area(size: Size) -> int:
    return size[0] * size[1]
