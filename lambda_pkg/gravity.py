"""Where a cover crop sits: a lookup table of small functions, one per gravity.

Each takes the full-frame image and the crop's extent (in that image's pixels) and
returns the crop's top-left corner. Fixed gravities are arithmetic; smart ones score a
small preview (never the full image) and slide the crop along the axis it is free on.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageChops, ImageFilter

from lambda_pkg.geometry import Box

PREVIEW = 96  # long side of the preview the smart gravities score; enough to find a subject
STEPS = 24  # candidate positions the entropy gravity tries

Extent = tuple[float, float]
Gravity = Callable[[Image.Image, Extent], tuple[float, float]]


def _fixed(fx: float, fy: float) -> Gravity:
    def place(image: Image.Image, extent: Extent) -> tuple[float, float]:
        return (image.width - extent[0]) * fx, (image.height - extent[1]) * fy

    return place


def _preview(image: Image.Image) -> tuple[Image.Image, float]:
    scale = min(1.0, PREVIEW / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image if size == image.size else image.resize(size, Image.Resampling.BOX)
    return small.convert("RGB"), image.width / small.width


def _best_offset(scores: list[float], window: int) -> int:
    """Start of the window of `window` consecutive scores with the largest sum."""
    best = current = sum(scores[:window])
    start = 0
    for i in range(window, len(scores)):
        current += scores[i] - scores[i - window]
        if current > best:
            best, start = current, i - window + 1
    return start


def _by_profile(score: Image.Image, scale: float, image: Image.Image, extent: Extent):
    """Slide the crop along its free axis over a one-dimensional projection of the score."""
    free_x = extent[0] < image.width - 0.5
    if free_x:
        profile = list(score.resize((score.width, 1), Image.Resampling.BOX).get_flattened_data())
        window = max(1, min(len(profile), round(extent[0] / scale)))
        return min(_best_offset(profile, window) * scale, image.width - extent[0]), 0.0
    profile = list(score.resize((1, score.height), Image.Resampling.BOX).get_flattened_data())
    window = max(1, min(len(profile), round(extent[1] / scale)))
    return 0.0, min(_best_offset(profile, window) * scale, image.height - extent[1])


# Skin tones: the YCbCr box of Chai & Ngan (Cb 77..127, Cr 133..173), which holds for skin
# of every shade because it bounds chroma, not brightness. Crude (wood and sand pass too),
# as is libvips' skin cue; it only weights where the crop slides.
_SKIN_CB = [255 if 77 <= v <= 127 else 0 for v in range(256)]
_SKIN_CR = [255 if 133 <= v <= 173 else 0 for v in range(256)]
_HALF = [v // 2 for v in range(256)]


def skin(image: Image.Image) -> Image.Image:
    """An L mask, 255 where an RGB image's pixel is skin-toned: two lookups, no Python loop."""
    _, cb, cr = image.convert("YCbCr").split()
    return ImageChops.multiply(cb.point(_SKIN_CB), cr.point(_SKIN_CR))


def attention(image: Image.Image, extent: Extent) -> tuple[float, float]:
    """Edges, saturation and skin tones: the cues libvips' `attention` uses."""
    small, scale = _preview(image)
    edges = small.convert("L").filter(ImageFilter.FIND_EDGES)
    saturation = small.convert("HSV").getchannel("S")
    score = ImageChops.add(Image.blend(edges, saturation, 0.4), skin(small).point(_HALF))
    return _by_profile(score, scale, image, extent)


def entropy(image: Image.Image, extent: Extent) -> tuple[float, float]:
    """The window whose histogram has the most information (the busiest region)."""
    small, scale = _preview(image)
    grey = small.convert("L")
    crop_w, crop_h = extent[0] / scale, extent[1] / scale
    free_x = extent[0] < image.width - 0.5
    room = (grey.width - crop_w) if free_x else (grey.height - crop_h)
    best, best_at = -1.0, 0.0
    for step in range(STEPS + 1):
        at = room * step / STEPS
        box = (at, 0, at + crop_w, grey.height) if free_x else (0, at, grey.width, at + crop_h)
        value = grey.crop(tuple(round(v) for v in box)).entropy()
        if value > best + 1e-9:
            best, best_at = value, at
    offset = best_at * scale
    return (offset, 0.0) if free_x else (0.0, offset)


GRAVITIES: dict[str, Gravity] = {
    "center": _fixed(0.5, 0.5),
    "top": _fixed(0.5, 0.0),
    "bottom": _fixed(0.5, 1.0),
    "left": _fixed(0.0, 0.5),
    "right": _fixed(1.0, 0.5),
    "entropy": entropy,
    "attention": attention,
}


def crop_box(image: Image.Image, extent: Extent, gravity: str, area: Box | None = None) -> Box:
    """The crop, inside `area` (the part of `image` that is picture: a DCT-scaled decode
    ends in a fraction of a pixel) or the whole image."""
    x0, y0, x1, y1 = area or (0.0, 0.0, float(image.width), float(image.height))
    if extent[0] >= x1 - x0 - 0.5 and extent[1] >= y1 - y0 - 0.5:
        return (x0, y0, x1, y1)
    left, top = GRAVITIES[gravity](image, extent)
    # The gravity placed the crop in the whole image: the same place, relative to the room
    # it had, in the area's room (exact for fixed gravities; within a pixel for smart ones).
    left = x0 + _within(left, image.width - extent[0], x1 - x0 - extent[0])
    top = y0 + _within(top, image.height - extent[1], y1 - y0 - extent[1])
    return (left, top, left + extent[0], top + extent[1])


def _within(offset: float, room: float, area_room: float) -> float:
    if area_room <= 0 or room <= 0:
        return 0.0
    return min(max(offset * area_room / room, 0.0), area_room)
