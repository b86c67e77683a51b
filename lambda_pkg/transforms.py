"""Resize rules as pure functions `fn(image, ...) -> Image` that never mutate their input.

`image` is always a full-frame picture (a decode or an earlier fit rendition); the sizes
come from the plan, worked out from the original's size, so every rendition is exact
whichever intermediate it starts from.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from PIL import Image, ImageFilter

from lambda_pkg import geometry, settings
from lambda_pkg.gravity import crop_box
from lambda_pkg.profiles import Resize

# Pillow first reduces by an integer factor (box filter, fast) down to reducing_gap x the
# target, then applies the kernel for the rest (never for `nearest`, which Pillow keeps
# pure). The same 2x as a JPEG draft leaves (geometry.DRAFT_GAP), for the same reason: a
# LANCZOS pass of 2x or more after a box filter loses nothing a q80-85 output shows (48 MP
# thumbnail: 0.04 dB below 3.0, still above libvips) and from 5x it halves the resize.
REDUCING_GAP = geometry.DRAFT_GAP
KERNELS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


# Outputs at least this tall are resized as two horizontal strips on two threads (Pillow's
# resize releases the GIL). Each strip's filter reads source rows across the seam, so the
# result is the single-pass result.
STRIP_MIN_ROWS = 64
_strip_pool: ThreadPoolExecutor | None = None


def _forget_strip_pool() -> None:
    """In a forked child (the render process): the pool's thread stayed in the parent."""
    global _strip_pool
    _strip_pool = None


os.register_at_fork(after_in_child=_forget_strip_pool)


def _resize(
    image: Image.Image, target: geometry.Size, box: geometry.Box, kernel: str
) -> Image.Image:
    resample = KERNELS[kernel]
    if target[1] < STRIP_MIN_ROWS or settings.usable_cores() < 2:
        return image.resize(target, resample, box=box, reducing_gap=REDUCING_GAP)
    global _strip_pool
    if _strip_pool is None:
        _strip_pool = ThreadPoolExecutor(max_workers=1)
    split = target[1] // 2
    row_scale = (box[3] - box[1]) / target[1]
    seam = box[1] + split * row_scale
    top = _strip_pool.submit(
        image.resize, (target[0], split), resample, (box[0], box[1], box[2], seam), REDUCING_GAP
    )
    bottom = image.resize(
        (target[0], target[1] - split),
        resample,
        box=(box[0], seam, box[2], box[3]),
        reducing_gap=REDUCING_GAP,
    )
    result = Image.new(bottom.mode, target)
    result.paste(top.result(), (0, 0))
    result.paste(bottom, (0, split))
    return result


def _whole(image: Image.Image) -> geometry.Box:
    return (0.0, 0.0, float(image.width), float(image.height))


def fit(
    image: Image.Image,
    target: geometry.Size,
    kernel: str = "lanczos",
    area: geometry.Box | None = None,
) -> Image.Image:
    """`area`: the part of `image` that is picture (a DCT-scaled decode's last row and
    column hold a fraction of a pixel: 1500 / 8 = 187.5 rows); the whole image if None."""
    if image.size == target and area is None:
        return image
    return _resize(image, target, area or _whole(image), kernel)


def cover(
    image: Image.Image,
    target: geometry.Size,
    gravity: str,
    kernel: str = "lanczos",
    area: geometry.Box | None = None,
) -> Image.Image:
    frame = area or _whole(image)
    extent = geometry.crop_extent((frame[2] - frame[0], frame[3] - frame[1]), target)
    box = crop_box(image, extent, gravity, frame)
    if image.size == target and box == _whole(image):
        return image
    return _resize(image, target, box, kernel)


def pad(
    image: Image.Image,
    content: geometry.Size,
    box: geometry.Size,
    background: str,
    kernel: str = "lanczos",
    area: geometry.Box | None = None,
) -> Image.Image:
    """Fit into `content`, then centre on a `box`-sized canvas of the background colour."""
    inner = fit(image, content, kernel, area)
    if inner.size == box:
        return inner
    canvas = Image.new(inner.mode if inner.mode != "L" else "RGB", box, background)
    if canvas.mode == "RGBA":
        canvas.putalpha(255)  # the padding is opaque colour, as asked
    offset = ((box[0] - inner.width) // 2, (box[1] - inner.height) // 2)
    canvas.paste(inner, offset, inner if inner.mode == "RGBA" else None)
    return canvas


def sharpen(image: Image.Image, percent: int) -> Image.Image:
    """A light unsharp mask that restores the crispness a downscale's low-pass takes away."""
    if percent <= 0:
        return image
    return image.filter(ImageFilter.UnsharpMask(radius=0.8, percent=percent, threshold=2))


def apply(
    image: Image.Image,
    resize: Resize,
    target: geometry.Size,
    content: geometry.Size,
    background: str,
    area: geometry.Box | None = None,
) -> Image.Image:
    """One resize rule from a full-frame image, to the sizes the plan worked out from the
    full-resolution size (geometry.sizing): `content` is pad's picture inside `target`;
    `area` the part of the image that is picture (see `fit`)."""
    if resize.mode == "cover":
        return cover(image, target, resize.gravity, resize.kernel, area)
    if resize.mode == "pad":
        bg = resize.background or background
        return pad(image, content, target, bg, resize.kernel, area)
    return fit(image, target, resize.kernel, area)
