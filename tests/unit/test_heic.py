"""HEIC specifics: the embedded thumbnail as a decode shortcut, orientation libheif applies."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from imgpipe_samples import exif_with_orientation
from lambda_pkg import imaging
from lambda_pkg.profiles import Profile, Rendition, Resize
from tests.support import images


def widths(*sizes: int) -> Profile:
    return Profile(
        "t",
        tuple(
            Rendition(f"w{w}", Resize("width", width=w), "png", f"processed/{{stem}}-{w}.png")
            for w in sizes
        ),
    )


def full_decode_reference(data: bytes, size: tuple[int, int]) -> Image.Image:
    full = Image.open(io.BytesIO(data))
    full.load()
    return full.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean[0]


@pytest.mark.slow  # HEIC encodes of 800x600 photos: make test runs it
def test_a_big_enough_embedded_thumbnail_is_decoded_instead_of_the_photo():
    data = images.heic(800, 600, thumbnails=[240])
    decoded, (output,) = imaging.process(data, widths(160))
    assert decoded.image.size == (240, 180)  # the thumbnail, not 800x600
    assert decoded.original_size == (800, 600)  # the item still records the photo's size
    result = Image.open(io.BytesIO(output.data))
    assert result.size == (160, 120)
    assert mean_difference(result, full_decode_reference(data, result.size)) < 3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("thumbnails", "sizes"),
    [
        ([240], (160, 500)),  # the largest rendition needs more than the thumbnail
        ([180], (160,)),  # 180 px is not 1.25x the rendition: no margin for the filter
        ([], (160,)),  # none embedded
    ],
)
def test_the_photo_is_decoded_when_no_thumbnail_is_big_enough(thumbnails, sizes):
    data = images.heic(800, 600, thumbnails=thumbnails)
    decoded, outputs = imaging.process(data, widths(*sizes))
    assert decoded.image.size == (800, 600)
    for output in outputs:
        result = Image.open(io.BytesIO(output.data))
        assert mean_difference(result, full_decode_reference(data, result.size)) < 1


def test_orientation_applied_by_libheif_is_recorded_and_not_applied_twice():
    # Stored landscape with EXIF orientation 6: pillow-heif turns that into a HEIF rotation,
    # libheif rotates the pixels and EXIF is reset to 1.
    data = images.heic(160, 120, exif=exif_with_orientation(6))
    decoded, (output,) = imaging.process(data, widths(60))
    assert decoded.orientation == 6
    assert decoded.original_size == (120, 160)
    assert (output.width, output.height) == (60, 80)  # portrait, once
