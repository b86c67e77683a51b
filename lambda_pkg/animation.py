"""Animated GIF, WebP and APNG kept animated (profile `keep_animation`), in WebP, GIF, PNG
(APNG) and AVIF outputs.

Every frame is decoded, so the frame cap and the pixel budget (frames x pixels against
`max_pixels`) are checked before any frame is. Without `keep_animation` only the first
frame is ever decoded, by the normal path. Rendering goes through the same per-picture
steps as a still (steps.py), frame by frame (imaging.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from lambda_pkg.profiles import Profile

# Outputs that can animate; others (JPEG) get the first frame. AVIF too: a multi-format
# rendition's AVIF is what browsers are served first, so a still one would lose the motion
# the WebP beside it keeps.
FORMATS = ("webp", "gif", "png", "avif")
DEFAULT_DURATION = 100  # ms, when a frame does not say


class TooManyPixels(Exception):
    pass


@dataclass(frozen=True)
class Frames:
    images: tuple[Image.Image, ...]  # upright, sRGB, RGBA/RGB/L, full size
    durations: tuple[int, ...]
    loop: int


def frames_to_keep(frame_count: int, size: tuple[int, int], profile: Profile) -> int:
    """How many frames `read` will decode; raises TooManyPixels before any frame is decoded."""
    count = min(frame_count, profile.max_frames)
    total = count * size[0] * size[1]
    if total > profile.max_pixels:
        raise TooManyPixels(
            f"animation is {count} frames of {size[0]}x{size[1]} = {total:,} pixels, over the "
            f"profile's max_pixels of {profile.max_pixels:,} (max_frames {profile.max_frames})"
        )
    return count


def read(image: Image.Image, count: int, prepare: Callable[[Image.Image], Image.Image]) -> Frames:
    """The first `count` frames, decoded and prepared. A frame that fails to decode raises:
    it must reject the image, never shorten the animation or leave a frame half drawn."""
    pictures, durations = [], []
    for index in range(count):
        image.seek(index)
        frame = image.convert("RGBA")  # loads the frame; only then is its duration in info
        durations.append(int(image.info.get("duration") or DEFAULT_DURATION))
        pictures.append(prepare(frame))
    return Frames(tuple(pictures), tuple(durations), int(image.info.get("loop", 0)))
