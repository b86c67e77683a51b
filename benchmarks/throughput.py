"""Throughput end to end: images/s per worker on the local stack, and where the time goes.

    .venv/bin/python -m benchmarks.throughput [--count N] [--workers 1,0] [--no-pin]

For each profile (`thumbnail`, `web`) it starts the local stack (pipeline/local: moto's
server, the function from its built zip and layer, SQS-fed workers with Lambda's memory
and timeout), each worker's function pinned to a core of its own (as a function under
1769 MB has at most one vCPU). It warms every worker up (cold start, first fork), then per
input size uploads N copies of the benchmark's photo frame (benchmarks/images.py: a mosaic
of real photos, JPEG q92) under distinct keys, four uploads at a time, and waits until the event
queue is empty and every item is final. It reports:
- images/s per worker: N / (first upload to queue empty) / workers; and the rate the
  function alone would give (1000 / its mean ms per image);
- the mean (and median) ms of each phase per image, from the `Image timings:` line the
  function logs per image (lambda_pkg/timings.py), and `outside`: the wall time per image
  and worker that the function did not see (SQS receive and delete, the invocation's pipe,
  the handler's event log), so the columns sum to the wall time per image.
`run()` returns a Result and `report(result)` the text; `benchmarks.run` may call both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks import images
from lambda_pkg import timings
from pipeline.cli import ops
from pipeline.cli.targets import Target
from pipeline.local.runner import LocalStack

PROFILES = ("thumbnail", "web")
SIZES = {"3mp": (2000, 1500), "12mp": (4000, 3000)}
# Per profile and size: runs of 10-20 s for one worker (the rate repeats within about 5%
# here), both profiles with 1 and 2 workers in about 2 minutes together.
COUNTS = {"thumbnail": {"3mp": 100, "12mp": 50}, "web": {"3mp": 20, "12mp": 10}}
DEFAULT_COUNT = 20
WORKERS = (1, 0)  # 0: the local stack's default, one per core
STACK = "bench"
UPLOADERS = 4
TIMEOUT_S = 600
LINE = re.compile(r"Image timings: (\{.*\})\s*$")
COLUMNS = (*timings.PHASES, timings.OTHER)


@dataclass(frozen=True)
class Case:
    """One profile, one input size, one worker count: what was measured."""

    profile: str
    size: str
    workers: int
    count: int
    wall_s: float
    per_image: tuple[dict[str, float], ...]  # each image's `ms` from its log line
    failed: int

    @property
    def per_worker(self) -> float:
        """Images per second per worker, end to end."""
        return self.count / self.wall_s / self.workers

    @property
    def wall_ms(self) -> float:
        """Wall time per image on one worker: what the per-worker rate is the inverse of."""
        return self.wall_s * 1000 * self.workers / self.count

    def mean(self, phase: str) -> float:
        return statistics.fmean(ms.get(phase, 0.0) for ms in self.per_image)

    def median(self, phase: str) -> float:
        return statistics.median(ms.get(phase, 0.0) for ms in self.per_image)


@dataclass(frozen=True)
class Result:
    cases: tuple[Case, ...]
    pinned: bool
    memory_mb: int
    cores: int


def run(
    profiles: tuple[str, ...] = PROFILES,
    sizes: dict[str, tuple[int, int]] | None = None,
    counts: dict[str, int] | None = None,
    workers: tuple[int, ...] = WORKERS,
    pin: bool = True,
) -> Result:
    """Every profile x worker count x size through the local stack (see the docstring);
    `counts`: images per size for every profile, instead of COUNTS."""
    sizes = sizes or SIZES
    inputs = {name: _photo(name, size) for name, size in sizes.items()}
    cores = len(os.sched_getaffinity(0))
    cases: list[Case] = []
    memory_mb = 0
    for profile in profiles:
        for pool in dict.fromkeys(w or cores for w in workers):
            with _stack(profile, pool, pin) as stack:
                memory_mb = stack.settings.memory_mb
                _warm_up(stack, inputs[min(inputs, key=lambda n: len(inputs[n]))])
                for name, data in inputs.items():
                    count = (counts or COUNTS.get(profile, {})).get(name, DEFAULT_COUNT)
                    cases.append(_case(stack, profile, name, data, count))
    return Result(tuple(cases), pin, memory_mb, cores)


def _stack(profile: str, workers: int, pin: bool) -> LocalStack:
    # A name per stack: moto's backends live as long as this process, tables and all.
    name = f"{STACK}-{profile}-{workers}w"
    # Each start logs into a folder of its own: only this run's lines are read back.
    return LocalStack(profile, stack=name, workers=workers, write_state=False, pin_cores=pin)


def _warm_up(stack: LocalStack, data: bytes) -> None:
    """Two images per worker first: each function's cold start and first fork stay out."""
    assert stack.pool is not None
    keys = [f"warm/{n}.jpg" for n in range(2 * stack.pool.size)]
    _upload(stack.target(), keys, data)
    _wait(stack, keys)


