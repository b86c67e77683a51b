"""Sizes and boxes: pure arithmetic on (width, height), no pixels touched.

Every size here is in the displayed orientation (after EXIF orientation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lambda_pkg.profiles import Resize

# Decode JPEG DCT-scaled only to at least twice the largest rendition, as libvips does: the
# scaled IDCT filters per 8x8 block and aliases, and only a LANCZOS pass of at least 2x after
# it gives back a full decode's quality. Measured on photo mosaics (`make bench`), q82-85
# outputs against a full-decode LANCZOS reference: a 1.25x margin lost 0.2-0.6 dB (4000 px
# -> 1600 px from 1/2 scale, 2000 px -> 200 px from 1/8); 2.5x lost nothing.
DRAFT_GAP = 2.0
# An embedded thumbnail (HEIC) serves renditions up to 1/1.25 of its size: it is a whole
# picture the camera downscaled, so the final LANCZOS pass needs only a small margin (an
# iPhone's 320x240 serves the 200 px `thumbnail`).
EMBEDDED_THUMBNAIL_GAP = 1.25
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


def _scale(source: Size, content: Size, mode: str) -> float:
    if mode == "cover":
        return max(content[0] / source[0], content[1] / source[1])
    return content[0] / source[0]


def scale_of(source: Size, resize: Resize) -> float:
    """How much the full frame is scaled by for this rendition."""
    return _scale(source, content_size(source, resize), resize.mode)


def _need(source: Size, scale: float, gap: float) -> Size:
    scale *= gap
    return math.ceil(source[0] * scale), math.ceil(source[1] * scale)


def need(source: Size, resize: Resize, gap: float) -> Size:
    """How big the full-frame source must stay for this rendition, margin included."""
    return _need(source, scale_of(source, resize), gap)


@dataclass(frozen=True, slots=True)
class Sizing:
    """One rendition's sizes for one source, worked out once (see `sizing`)."""

    source: Size
    target: Size  # the final size
    content: Size  # the resized picture inside `target`: pad's letterbox leaves a margin
    scale: float  # of the full frame

    def need(self, gap: float) -> Size:
        """As `need`: how big the full-frame source must stay, margin included."""
        return _need(self.source, self.scale, gap)


def sizing(source: Size, resize: Resize) -> Sizing:
    """`target_size`, `content_size` and `scale_of` at once, each worked out once."""
    content = content_size(source, resize)
    # Only pad's final size differs from its content; cover's content is its target.
    target = target_size(source, resize) if resize.mode == "pad" else content
    return Sizing(source, target, content, _scale(source, content, resize.mode))


def crop_extent(source: tuple[float, float], target: Size) -> tuple[float, float]:
    """Width and height of the largest region of `source` with the target's aspect ratio."""
    scale = max(target[0] / source[0], target[1] / source[1])
    return target[0] / scale, target[1] / scale


# EXIF orientation -> where a box of the stored picture lands once the picture is upright:
# each maps (x0, y0, x1, y1, width, height) of the stored picture to the upright box.
_ORIENT_BOX = {
    2: lambda x0, y0, x1, y1, w, h: (w - x1, y0, w - x0, y1),
    3: lambda x0, y0, x1, y1, w, h: (w - x1, h - y1, w - x0, h - y0),
    4: lambda x0, y0, x1, y1, w, h: (x0, h - y1, x1, h - y0),
    5: lambda x0, y0, x1, y1, w, h: (y0, x0, y1, x1),
    6: lambda x0, y0, x1, y1, w, h: (h - y1, x0, h - y0, x1),
    7: lambda x0, y0, x1, y1, w, h: (h - y1, w - x1, h - y0, w - x0),
    8: lambda x0, y0, x1, y1, w, h: (y0, w - x1, y1, w - x0),
}


def upright_box(box: Box, stored: Size, orientation: int) -> Box:
    """`box`, in the stored picture's pixels, in the upright picture's pixels."""
    turn = _ORIENT_BOX.get(orientation)
    return box if turn is None else turn(*box, *stored)


def area(size: Size) -> int:
    return size[0] * size[1]
