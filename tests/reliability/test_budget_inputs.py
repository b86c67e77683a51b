"""Hostile shapes end `ok` or `failed` within the function's memory and time (issue 12).

Each shape (reliability/hostile_costs.py) is generated here, uploaded to moto's server, and
its S3 event delivered to the handler in a fresh process held to 1024 MB and the 60 s
timeout (~35 CPU s on one core here) by reliability/budget.py: over either, it is killed,
as Lambda would kill it and retry the event into the dead-letter queue. The full table, at
512 MB too, is `python -m reliability report --budget` (RELIABILITY.md).
"""

from __future__ import annotations

import io
import os
import struct
import sys
from collections.abc import Iterator

import pytest
from PIL import Image

from imgpipe_samples import encode, photo
from lambda_pkg.profiles import load_named
from reliability import budget
from reliability.hostile_costs import SHAPES, Shape

LIMITS = budget.Limits(memory_mb=1024, timeout_s=60)  # issue 12's; the default is 1536 MB


@pytest.fixture(scope="module")
def world() -> Iterator[budget.FunctionWorld]:
    with budget.function_world() as made:
        yield made


@pytest.mark.parametrize("shape", SHAPES, ids=[s.key.removeprefix("budget/") for s in SHAPES])
def test_each_hostile_shape_ends_within_the_functions_memory_and_time(world, shape) -> None:
    # GIVEN a small file under every configured limit that costs far more than it weighs
    # WHEN its S3 event reaches the handler held to 1024 MB and 60 s
    run = budget.run_handler(world, shape, shape.make(), LIMITS)
    # THEN it ends on its own, `ok` or `failed` with a reason, within both limits
    assert run.outcome in ("ok", "failed"), run
    assert run.peak_mb <= LIMITS.memory_mb, run
    assert run.cpu_s <= LIMITS.cpu_s_here, run


@pytest.mark.parametrize("shape", SHAPES, ids=[s.key.removeprefix("budget/") for s in SHAPES])
def test_each_shape_is_under_the_default_limits(shape: Shape) -> None:
    # Hostile by cost only: every one passes max_bytes and max_pixels as configured.
    profile = load_named(shape.profile)
    data = shape.make()
    assert len(data) <= profile.max_bytes
    width, height = _header_size(data)
    assert width * height <= profile.max_pixels, (width, height)


def _header_size(data: bytes) -> tuple[int, int]:
    if data[:4] != b"II*\x00":
        with Image.open(io.BytesIO(data)) as image:  # reads the header alone
            return image.size
    # Pillow's TIFF open reads every strip offset into a tile (the cost under test): read
    # ImageWidth and ImageLength from the first IFD by hand instead.
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    entries = [struct.unpack_from("<HHII", data, first + 2 + 12 * i) for i in range(count)]
    values = {tag: value & (0xFFFF if kind == 3 else 0xFFFFFFFF) for tag, kind, _, value in entries}
    return values[256], values[257]


def test_an_ordinary_photo_ends_ok_well_within_the_budget(world) -> None:
    shape = Shape("12 MP JPEG", "budget/photo.jpg", lambda: b"")
    run = budget.run_handler(world, shape, encode(photo(4000, 3000), "JPEG", quality=85), LIMITS)
    assert (run.outcome, run.reason) == ("ok", "")
    assert run.peak_mb < LIMITS.memory_mb / 2


def _python(code: str) -> list[str]:
    ready = "import json\nprint(json.dumps({'ready': True}), flush=True)\n"
    return [sys.executable, "-c", ready + code]


def test_the_watch_kills_a_process_over_its_memory() -> None:
    code = "import time\nblock = bytearray(400 * 2**20)\ntime.sleep(30)"
    _, watch, _ = budget.supervise(_python(code), {}, "", memory_mb=200, cpu_s=30)
    assert watch.killed.startswith("out of memory"), watch
    assert 200 < watch.peak_mb < 450


def test_the_watch_kills_a_process_over_its_cpu_time() -> None:
    code = "while True: pass"
    _, watch, wall = budget.supervise(_python(code), {}, "", memory_mb=500, cpu_s=1.0)
    assert watch.killed.startswith("timed out: over 1 CPU s"), watch
    assert 1.0 < watch.cpu_s < 2.0 and wall < 30


def test_the_watch_reports_what_a_process_printed_last() -> None:
    code = "print(json.dumps({'outcome': 'ok', 'reason': ''}))"
    report, watch, _ = budget.supervise(_python(code), {}, "", memory_mb=500, cpu_s=10)
    assert report == {"outcome": "ok", "reason": ""} and not watch.killed


def test_the_budget_section_is_replaced_in_place_or_put_before_the_commands() -> None:
    section = f"{budget.BEGIN}\nnew table\n{budget.END}"
    fresh = budget.splice("# Reliability\n\n## Commands\n- x\n", section)
    assert fresh == f"# Reliability\n\n{section}\n\n## Commands\n- x\n"
    old = fresh.replace("new table", "old table")
    assert budget.splice(old, section) == fresh


def test_every_hostile_shape_ends_within_budget_through_the_local_stack() -> None:
    # GIVEN the local stack holding its function to 1024 MB and 60 s, as Lambda would
    from pipeline.cli import ops
    from pipeline.local.runner import LocalStack
    from pipeline.program.stack import StackSettings

    settings = StackSettings(profile="web", memory_mb=LIMITS.memory_mb, timeout_s=60)
    name = f"budget{os.getpid() % 1000}"
    with LocalStack(stack=name, settings=settings, workers=2, write_state=False) as stack:
        target = stack.target()
        # WHEN every hostile shape is uploaded at once
        ops.upload_bytes(target, {shape.key: shape.make() for shape in SHAPES})
        keys = [shape.key for shape in SHAPES]
        results = ops.wait_for(
            target, keys, lambda e: e.get("status") in ("ok", "failed"), timeout_s=300
        )
        # THEN each ends `ok` or `failed` in its first attempt: no timeout, no
        # out-of-memory kill, nothing retried or dead-lettered
        unfinished = {k: v for k, v in results.items() if v is None}
        assert not unfinished, unfinished
        assert stack.pool.stats.retried == 0
        assert ops.dead_letters(target, hold_s=0) == []
