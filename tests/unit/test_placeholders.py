"""BlurHash and dominant colour: checked against the reference `blurhash` package."""

from __future__ import annotations

import io

import blurhash as reference
import pytest
from PIL import Image

from lambda_pkg import imaging, placeholders
from lambda_pkg.profiles import Profile, Rendition, Resize
from tests.support import images


def reference_hash(image: Image.Image, x: int, y: int) -> str:
    rows = [[list(image.getpixel((i, j))) for i in range(image.width)] for j in range(image.height)]
    return reference.encode(rows, x, y)


@pytest.mark.parametrize("size", [(24, 14), (14, 24), (24, 24), (24, 1), (1, 1)])
@pytest.mark.parametrize("components", [(4, 3), (3, 4), (1, 1), (9, 9)])
def test_blurhash_matches_the_reference_encoder(size, components):
    image = images.photo(*size) if min(size) > 1 else Image.new("RGB", size, (200, 30, 90))
    assert placeholders.blurhash(image, *components) == reference_hash(image, *components)


def dc_colour(hash_: str) -> tuple[int, int, int]:
    value = 0
    for char in hash_[2:6]:
        value = value * 83 + placeholders._BASE83.index(char)
    return value >> 16, (value >> 8) & 255, value & 255


def test_blurhash_dc_is_the_average_colour():
    image = Image.new("RGB", (24, 18), (30, 120, 220))
    assert dc_colour(placeholders.blurhash(image)) == (30, 120, 220)


def test_dominant_colour_is_the_largest_area_not_the_average():
    image = Image.new("RGB", (24, 24), (250, 10, 10))
    image.paste((10, 10, 250), (0, 0, 8, 24))  # a third blue, two thirds red
    assert placeholders.dominant_color(image) in ("#fa0a0a", "#f90a0a", "#fa0b0b")


def test_transparent_areas_take_the_background():
    image = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    assert placeholders.dominant_color(placeholders.sample(image, "#00ff00")) == "#00ff00"


def test_items_get_placeholders_from_the_smallest_rendition():
    profile = Profile(
        "t",
        tuple(
            Rendition(
                f"w{w}", Resize("width", width=w), "jpeg", "processed/{key}/{rendition}.{ext}"
            )
            for w in (400, 48)
        ),
    )
    decoded, outputs = imaging.process(images.jpeg(800, 600), profile)
    smallest = Image.open(__import__("io").BytesIO(outputs[1].data))
    assert decoded.blurhash.startswith("L") and len(decoded.blurhash) == 28  # 4x3 components
    assert decoded.dominant_color.startswith("#") and len(decoded.dominant_color) == 7
    expected = placeholders.placeholders(smallest.convert("RGB"))
    # from the pre-encode pixels, so only JPEG noise may differ: same DC colour block
    got, want = dc_colour(decoded.blurhash), dc_colour(expected[0])
    assert all(abs(a - b) <= 4 for a, b in zip(got, want, strict=True)), (got, want)


def test_placeholders_are_those_of_the_smallest_renditions_pixels() -> None:
    # GIVEN a picture one third red (left), two thirds blue: whole, it is mostly blue, but a
    # square cover crop held to the left edge is all red
    image = Image.new("RGB", (600, 200), (20, 40, 230))
    image.paste((230, 20, 30), (0, 0, 200, 200))
    key = "processed/{key}/{rendition}.{ext}"
    whole = Rendition("whole", Resize("fit", width=300, height=300), "png", key)
    corner = Rendition("corner", Resize("cover", width=40, height=40, gravity="left"), "png", key)
    profile = Profile("t", (whole, corner))

    decoded, (large, small) = imaging.process(images.encode(image, "PNG"), profile)

    # PNG is lossless: the outputs are exactly the pictures the placeholders could be from.
    small_pixels = Image.open(io.BytesIO(small.data)).convert("RGB")
    large_pixels = Image.open(io.BytesIO(large.data)).convert("RGB")
    assert (small.width, small.height, large.width, large.height) == (40, 40, 300, 100)
    from_small = placeholders.placeholders(small_pixels, profile.background)
    from_large = placeholders.placeholders(large_pixels, profile.background)
    # Premise: the two renditions' placeholders really differ, in both hash and colour.
    assert from_small[0] != from_large[0] and from_small[1] != from_large[1]
    assert (decoded.blurhash, decoded.dominant_color) == from_small
    red, green, blue = dc_colour(decoded.blurhash)
    assert red > 200 and blue < 60, (red, green, blue)
