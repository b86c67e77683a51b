"""Decode once, DCT-scaled to the largest need, then cascade: checked by watching Pillow.

Output sizes alone cannot show these: a wrong draft scale, a second decode, a lost cascade
or a needless full-size copy all still give correctly sized renditions, only slower or
blurrier. So the tests count opens and decodes, record which picture each rendition is
resized from, and compare against a full-resolution reference on a high-detail image.
"""

from __future__ import annotations

import functools
import io
import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat

from lambda_pkg import formats, geometry, imaging, transforms
from lambda_pkg.profiles import Profile, Rendition, Resize
from tests.support import images

KEY = "processed/{key}/{rendition}.{ext}"
STORED = (4000, 3000)
WIDTHS = (1000, 500, 100)
Size = tuple[int, int]


def width_rendition(width: int, kernel: str = "lanczos") -> Rendition:
    # JPEG outputs: encoding is not under test and PNG would dominate the run time.
    return Rendition(f"w{width}-{kernel}", Resize("width", width=width, kernel=kernel), "jpeg", KEY)


def profile_of(*renditions: Rendition) -> Profile:
    return Profile(name="t", renditions=renditions)


def libjpeg_scaled(stored: Size, need: Size) -> Size:
    """The size a JPEG decodes at after draft(need): the largest of 1/1, 1/2, 1/4, 1/8 that
    keeps both sides at least `need` (Pillow's JpegImageFile.draft rule)."""
    fits = min(stored[0] // need[0], stored[1] // need[1])
    scale = next(s for s in (8, 4, 2, 1) if fits >= s)
    return math.ceil(stored[0] / scale), math.ceil(stored[1] / scale)


def draft_need(target: Size) -> Size:
    return math.ceil(target[0] * geometry.DRAFT_GAP), math.ceil(target[1] * geometry.DRAFT_GAP)


@functools.cache
def detailed_jpeg() -> bytes:
    """4000x3000 grey noise in 4 px blocks: detail that survives a 2.5x shrink but not an 8x
    DCT-scaled decode, so a wrong draft scale shows in the pixels (gradients would hide it).
    Grey, because chroma subsampling alone moves colour noise a lot between decode scales."""
    rng = random.Random(20240601)
    cells = (STORED[0] // 4, STORED[1] // 4)
    noise = Image.frombytes("L", cells, rng.randbytes(cells[0] * cells[1]))
    big = noise.resize(STORED, Image.Resampling.NEAREST).convert("RGB")
    return images.encode(big, "JPEG", quality=90)


@functools.cache
def photo_jpeg(orientation: int | None = None) -> bytes:
    return images.jpeg(*STORED, orientation=orientation)


class Resizes:
    """Records every transforms.apply call: the source size, the rule, and the result."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[Size, Resize, Image.Image]] = []
        real = transforms.apply

        def apply(
            image: Image.Image,
            resize: Resize,
            target: Size,
            content: Size,
            background: str,
            area: geometry.Box | None = None,
        ) -> Image.Image:
            result = real(image, resize, target, content, background, area)
            self.calls.append((image.size, resize, result))
            return result

        monkeypatch.setattr(transforms, "apply", apply)

    def source_of(self, resize: Resize) -> Size:
        (size,) = [source for source, rule, _ in self.calls if rule == resize]
        return size

    def result_of(self, resize: Resize) -> Image.Image:
        (result,) = [picture for _, rule, picture in self.calls if rule == resize]
        return result


@pytest.fixture
def resizes(monkeypatch: pytest.MonkeyPatch) -> Resizes:
    return Resizes(monkeypatch)


def test_jpeg_is_drafted_for_the_largest_rendition_not_the_smallest() -> None:
    profile = profile_of(*(width_rendition(w) for w in WIDTHS))
    largest = geometry.target_size(STORED, Resize("width", width=max(WIDTHS)))
    expected = libjpeg_scaled(STORED, draft_need(largest))
    # Premise: the largest rendition still allows a reduced decode, and the smallest alone
    # would allow a smaller one, so the two rules give different sizes.
    smallest = geometry.target_size(STORED, Resize("width", width=min(WIDTHS)))
    assert expected[0] < STORED[0]
    assert libjpeg_scaled(STORED, draft_need(smallest)) != expected

    decoded = imaging.decode(photo_jpeg(), profile)

    assert decoded.image.size == expected == (2000, 1500)
    assert decoded.original_size == STORED


@pytest.mark.slow
def test_drafted_decode_keeps_the_largest_rendition_sharp(resizes: Resizes) -> None:
    data = detailed_jpeg()
    profile = profile_of(*(width_rendition(w) for w in WIDTHS))

    imaging.process(data, profile)

    got = resizes.result_of(profile.renditions[0].resize)
    reference = (
        Image.open(io.BytesIO(data)).convert("RGB").resize(got.size, Image.Resampling.LANCZOS)
    )
    difference = ImageStat.Stat(ImageChops.difference(got, reference)).mean
    # A 1/2-scale decode is ~3.6 off the full-resolution reference on this noise; a
    # 1/4-scale one ~15 and a 1/8-scale one (drafted for the 200 px rendition) ~45.
    assert max(difference) < 8, difference


class DecodeCounter:
    """Counts Image.open calls and ImageFile loads that actually decode pixel data."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opens = 0
        self.decodes: list[Size] = []
        real_open: Callable[..., Image.Image] = Image.open
        real_load = ImageFile.ImageFile.load

        def counting_open(*args: Any, **kwargs: Any) -> Image.Image:
            self.opens += 1
            return real_open(*args, **kwargs)

        def counting_load(image: ImageFile.ImageFile) -> Any:
            # A loaded image has no tiles left: later load() calls (from resize, transpose,
            # ...) return at once and are not decodes.
            if image.tile:
                self.decodes.append(image.size)
            return real_load(image)

        monkeypatch.setattr(Image, "open", counting_open)
        monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)


def test_one_open_and_one_decode_serve_every_rendition(monkeypatch: pytest.MonkeyPatch) -> None:
    data = photo_jpeg()
    profile = profile_of(
        *(width_rendition(w) for w in WIDTHS),
        Rendition("square", Resize("cover", width=300, height=300), "png", KEY),
    )
    counter = DecodeCounter(monkeypatch)

    decoded, outputs = imaging.process(data, profile)

    assert len(outputs) == 4
    assert counter.opens == 1
    assert counter.decodes == [decoded.image.size]


def test_each_rendition_is_resized_from_the_smallest_sufficient_earlier_picture(
    resizes: Resizes,
) -> None:
    profile = profile_of(*(width_rendition(w) for w in WIDTHS))
    decode = libjpeg_scaled(STORED, draft_need((1000, 750)))
    # Premise of the chain below: 500 needs CASCADE_GAP x 500 = 1000 px of source, which
    # the 1000 rendition has; 100 needs 200, which 500 (the smallest such) has.
    assert 500 * geometry.CASCADE_GAP <= 1000 and 100 * geometry.CASCADE_GAP <= 500

    _, outputs = imaging.process(photo_jpeg(), profile)

    sources = [resizes.source_of(r.resize) for r in profile.renditions]
    assert sources == [decode, (1000, 750), (500, 375)]
    assert [(o.width, o.height) for o in outputs] == [(1000, 750), (500, 375), (100, 75)]


def test_renditions_that_differ_only_in_encoding_share_one_resize(resizes: Resizes) -> None:
    # The web profile's shape: each width as WebP and as a JPEG fallback.
    webp = [replace(width_rendition(w), name=f"w{w}-webp", format="webp") for w in WIDTHS]
    jpeg = [width_rendition(w) for w in WIDTHS]
    profile = profile_of(*(r for pair in zip(webp, jpeg, strict=True) for r in pair))

    _, outputs = imaging.process(photo_jpeg(), profile)

    assert [rule.width for _, rule, _ in resizes.calls] == list(WIDTHS)  # once per width
    assert [(o.format, o.width) for o in outputs] == [
        (fmt, w) for w in WIDTHS for fmt in ("webp", "jpeg")
    ]
    # And each JPEG is the one it would be without its WebP twin.
    alone = imaging.process(photo_jpeg(), profile_of(*jpeg))[1]
    assert [o.data for o in outputs[1::2]] == [o.data for o in alone]


def test_a_rendition_in_several_formats_is_resized_once_and_encoded_in_each(
    resizes: Resizes,
) -> None:
    # GIVEN the web profile's shape as multi-format renditions: [webp, jpeg] per width
    multi = [replace(width_rendition(w), format=("webp", "jpeg")) for w in WIDTHS]
    # WHEN rendered
    _, outputs = imaging.process(photo_jpeg(), profile_of(*multi))
    # THEN each width is resized once, and written once per format in the listed order
    assert [rule.width for _, rule, _ in resizes.calls] == list(WIDTHS)
    assert [(o.rendition.name, o.format, o.width) for o in outputs] == [
        (f"w{w}-lanczos", fmt, w) for w in WIDTHS for fmt in ("webp", "jpeg")
    ]
    # AND each JPEG is byte for byte the one a single-format rendition gives
    alone = imaging.process(photo_jpeg(), profile_of(*map(width_rendition, WIDTHS)))[1]
    assert [o.data for o in outputs[1::2]] == [o.data for o in alone]


def test_cascade_uses_only_full_frame_pictures_of_the_same_kernel(resizes: Resizes) -> None:
    big, pixel_art, small = (
        width_rendition(1000),
        width_rendition(500, "nearest"),
        width_rendition(100),
    )
    square = Rendition("square", Resize("cover", width=150, height=150), "jpeg", KEY)
    profile = profile_of(small, square, pixel_art, big)
    decode = libjpeg_scaled(STORED, draft_need((1000, 750)))
    # The 150 px cover needs CASCADE_GAP x 0.05 x the frame = 400x300, the 100 px width
    # 200x150: the nearest-kernel 500x375 would be enough for both but is another kernel,
    # and a crop is never a source, so both come from the lanczos 1000x750.
    assert geometry.need(STORED, square.resize, geometry.CASCADE_GAP) == (400, 300)

    imaging.process(photo_jpeg(), profile)

    assert resizes.source_of(big.resize) == decode
    assert resizes.source_of(pixel_art.resize) == decode
    assert resizes.source_of(square.resize) == (1000, 750)
    assert resizes.source_of(small.resize) == (1000, 750)


def test_upright_srgb_jpeg_is_used_as_decoded_without_a_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[Image.Image] = []
    real_open_image = formats.open_image

    def recording_open_image(data: bytes, input_formats: tuple[str, ...]) -> Image.Image:
        opened.append(real_open_image(data, input_formats))
        return opened[-1]

    monkeypatch.setattr(formats, "open_image", recording_open_image)
    data = images.jpeg(1200, 900, orientation=1)
    profile = profile_of(width_rendition(800))

    decoded = imaging.decode(data, profile)

    # Orientation 1, no ICC, already RGB: every step may hand the image through, so the
    # picture must be the very object libjpeg decoded into, not a full-size copy of it.
    assert not decoded.has_icc and decoded.orientation == 1
    assert decoded.image.mode == "RGB"
    assert decoded.image is opened[0]


def test_sideways_jpeg_is_drafted_with_the_need_in_stored_axes() -> None:
    data = photo_jpeg(orientation=6)  # stored 4000x3000, displayed 3000x4000
    rendition = width_rendition(750)
    displayed = (STORED[1], STORED[0])
    need = draft_need(geometry.target_size(displayed, rendition.resize))  # 1500x2000
    stored_decode = libjpeg_scaled(STORED, (need[1], need[0]))
    # Premise: the unswapped need (1500 wide against a 3000 px stored height) would not
    # allow any scaling, so only a swapped need decodes at 1/2.
    assert libjpeg_scaled(STORED, need) == STORED
    assert stored_decode == (2000, 1500)

    decoded, (output,) = imaging.process(data, profile_of(rendition))

    assert decoded.original_size == displayed
    assert decoded.image.size == (stored_decode[1], stored_decode[0])
    assert (output.width, output.height) == (750, 1000)
