"""Animated GIF, WebP and APNG kept animated (profile `keep_animation`).

Every frame is decoded, so the frame cap and the pixel budget (frames x pixels against
`max_pixels`) are checked before any frame is. Without `keep_animation` only the first
frame is ever decoded, by the normal path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from lambda_pkg import encoding, transforms
from lambda_pkg.profiles import Profile, Rendition

if TYPE_CHECKING:
    from lambda_pkg.imaging import Decoded

FORMATS = ("webp", "gif", "png")  # outputs that can animate; others get the first frame
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


def render(
    decoded: Decoded, frames: Frames, rendition: Rendition, fmt: str, profile: Profile
) -> tuple[bytes, Image.Image]:
    """Encoded bytes and the first output frame (its size, and the placeholders' source)."""
    resize, original = rendition.resize, decoded.original_size

    def one(frame: Image.Image) -> Image.Image:
        picture = transforms.apply(frame, original, resize, profile.background)
        if rendition.sharpen and picture.width < frame.width:
            picture = transforms.sharpen(picture, rendition.sharpen)
        return picture

    if fmt not in FORMATS:
        first = one(frames.images[0])
        meta = encoding.carried(profile, decoded.exif, decoded.xmp)
        return encoding.encode(first, fmt, rendition, meta, profile.background), first
    pictures = [one(frame) for frame in frames.images]
    data = encoding.encode_animation(
        pictures, list(frames.durations), frames.loop, fmt, rendition, profile.background
    )
    return data, pictures[0]