def _case(stack: LocalStack, profile: str, size: str, data: bytes, count: int) -> Case:
    # Distinct file names: the thumbnail profile flattens folders into one output key space.
    keys = [f"input/{size}-{n:04d}.jpg" for n in range(count)]
    started = time.monotonic()
    _upload(stack.target(), keys, data)
    results = _wait(stack, keys)
    wall_s = time.monotonic() - started
    lines = _timing_lines(stack.log_dir, set(keys))
    failed = sum(1 for entry in results.values() if (entry or {}).get("status") != "ok")
    return Case(profile, size, stack.workers, count, wall_s, tuple(lines.values()), failed)


def _upload(target: Target, keys: list[str], data: bytes) -> None:
    s3 = ops.aws(target, "s3")

    def put(key: str) -> None:
        s3.put_object(Bucket=target.names.input_bucket, Key=key, Body=data)

    # A few at a time: one by one, a 12 MP upload takes as long as a thumbnail's render,
    # and the rate would be the upload's.
    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(pool.map(put, keys))


def _wait(stack: LocalStack, keys: list[str]) -> dict[str, dict | None]:
    """Until the queue is empty (polling the table instead would load the emulator, which
    shares the machine with the workers), then every item must be final."""
    if not stack.wait_until_idle(TIMEOUT_S):
        raise TimeoutError(f"the local stack did not finish {len(keys)} images in {TIMEOUT_S} s")
    final = ("ok", "failed")
    results = ops.wait_for(stack.target(), keys, lambda e: e.get("status") in final, 30)
    missing = [key for key, entry in results.items() if entry is None]
    if missing:
        raise RuntimeError(f"{len(missing)} images have no item after the queue emptied")
    return results


def _timing_lines(log_dir: Path, keys: set[str]) -> dict[str, dict[str, float]]:
    """Each key's last `Image timings:` line in the workers' logs (a retry logs again)."""
    found: dict[str, dict[str, float]] = {}
    for log in sorted(log_dir.glob("worker-*.log")):
        for text in log.read_text().splitlines():
            match = LINE.search(text)
            if match:
                line = json.loads(match.group(1))
                if line["key"] in keys:
                    found[line["key"]] = line["ms"]
    return found


def _photo(name: str, size: tuple[int, int]) -> bytes:
    """The benchmark's photo frame of that name and size (benchmarks/images.py: a mosaic of
    real photos, JPEG q92), or for any other size a generated photo-like JPEG, kept in
    .build/bench/."""
    frame = f"{name}.jpg"
    if images.FRAMES.get(name) == size:
        return images.ensure([frame])[frame].read_bytes()
    from imgpipe_samples import encode, photo

    width, height = size
    path = images.CACHE / f"throughput-{name}-{width}x{height}.jpg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(photo(width, height), "JPEG", quality=90))
    return path.read_bytes()


def report(result: Result) -> str:
    pinned = "each worker's function pinned to one core" if result.pinned else "not pinned"
    lines = [
        f"Throughput on the local stack ({result.cores} cores; {pinned}; "
        f"{result.memory_mb} MB; moto's server in this process)",
        "",
        f"{'profile':<10} {'input':<6} {'workers':>7} {'images':>6} {'wall s':>7} "
        f"{'img/s/worker':>12} {'in-function img/s':>17} {'failed':>6}",
    ]
    for case in result.cases:
        lines.append(
            f"{case.profile:<10} {case.size:<6} {case.workers:>7} {case.count:>6} "
            f"{case.wall_s:>7.1f} {case.per_worker:>12.2f} "
            f"{1000 / case.mean(timings.TOTAL):>17.2f} {case.failed:>6}"
        )
    lines += ["", "Mean ms per image by phase (median in brackets); the row sums to `wall/img`:"]
    head = " ".join(f"{name:>13}" for name in (*COLUMNS, "outside"))
    lines.append(f"{'profile':<10} {'input':<6} {'w':>2} {head} {'wall/img':>9}")
    for case in result.cases:
        outside = case.wall_ms - case.mean(timings.TOTAL)
        cells = [f"{case.mean(n):6.1f} ({case.median(n):5.1f})" for n in COLUMNS]
        cells.append(f"{outside:>13.1f}")
        lines.append(
            f"{case.profile:<10} {case.size:<6} {case.workers:>2} {' '.join(cells)} "
            f"{case.wall_ms:>9.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated")
    parser.add_argument("--workers", default="1,0", help="worker counts; 0: one per core")
    parser.add_argument("--count", type=int, help="images per size and profile (default: COUNTS)")
    parser.add_argument("--no-pin", action="store_true", help="leave the workers unpinned")
    args = parser.parse_args(argv)
    counts = dict.fromkeys(SIZES, args.count) if args.count else None
    result = run(
        profiles=tuple(args.profiles.split(",")),
        counts=counts,
        workers=tuple(int(n) for n in args.workers.split(",")),
        pin=not args.no_pin,
    )
    print(report(result))


if __name__ == "__main__":
    main()
