"""What the per-image budget costs: rendering in a forked child against rendering inline.

    .venv/bin/python -m benchmarks.budget [--rounds N]

On one core (the process pins itself to CPU 0, as `taskset -c 0` would), in a parent
shaped like the function's (boto3 imported, an S3 and a DynamoDB client made,
lambda_pkg.handler imported), on the benchmark's generated 12 MP JPEG (benchmarks/images.py),
with the `thumbnail` and `web` profiles. Three ways, interleaved call by call with the
order rotated each pass (as benchmarks/run.py does):
  inline     imaging.process in the function's own process: no budget
  kept       lambda_pkg.isolated.process: the child forked once (`start`) and kept
  per-image  the same, with a child forked for every image
Prints the median ms per image; the ratio to `inline`: the median over rounds of the ratio
of the round's medians (a round's ways ran moments apart, so drift in machine speed
cancels); and the CPU-time ratio (this process's, its reaped children's and the kept
child's CPU, summed over every call): on a machine other work shares, the kept child's two
hand-overs of the CPU per image are where that work gets in, which the CPU time leaves out.
The target: `kept` within 5% of `inline` on both. Exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMORY_MB = 1024  # the default stack's memory
TIMEOUT_MS = 60_000  # and timeout
TARGET = 1.05
WAYS = ("inline", "kept", "per-image")


def _function_like_parent() -> None:
    """What the function's process holds before it renders: forking copies all of it."""
    import boto3

    import lambda_pkg.handler  # noqa: F401

    global _CLIENTS
    _CLIENTS = tuple(boto3.client(name, region_name="us-east-1") for name in ("s3", "dynamodb"))


_CLIENTS: tuple = ()


def ways(profile_name: str) -> dict[str, Callable[[bytes], object]]:
    from lambda_pkg import budget, imaging, isolated
    from lambda_pkg.profiles import load_named

    profile = load_named(profile_name)
    kept, per_image = isolated.new_worker(), isolated.new_worker()
    kept.start(MEMORY_MB)

    def limits() -> budget.Budget:
        return budget.Budget.for_invocation(TIMEOUT_MS, MEMORY_MB)

    return {
        "inline": lambda data: imaging.process(data, profile),
        "kept": lambda data: isolated.process(data, profile, limits(), kept),
        "per-image": lambda data: isolated.process(data, profile, limits(), per_image),
    }


def _cpu_s(pids: list[int]) -> float:
    """This process's CPU, its reaped children's, and the live `pids`' (from /proc)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def measure(profile_name: str, data: bytes, rounds: int, passes: int) -> dict[str, dict]:
    runs = ways(profile_name)
    for run in runs.values():
        run(data)  # warm: imports, caches, the kept child's pools
    kept_pid = [p for p in _children() if p != os.getpid()]
    result = {way: {"ms": [], "round_ms": [], "cpu_s": 0.0} for way in WAYS}
    turn = 0
    for _ in range(rounds):
        this_round: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(passes):
            order = WAYS[turn % 3 :] + WAYS[: turn % 3]
            turn += 1
            for way in order:
                cpu, start = _cpu_s(kept_pid), time.perf_counter()
                runs[way](data)
                this_round[way].append((time.perf_counter() - start) * 1000)
                result[way]["cpu_s"] += _cpu_s(kept_pid) - cpu
        for way, values in this_round.items():
            result[way]["ms"] += values
            result[way]["round_ms"].append(statistics.median(values))
    return result


def _children() -> list[int]:
    pid = os.getpid()
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(p) for p in children.read().split()]


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.budget", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core, as `taskset -c 0`
    _function_like_parent()
    from benchmarks.images import ensure

    data = ensure()["12mp.jpg"].read_bytes()
    print(
        f"per-image budget: 12mp.jpg ({len(data):,} bytes), one core, {args.rounds} rounds, "
        f"{MEMORY_MB} MB / {TIMEOUT_MS // 1000} s budget, parent RSS {_rss_mb()} MB"
    )
    print(f"{'profile':<11}{'way':<11}{'median ms':>10}{'wall/inline':>13}{'cpu/inline':>12}")
    missed = []
    for profile, passes in (("thumbnail", 9), ("web", 3)):
        result = measure(profile, data, args.rounds, passes)
        inline = result["inline"]
        for way in WAYS:
            numbers = result[way]
            pairs = zip(numbers["round_ms"], inline["round_ms"], strict=True)
            wall = statistics.median(a / b for a, b in pairs)
            cpu = numbers["cpu_s"] / inline["cpu_s"]
            print(
                f"{profile:<11}{way:<11}{statistics.median(numbers['ms']):10.1f}"
                f"{wall:12.3f}x{cpu:11.3f}x"
            )
            if way == "kept" and max(wall, cpu) > TARGET:
                missed.append(profile)
    verdict = "FAIL: " + ", ".join(missed) if missed else "PASS"
    print(f"target: `kept` within {TARGET - 1:.0%} of inline (wall and CPU): {verdict}")
    return 1 if missed else 0


def _rss_mb() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024


if __name__ == "__main__":
    sys.exit(main())
