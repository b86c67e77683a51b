"""The plan from numbers alone: no image is opened, decoded or made in this file."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from lambda_pkg import geometry, planning
from lambda_pkg.planning import INLINE_ENCODE_MAX_PIXELS, PixelKey
from lambda_pkg.profiles import Profile, Rendition, Resize

KEY = "processed/{key}/{rendition}.{ext}"
ORIGINAL = (4000, 3000)
DRAFTED = (2000, 1500)  # what libjpeg gives for a 2000x1500 draft request


def width(w: int, fmt: str = "jpeg", kernel: str = "lanczos", **options: object) -> Rendition:
    name = f"w{w}-{fmt}-{kernel}-{options.get('sharpen', 0)}"
    return Rendition(name, Resize("width", width=w, kernel=kernel), fmt, KEY, **options)


def box(mode: str, w: int, h: int, fmt: str = "jpeg") -> Rendition:
    return Rendition(f"{mode}{w}x{h}", Resize(mode, width=w, height=h), fmt, KEY)


def still(
    *renditions: Rendition,
    decoded: geometry.Size = DRAFTED,
    original: geometry.Size = ORIGINAL,
    fmt: str = "jpeg",
    alpha: bool = False,
) -> planning.Plan:
    profile = Profile("t", renditions)
    return planning.plan(planning.measure(original, profile), decoded, fmt, alpha, False, profile)


def animation(frame: geometry.Size, fmt: str, *renditions: Rendition) -> planning.Plan:
    """The plan of a kept animation: its frames are the original's size, and RGBA."""
    profile = Profile("t", renditions)
    return planning.plan(planning.measure(frame, profile), frame, fmt, True, True, profile)


def sources(plan: planning.Plan) -> list[int | None]:
    """Each rendition's picture's source, in profile order."""
    return [plan.pictures[job.picture].source for job in plan.jobs]


def test_the_draft_size_is_the_largest_need_with_the_draft_margin() -> None:
    profile = Profile("t", (width(200), width(1000), box("cover", 300, 300)))
    # 1000 of 4000 is a quarter of the frame; x 2 is half of it.
    assert planning.measure(ORIGINAL, profile).draft == (2000, 1500)


def test_each_picture_is_made_from_the_smallest_earlier_one_still_big_enough() -> None:
    plan = still(width(200), width(800), width(1600))
    # 800 needs 2 x 800 = 1600 px of source, which the 1600 picture has; 200 needs 400.
    assert [plan.pictures[i].size for i in range(3)] == [(1600, 1200), (800, 600), (200, 150)]
    assert [plan.pictures[i].source for i in range(3)] == [None, 0, 1]
    assert plan.order == (2, 1, 0)  # largest first
    assert [job.picture for job in plan.jobs] == [2, 1, 0]


def test_a_picture_is_made_only_from_pictures_of_its_own_kernel_and_never_from_a_crop() -> None:
    plan = still(width(200), box("cover", 300, 300), width(800, kernel="nearest"), width(1600))
    big = plan.jobs[3].picture
    assert sources(plan) == [big, big, None, None]


def test_renditions_that_differ_only_in_encoding_share_one_picture() -> None:
    plan = still(width(800, "webp"), width(800, "jpeg", quality=60), width(800, sharpen=50))
    webp, jpeg, sharpened = plan.jobs
    assert webp.picture == jpeg.picture != sharpened.picture
    assert len(plan.pictures) == 2
    assert (webp.format, jpeg.format) == ("webp", "jpeg")
    assert plan.pictures[webp.picture].key == PixelKey(Resize("width", width=800), 0)


def test_sharpen_applies_only_when_the_picture_gets_smaller_and_it_is_then_no_source() -> None:
    plan = still(width(1600, sharpen=80), width(600), width(3000, sharpen=80))
    shrunk, small, unshrunk = (plan.pictures[job.picture] for job in plan.jobs)
    # 3000 px is a shrink of the 4000 px original but an enlargement of the 2000 px decode.
    assert shrunk.sharpen == 80 and unshrunk.sharpen == 0
    assert unshrunk.size == (3000, 2250)
    # So the 600 comes from the unsharpened 3000, not from the sharpened 1600.
    assert small.source == plan.jobs[2].picture


def test_a_picture_that_is_its_source_is_no_source_for_later_ones() -> None:
    # The decode is already 800x600: that rendition's resize hands the decode through.
    plan = still(width(800), width(300), decoded=(800, 600), original=(800, 600), fmt="png")
    assert sources(plan) == [None, None]


