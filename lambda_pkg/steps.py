"""The per-picture steps, in order: every rendition's picture, a still or each frame of an
animation, is its source put through all of them. A new pixel step (a watermark) is one
function and one entry in STEPS.

Each step is `fn(image, picture, background) -> Image`, never mutates its input and hands
the image through untouched when the plan gives it nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from lambda_pkg import transforms
from lambda_pkg.planning import Picture

Step = Callable[[Image.Image, Picture, str], Image.Image]


def resize(image: Image.Image, picture: Picture, background: str) -> Image.Image:
    """The rendition's resize rule, to the plan's sizes."""
    return transforms.apply(image, picture.key.resize, picture.size, picture.content, background)


def sharpen(image: Image.Image, picture: Picture, background: str) -> Image.Image:
    """Only when the picture got smaller than its source (the plan's `sharpen` is 0 else)."""
    return transforms.sharpen(image, picture.sharpen)


STEPS: tuple[Step, ...] = (resize, sharpen)


def make(source: Image.Image, picture: Picture, background: str) -> Image.Image:
    image = source
    for step in STEPS:
        image = step(image, picture, background)
    return image
