"""A mixed set of uploads, made once and reused under many keys: sizes, formats, modes,
and a few broken ones, in proportions like a user-facing upload bucket."""

from __future__ import annotations

import functools
import itertools
import random

from imgpipe_samples import alpha_png, encode, exif_with_orientation, photo, sixteen_bit_png

# (label, weight, extension, expected status)
KINDS: tuple[tuple[str, int, str, str], ...] = (
    ("jpeg 640x480", 30, "jpg", "ok"),
    ("jpeg 1600x1200", 25, "jpg", "ok"),
    ("jpeg 1080x1920 exif 6", 8, "jpg", "ok"),
    ("jpeg 4000x3000", 2, "jpg", "ok"),
    ("png 800x600 rgba", 8, "png", "ok"),
    ("png 640x480 16-bit", 3, "png", "ok"),
    ("webp 1200x800", 8, "webp", "ok"),
    ("gif 500x400", 5, "gif", "ok"),
    ("tiff 640x480 cmyk", 3, "tif", "ok"),
    ("jpeg truncated", 4, "jpg", "failed"),
    ("text as jpg", 4, "jpg", "failed"),
)


@functools.cache
def payloads() -> dict[str, bytes]:
    return {
        "jpeg 640x480": encode(photo(640, 480), "JPEG", quality=85),
        "jpeg 1600x1200": encode(photo(1600, 1200), "JPEG", quality=85),
        "jpeg 1080x1920 exif 6": encode(
            photo(1920, 1080), "JPEG", quality=85, exif=exif_with_orientation(6)
        ),
        "jpeg 4000x3000": encode(photo(4000, 3000), "JPEG", quality=85),
        "png 800x600 rgba": alpha_png(800, 600),
        "png 640x480 16-bit": sixteen_bit_png(640, 480),
        "webp 1200x800": encode(photo(1200, 800), "WEBP", quality=80),
        "gif 500x400": encode(photo(500, 400).convert("P"), "GIF"),
        "tiff 640x480 cmyk": encode(photo(640, 480, "CMYK"), "TIFF"),
        "jpeg truncated": encode(photo(1200, 900), "JPEG", quality=85)[:3000],
        "text as jpg": b"not an image at all\n" * 50,
    }


def mixed(count: int, prefix: str, seed: int = 1) -> list[tuple[str, str, bytes, str]]:
    """`count` uploads as (key, kind, bytes, expected status), shuffled with a fixed seed.
    Every kind appears at least once; keys are unique (the thumbnail profile flattens
    folders, so the names themselves are unique)."""
    rng = random.Random(seed)
    labels = [k[0] for k in KINDS]
    weights = [k[1] for k in KINDS]
    chosen = labels[: min(count, len(labels))] + rng.choices(
        labels, weights, k=max(0, count - len(labels))
    )
    rng.shuffle(chosen)
    meta = {k[0]: k for k in KINDS}
    data = payloads()
    numbers = itertools.count()
    return [
        (
            f"{prefix}/{next(numbers):05d} {label.replace(' ', '-')}.{meta[label][2]}",
            label,
            data[label],
            meta[label][3],
        )
        for label in chosen
    ]