def test_pad_keeps_its_content_size_inside_the_box() -> None:
    plan = still(box("pad", 500, 500), box("cover", 500, 100))
    pad, cover = (plan.pictures[job.picture] for job in plan.jobs)
    assert (pad.size, pad.content) == ((500, 500), (500, 375))
    assert cover.size == cover.content == (500, 100)


@pytest.mark.parametrize(
    ("input_format", "alpha", "expected"),
    [("jpeg", False, "jpeg"), ("png", True, "png"), ("tiff", False, "jpeg"), ("tiff", True, "png")],
)
def test_same_becomes_a_concrete_format(input_format: str, alpha: bool, expected: str) -> None:
    (job,) = still(width(100, "same"), fmt=input_format, alpha=alpha).jobs
    assert job.format == expected and not job.animated


def test_small_pictures_encode_inline_large_ones_on_the_pool() -> None:
    side = int(INLINE_ENCODE_MAX_PIXELS**0.5)
    plan = still(box("cover", side, side), box("cover", side + 1, side + 1))
    assert [job.inline for job in plan.jobs] == [True, False]


def test_placeholders_come_from_the_last_of_the_smallest_pictures() -> None:
    plan = still(box("cover", 100, 100), box("pad", 100, 100), width(800))
    assert plan.smallest == plan.jobs[1].picture


def test_an_animation_makes_every_rendition_from_the_frames_and_shares_nothing() -> None:
    renditions = (width(40, "webp"), width(40, "jpeg"), box("cover", 20, 30, "same"))
    plan = animation((60, 40), "gif", *renditions)
    assert [p.source for p in plan.pictures] == [None, None, None]
    assert [job.picture for job in plan.jobs] == [0, 1, 2]
    assert [(job.format, job.animated, job.inline) for job in plan.jobs] == [
        ("webp", True, True),
        ("jpeg", False, True),
        ("gif", True, True),
    ]
    # Ties go to the first in profile order (the 20x30 cover is 600 px, the widths 1,080).
    assert plan.smallest == 2
    tied = animation((60, 40), "gif", *renditions[:2])
    assert tied.smallest == 0


def test_an_animation_frame_is_sharpened_only_when_it_gets_smaller() -> None:
    renditions = (width(40, "webp", sharpen=60), width(90, "webp", sharpen=60))
    plan = animation((60, 40), "webp", *renditions)
    assert [p.sharpen for p in plan.pictures] == [60, 0]


RULES = [
    Resize("width", width=333),
    Resize("height", height=77, upscale=True),
    Resize("fit", width=500, height=120),
    Resize("cover", width=640, height=640, upscale=True),
    Resize("cover", width=5000, height=100),
    Resize("pad", width=300, height=300),
]


@pytest.mark.parametrize(
    ("source", "resize"), list(itertools.product([(4000, 3000), (7, 5), (90, 1600)], RULES))
)
def test_sizing_is_what_the_separate_size_functions_give(
    source: geometry.Size, resize: Resize
) -> None:
    sized = geometry.sizing(source, resize)
    assert sized.target == geometry.target_size(source, resize)
    assert sized.content == geometry.content_size(source, resize)
    assert sized.scale == geometry.scale_of(source, resize)
    for gap in (geometry.DRAFT_GAP, geometry.CASCADE_GAP):
        assert sized.need(gap) == geometry.need(source, resize, gap)


def test_the_pixel_key_leaves_out_every_encoder_option() -> None:
    base = width(800)
    encoded_otherwise = replace(base, name="x", format="webp", quality=10, method=6, speed=1)
    assert PixelKey.of(base) == PixelKey.of(encoded_otherwise)
    assert PixelKey.of(base) != PixelKey.of(replace(base, sharpen=1))


def test_a_rendition_in_several_formats_is_one_picture_and_one_job_per_format() -> None:
    # GIVEN a 320 px rendition in three formats and a 1600 px one in one
    multi = width(320, ("avif", "webp", "jpeg"))
    plan = still(multi, width(1600))
    # THEN the 320 px picture is made once and encoded three times, in the listed order
    assert [(job.rendition.name, job.format) for job in plan.jobs] == [
        (multi.name, "avif"),
        (multi.name, "webp"),
        (multi.name, "jpeg"),
        (width(1600).name, "jpeg"),
    ]
    assert len(plan.pictures) == 2
    assert len({job.picture for job in plan.jobs[:3]}) == 1
    # AND the order still runs the largest picture first, each job once
    assert plan.order == (3, 0, 1, 2)


def test_an_animated_rendition_in_several_formats_is_one_picture() -> None:
    plan = animation((64, 48), "gif", width(32, ("webp", "png")))
    assert [(job.format, job.animated, job.picture) for job in plan.jobs] == [
        ("webp", True, 0),
        ("png", True, 0),
    ]
