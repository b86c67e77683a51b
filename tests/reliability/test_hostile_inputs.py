"""Hostile and awkward inputs through the handler (moto in-process): every one accounted for.

The catalogue lives in reliability/hostile.py so the report runs the very same cases.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from reliability import hostile
from reliability.world import World, world

CASES = hostile.cases()
# Pillow warns about the corrupt EXIF cases; that is the input, not news.
pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    # One moto world for the whole catalogue: every case has its own key, and outputs are
    # cleared before each, so the cases cannot see each other and the module stays fast.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with world() as made:
            yield made


@pytest.mark.parametrize("case", CASES, ids=[c.name[:60] for c in CASES])
def test_each_hostile_input_ends_as_expected_with_nothing_half_written(shared_world, case):
    # GIVEN one hostile or awkward upload, WHEN its real S3 event reaches the handler,
    # THEN it is processed / failed with a reason and no output / skipped, as catalogued
    result = hostile.run_case(shared_world, case)
    assert result.passed, result.problem
    if case.expect == "failed":
        assert result.error_type == "ImageRejected", "classified, not an unexpected crash"


def test_exif_orientations_5_to_8_swap_the_axes(shared_world):
    for value, size in ((1, (200, 125)), (6, (200, 320)), (8, (200, 320)), (0, (200, 125))):
        key = f"exif/orientation-{value}.jpg"
        case = next(c for c in CASES if c.key == key)
        hostile.run_case(shared_world, case)
        item = shared_world.item(key)
        assert (int(item["processed_width"]), int(item["processed_height"])) == size, value
        assert int(item["orientation"]) == (value if value else 1)


def test_the_frame_cap_bounds_an_animated_gif(shared_world):
    case = next(c for c in CASES if c.key == "bombs/frames.gif")
    assert hostile.run_case(shared_world, case).passed
    item = shared_world.item(case.key)
    (rendition,) = item["renditions"]
    output = Image.open(io.BytesIO(shared_world.output(rendition["key"])))
    assert output.n_frames <= hostile.profile("animated").max_frames < int(item["frame_count"])


def test_decoding_the_whole_catalogue_stays_within_a_small_memory_bound():
    # A decoded bomb would cost 100 MB to GBs; refusing from the header costs nothing.
    probe = hostile.memory_probe()
    assert probe["peak_mb"] - probe["baseline_mb"] < 64, probe
    bombs = [c.name for c in CASES if c.group == "bomb" and c.expect == "failed"]
    assert all(probe["growth_mb"][name] < 8 for name in bombs), probe["growth_mb"]
