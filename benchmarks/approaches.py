"""What is timed: each approach takes the input's bytes and returns its encoded outputs, in
the profile's rendition order (the floor returns nothing: it only decodes).

Every peer is set up at its best: pyvips decodes with shrink-on-load, and for a profile of
several renditions it is timed two ways (one thumbnail per size, or one decode to the
largest size with the smaller ones derived from it in memory); the faster counts.
The pyvips encoders get the profile's own quality and effort settings, read from the
loaded profile, so both sides encode the same request.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from typing import Any

Approach = Callable[[bytes], list[bytes]]
THUMB_WIDTH = 200  # the seed's width; the thumbnail profile's only rendition
# vips has no "height unbounded": a height no image reaches makes width the only bound.
UNBOUNDED = 10_000_000


@cache
def profile(name: str) -> Any:
    from lambda_pkg.profiles import load_named

    return load_named(name)


def seed(data: bytes) -> list[bytes]:
    """The original pipeline: open, LANCZOS from the full decode to 200 px wide, JPEG q85."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    width, height = image.size
    size = (THUMB_WIDTH, max(1, int(height * THUMB_WIDTH / width + 0.5)))
    resized = image.resize(size, Image.Resampling.LANCZOS).convert("RGB")
    out = io.BytesIO()
    resized.save(out, "JPEG", quality=85)
    return [out.getvalue()]


def floor(data: bytes) -> list[bytes]:
    """A bare decode, the least any approach can do: JPEG DCT-scaled to 1/8, else in full."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("RGB", (image.width // 8, image.height // 8))
    image.load()
    return []


def floor_at_quality(data: bytes) -> list[bytes]:
    """A bare decode at the DCT scale the thumbnail needs for full quality (what `thumbnail`
    itself decodes at: 1/4 for 3 MP, 1/8 from 12 MP): the floor at equal quality."""
    from PIL import Image

    from lambda_pkg import decoding, planning

    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        need = planning.measure(image.size, profile("thumbnail")).draft
        image.draft("RGB", decoding.jpeg_draft_request(image.size, need))
    image.load()
    return []


def ours_eighth(data: bytes) -> list[bytes]:
    """`thumbnail` made to decode every JPEG at 1/8 (a 1.25x margin over the rendition, the
    rule before issue 14): how fast and how good the 1/8 floor's picture is."""
    from unittest import mock

    from lambda_pkg import geometry, imaging

    with mock.patch.object(geometry, "DRAFT_GAP", 1.25):
        return [output.data for output in imaging.process(data, profile("thumbnail"))[1]]


def ours(name: str) -> Approach:
    """This project: lambda_pkg.imaging.process with profiles/<name>.yaml, as deployed."""
    from lambda_pkg import imaging

    loaded = profile(name)
    return lambda data: [output.data for output in imaging.process(data, loaded)[1]]


def deliveries(name: str) -> list[tuple[Any, str]]:
    """Each object profiles/<name>.yaml writes, as (rendition, format), in the handler's
    order: a rendition's formats in its order."""
    return [(r, fmt) for r in profile(name).renditions for fmt in r.formats]


def _save(image: Any, rendition: Any, fmt: str) -> bytes:
    """The peer's encode with the options ours gets for that format (a rendition in several
    formats may give each its own quality)."""
    options = rendition.encoder_options(fmt)
    if fmt == "webp":
        return image.webpsave_buffer(
            Q=options["quality"], effort=options["method"], lossless=options["lossless"]
        )
    subsample = {"4:2:0": "on", "4:4:4": "off"}.get(options["subsampling"], "auto")
    return image.jpegsave_buffer(
        Q=options["quality"],
        optimize_coding=options["optimize"],
        interlace=options["progressive"],
        subsample_mode=subsample,
    )


def vips(data: bytes) -> list[bytes]:
    """pyvips thumbnail (shrink-on-load) to the thumbnail profile's rendition."""
    import pyvips

    (rendition,) = profile("thumbnail").renditions
    picture = pyvips.Image.thumbnail_buffer(data, rendition.resize.width)
    return [_save(picture, rendition, rendition.format)]


def _sizes(name: str) -> list[tuple[str, int, int | None]]:
    """The profile's distinct (mode, width, height), largest first."""
    distinct = {(r.resize.mode, r.resize.width, r.resize.height) for r in profile(name).renditions}
    return sorted(distinct, key=lambda size: -size[1])


def _save_all(name: str, pictures: dict[tuple[str, int, int | None], Any]) -> list[bytes]:
    return [
        _save(pictures[(r.resize.mode, r.resize.width, r.resize.height)], r, fmt)
        for r, fmt in deliveries(name)
    ]


def vips_each(name: str) -> Approach:
    """One pyvips thumbnail per distinct size, each from the bytes (shrink-on-load each
    time), kept in memory and saved in every format that size is wanted in."""
    import pyvips

    def run(data: bytes) -> list[bytes]:
        pictures = {}
        for mode, width, height in _sizes(name):
            if mode == "cover":
                image = pyvips.Image.thumbnail_buffer(data, width, height=height, crop="centre")
            else:
                image = pyvips.Image.thumbnail_buffer(data, width, height=UNBOUNDED)
            # In memory: otherwise every save would run the decode and resize again.
            pictures[(mode, width, height)] = image.copy_memory()
        return _save_all(name, pictures)

    return run


def vips_once(name: str) -> Approach:
    """One pyvips decode (shrink-on-load) to the largest size; each smaller size derived in
    memory from the previous one (a cover crop with crop="centre"), then saved as wanted."""
    import pyvips

    def run(data: bytes) -> list[bytes]:
        sizes = _sizes(name)
        _, width, _ = sizes[0]
        current = pyvips.Image.thumbnail_buffer(data, width, height=UNBOUNDED).copy_memory()
        header = pyvips.Image.new_from_buffer(data, "")  # reads the header only
        aspect = header.height / header.width
        pictures = {}
        for mode, width, height in sizes:
            if mode == "cover":
                picture = current.thumbnail_image(width, height=height, crop="centre")
            elif width == current.width:
                picture = current
            else:
                # lanczos3 at the original's exact scale on each side: thumbnail_image
                # rounds each step's height, and the rounding adds up (1067 / 2 -> 534 rows
                # where 4000 x 800 / 6000 = 533.3).
                rows = width * aspect
                picture = current.reduce(current.width / width, current.height / rows)
            pictures[(mode, width, height)] = picture.copy_memory()
            if mode != "cover":
                current = pictures[(mode, width, height)]  # the next size starts from here
        return _save_all(name, pictures)

    return run


FACTORIES: dict[str, Callable[[], Approach]] = {
    "seed": lambda: seed,
    "floor": lambda: floor,
    "floor-q": lambda: floor_at_quality,
    "thumb-1/8": lambda: ours_eighth,
    "vips": lambda: vips,
    "thumbnail": lambda: ours("thumbnail"),
    "web": lambda: ours("web"),
    "vips-web-each": lambda: vips_each("web"),
    "vips-web-once": lambda: vips_once("web"),
}
# Which profile each approach's outputs answer (quality is scored per rendition of it).
PROFILE_OF = {
    "seed": "thumbnail",
    "vips": "thumbnail",
    "thumbnail": "thumbnail",
    "thumb-1/8": "thumbnail",
    "web": "web",
    "vips-web-each": "web",
    "vips-web-once": "web",
}
