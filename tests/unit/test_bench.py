"""The benchmark's own arithmetic (benchmarks/): scores, round ratios, the equal-quality
gate, request pricing and the photo mosaic, on tiny made-up numbers and pictures."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import cost
from benchmarks.images import mosaic
from benchmarks.targets import Target, gaps, report
from benchmarks.timing import Timings, plan
from tests.support import REPO

ROOT = Path(__file__).resolve().parents[2]


def test_psnr_of_an_error_of_one_level_everywhere_is_48_dB():
    np = pytest.importorskip("numpy")
    from benchmarks.quality import psnr

    reference = np.full((4, 4, 3), 100.0)
    assert psnr(reference + 1, reference) == pytest.approx(10 * math.log10(255**2), abs=1e-9)
    assert psnr(reference, reference) == math.inf


def test_ssim_is_one_for_identical_planes_and_lower_for_noisy_ones():
    np = pytest.importorskip("numpy")
    from benchmarks.quality import ssim

    rng = np.random.default_rng(1)
    plane = rng.uniform(0, 255, (32, 32))
    assert ssim(plane, plane) == pytest.approx(1.0)
    slightly = ssim(plane + rng.normal(0, 20, plane.shape), plane)
    assert ssim(plane + rng.normal(0, 60, plane.shape), plane) < slightly < 0.99


def test_a_cover_reference_is_cut_from_the_centred_box_of_the_output_aspect():
    pytest.importorskip("numpy")
    from benchmarks.quality import cover_box

    assert cover_box(400, 300, (200, 200)) == (50.0, 0.0, 350.0, 300.0)
    assert cover_box(300, 400, (200, 200)) == (0.0, 50.0, 300.0, 350.0)


def test_ratios_are_taken_within_each_round_against_the_fastest_peer_of_that_round():
    # GIVEN three rounds in which each pyvips way wins some
    times = Timings(
        samples={"a web": [8, 8, 8], "a once": [10, 20, 10], "a each": [20, 10, 40]},
        per_round={"a web": [8, 8, 8], "a once": [10, 20, 10], "a each": [20, 10, 40]},
    )
    # THEN each round's ratio is against that round's faster way, and the median is taken
    assert times.ratio("a", "web", ("once", "each")) == pytest.approx(0.8)
    assert times.ratio("a", "web", "each") == pytest.approx(0.4)
    assert times.wins("a", "once", ("once", "each")) == 2
    assert Timings.from_json(times.to_json()) == times


def test_a_speed_target_passes_only_at_equal_quality():
    fast_and_equal = Target("t", 0.84, 0.90, gaps([30.0, 31.0], [30.05, 31.0]), "vips")
    fast_but_worse = Target("t", 0.84, 0.90, gaps([30.0], [30.35]), "vips")
    slow_and_better = Target("t", 0.95, 0.90, [0.2], "vips")
    ungated = Target("rss", 0.2, 0.25)

    assert fast_and_equal.passed and ungated.passed
    assert not fast_but_worse.passed and not slow_and_better.passed
    assert fast_but_worse.line() == (
        "[FAIL] t: 0.84x (limit 0.90x), but quality 0.35 dB below vips"
    )
    assert report([fast_and_equal, ungated])[1] is True
    assert report([fast_and_equal, slow_and_better])[1] is False


def test_item_sizes_follow_dynamodb_rules_and_costs_add_up():
    assert cost.size_of({"image_name": {"S": "input/a.jpg"}}) == 10 + 11
    assert cost.item_bytes({"N": "1536"}) == 3
    assert cost.item_bytes({"L": [{"BOOL": True}, {"S": "ab"}]}) == 3 + 2 + 3
    requests = cost.Requests(Counter({"GetObject": 1, "PutObject": 2, "PutItem": 1}), wru=2)
    items = dict(cost.line_items(1000.0, requests, cost.Stack(1024, "arm64")))
    assert items["Lambda compute (1.0000 GB-s)"] == pytest.approx(13.3334)
    assert items["S3 PUT-class (2)"] == pytest.approx(10.0)
    assert items["S3 GET-class (1)"] == pytest.approx(0.4)
    assert items["DynamoDB writes (2 WRU)"] == pytest.approx(1.25)


def test_the_mosaic_covers_the_frame_with_source_pixels_only():
    sources = [Image.new("RGB", (300, 260), colour) for colour in ("red", "lime", "blue")]
    frame = mosaic(700, 500, sources, seed=3)
    assert frame.size == (700, 500)
    assert set(c for _, c in frame.getcolors()) <= {(255, 0, 0), (0, 255, 0), (0, 0, 255)}
    assert mosaic(700, 500, sources, seed=3).tobytes() == frame.tobytes()


def test_the_seed_is_timed_only_where_it_is_cheap_and_png_gets_the_thumbnail_peers():
    chosen = plan(["3mp.jpg", "48mp.jpg", "12mp.png"])
    assert chosen["3mp.jpg"][0] == "seed" and "seed" not in chosen["48mp.jpg"]
    assert chosen["12mp.png"] == ["floor", "vips", "thumbnail"]


@pytest.mark.slow  # ~25 s: generates an input and times every approach twice
def test_the_quick_benchmark_runs_end_to_end():
    pytest.importorskip("pyvips")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: a target failed, which is a result
    targets = done.stdout.partition("targets (one core")[2]
    assert "[PASS]" in targets or "[FAIL]" in targets


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__")
)
def test_every_benchmark_module_answers_help(module: str) -> None:
    # A module that no longer imports (a name moved in images.py) fails here, not in front
    # of someone running `make bench`.
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "No module named 'pyvips'" in done.stderr or "No module named 'numpy'" in done.stderr:
        pytest.skip("the benchmark's own requirements (requirements/bench.txt) are not installed")
    assert done.returncode == 0, done.stderr[-2000:]
