"""The per-picture steps, in order: every rendition's picture, a still or each frame of an
animation, is its source put through all of them. A new pixel step (a watermark) is one
function and one entry in STEPS.

Each step is `fn(image, picture, background, area) -> Image`, never mutates its input and
hands the image through untouched when the plan gives it nothing to do. `area` is the part
of the image that is picture (a DCT-scaled decode ends in a fraction of a pixel), None for
the whole image; a step that changes the image's geometry passes None on.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from lambda_pkg import transforms
from lambda_pkg.geometry import Box
from lambda_pkg.planning import Picture

Step = Callable[[Image.Image, Picture, str, Box | None], Image.Image]


def resize(image: Image.Image, picture: Picture, background: str, area: Box | None) -> Image.Image:
    """The rendition's resize rule, to the plan's sizes."""
    resize = picture.key.resize
    return transforms.apply(image, resize, picture.size, picture.content, background, area)


def sharpen(image: Image.Image, picture: Picture, background: str, area: Box | None) -> Image.Image:
    """Only when the picture got smaller than its source (the plan's `sharpen` is 0 else)."""
    return transforms.sharpen(image, picture.sharpen)


STEPS: tuple[Step, ...] = (resize, sharpen)


def make(
    source: Image.Image, picture: Picture, background: str, area: Box | None = None
) -> Image.Image:
    image = source
    for step in STEPS:
        resized = step(image, picture, background, area)
        if resized is not image:
            area = None  # a new image: all of it is picture
        image = resized
    return image
