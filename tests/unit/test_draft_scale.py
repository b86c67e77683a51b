"""The DCT-scaled JPEG decode: which scale, which part of it is picture, and the cores the
render may use. Quality is the point: a decode too small for its renditions, or a resize
that stretches a fraction of a pixel, costs detail no later step gives back."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image, ImageChops, ImageStat

from lambda_pkg import decoding, geometry, imaging, settings, transforms
from lambda_pkg.profiles import Profile, Rendition, Resize
from tests.support import images

KEY = "processed/{key}/{rendition}.{ext}"


def width_profile(width: int) -> Profile:
    return Profile("t", (Rendition("w", Resize("width", width=width), "png", KEY),))


@pytest.mark.parametrize(
    ("stored", "need", "scale"),
    [
        ((2000, 1500), (250, 188), 8),  # 1500 / 8 = 187.5: libjpeg gives 188 rows
        ((2000, 1500), (251, 188), 4),
        ((2000, 1500), (400, 300), 4),
        ((4000, 3000), (400, 300), 8),
        ((3199, 2399), (400, 300), 8),  # ceil(3199 / 8) = 400
        ((3199, 2399), (401, 300), 4),
        ((1000, 750), (1000, 750), 1),
        ((1000, 750), (2000, 1500), 1),  # an upscale: full size
    ],
)
def test_the_draft_request_makes_pillow_pick_the_smallest_covering_scale(
    stored: tuple[int, int], need: tuple[int, int], scale: int
) -> None:
    data = images.jpeg(*stored)
    image = Image.open(io.BytesIO(data))

    image.draft("RGB", decoding.jpeg_draft_request(stored, need))

    assert image.size == (math.ceil(stored[0] / scale), math.ceil(stored[1] / scale))
    assert image.width >= need[0] or scale == 1


def test_renditions_keep_twice_their_size_in_the_decode() -> None:
    # 2000x1500 -> 200 px: 1/8 would leave 250 px (1.25x), 1/4 leaves 500 (2.5x).
    decoded = imaging.decode(images.jpeg(2000, 1500), width_profile(200))
    assert decoded.image.size == (500, 375)
    # 4000x3000 -> 200 px: 1/8 leaves 500 px, 2.5x.
    decoded = imaging.decode(images.jpeg(4000, 3000), width_profile(200))
    assert decoded.image.size == (500, 375)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_partial_last_block_is_outside_the_area_in_every_orientation(orientation: int) -> None:
    # Stored 2000x1500 at 1/8: 250x187.5 of picture in a 250x188 image; the half row is
    # where the stored picture's bottom edge ends up once it is upright. 90 px wide needs
    # 180 px of the upright picture's width, which 1/8 has either way up.
    data = images.jpeg(2000, 1500, orientation=orientation)
    decoded = imaging.decode(data, width_profile(90))

    stored_area = (0.0, 0.0, 250.0, 187.5)
    expected = geometry.upright_box(stored_area, (250, 188), orientation)
    assert decoded.area == expected
    x0, y0, x1, y1 = expected
    assert (x1 - x0, y1 - y0) == ((187.5, 250.0) if orientation >= 5 else (250.0, 187.5))


def test_a_whole_decode_has_no_area() -> None:
    assert imaging.decode(images.jpeg(2048, 1536), width_profile(100)).area is None
    assert imaging.decode(images.png(300, 200), width_profile(100)).area is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_box_lands_where_pillow_puts_the_pixels(orientation: int) -> None:
    stored = (7, 5)
    box = (1, 0, 4, 2)  # an asymmetric patch, so every flip and turn shows
    image = Image.new("L", stored)
    image.paste(255, box)
    method = decoding._UPRIGHT.get(orientation)
    upright = image.transpose(method) if method is not None else image

    assert upright.getbbox() == geometry.upright_box(box, stored, orientation)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(v * v for v in ImageStat.Stat(diff.convert("L")).rms) or 1e-9
    return 10 * math.log10(255**2 / mse)


def test_the_area_keeps_a_fractional_decode_aligned_with_the_full_decode() -> None:
    data = images.jpeg(2000, 1500)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    reference = full.resize((200, 150), Image.Resampling.LANCZOS)
    image = Image.open(io.BytesIO(data))
    _, box = image.draft("RGB", (250, 187))
    assert image.size == (250, 188) and box == (0, 0, 250, 187.5)

    aligned = transforms.fit(image.convert("RGB"), (200, 150), area=box)
    stretched = transforms.fit(image.convert("RGB"), (200, 150))

    # Stretching 188 rows over 187.5 moves the bottom rows by up to 0.4 output pixels.
    assert _psnr(aligned, reference) > _psnr(stretched, reference) + 3


def test_cores_follow_the_lambda_memory_share() -> None:
    affinity = len(__import__("os").sched_getaffinity(0))
    assert settings.cores_from({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1536"}) == 1
    assert settings.cores_from({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}) == 1
    assert settings.cores_from({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3538"}) == min(2, affinity)
    assert settings.cores_from({}) <= affinity


def test_one_core_encodes_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "usable_cores", lambda: 1)
    monkeypatch.setattr(imaging, "_executor", lambda: pytest.fail("a pool on one core"))
    profile = Profile(
        "t",
        tuple(Rendition(f"w{w}", Resize("width", width=w), "jpeg", KEY) for w in (1200, 600, 100)),
    )
    _, outputs = imaging.process(images.jpeg(2400, 1800), profile)
    assert [o.width for o in outputs] == [1200, 600, 100]


def test_a_junk_memory_size_does_not_stop_a_render() -> None:
    # Settings.from_env refuses it for the handler; imaging used on its own must not fail
    # part-way through an image over how many threads to use.
    for junk in ("junk", "0", "1.5e3"):
        assert settings.cores_from({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": junk}) >= 1
