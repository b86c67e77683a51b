"""Interleaved timings in a child process pinned to N cores.

    python -m benchmarks.timing --cores 1 --rounds 15 --out times.json  (run.py starts it)

A one-core child is the Lambda-like figure: at the stack's configured memory a function
gets about one vCPU, and a process on two cores would let encode threads and libvips
workers overlap in a way Lambda would not pay for. The pinning happens before Pillow or
libvips is imported, so their thread pools size themselves to what they can run on.

Every approach runs once per pass, back to back, in an order rotated each pass, so machine
noise hits them alike and none always inherits the same predecessor's caches; a ratio is
taken within each round and the median over rounds reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JPEG_APPROACHES = (
    "floor",
    "floor-q",
    "vips",
    "thumbnail",
    "thumb-1/8",
    "web",
    "vips-web-each",
    "vips-web-once",
)
# The seed decodes in full: a second per 48 MP image and no target beyond 12 MP needs it.
SEED_IMAGES = ("3mp.jpg", "12mp.jpg")
PNG_APPROACHES = ("floor", "vips", "thumbnail")
# Small inputs take a few ms: more passes per round keep their per-round median steady.
PASSES = {"3mp.jpg": 3}


def plan(images: list[str]) -> dict[str, list[str]]:
    """image -> the approaches timed on it."""
    chosen = {}
    for image in images:
        names = list(PNG_APPROACHES if image.endswith(".png") else JPEG_APPROACHES)
        if image in SEED_IMAGES:
            names.insert(0, "seed")
        chosen[image] = names
    return chosen


@dataclass
class Timings:
    """Per (image, approach): every sample, and each round's median (the same round's
    approaches ran back to back, so a ratio within a round cancels slow machine drift)."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    per_round: dict[str, list[float]] = field(default_factory=dict)

    @staticmethod
    def key(image: str, approach: str) -> str:
        return f"{image} {approach}"

    def __contains__(self, pair: tuple[str, str]) -> bool:
        return self.key(*pair) in self.samples

    def ms(self, image: str, approach: str) -> float:
        return statistics.median(self.samples[self.key(image, approach)])

    def rounds(self, image: str, approach: str) -> list[float]:
        return self.per_round[self.key(image, approach)]

    def ratio(self, image: str, numerator: str, denominator: str | tuple[str, ...]) -> float:
        """The median over rounds of numerator/denominator measured in that round; with
        several denominators, the fastest of them in each round (a peer at its best)."""
        names = (denominator,) if isinstance(denominator, str) else denominator
        best = [min(values) for values in zip(*(self.rounds(image, n) for n in names), strict=True)]
        pairs = zip(self.rounds(image, numerator), best, strict=True)
        return statistics.median(a / b for a, b in pairs)

    def wins(self, image: str, approach: str, others: tuple[str, ...]) -> int:
        """In how many rounds `approach` was the fastest of `others`."""
        columns = [self.rounds(image, n) for n in others]
        at = others.index(approach)
        return sum(min(row) == row[at] for row in zip(*columns, strict=True))

    def to_json(self) -> str:
        return json.dumps({"samples": self.samples, "per_round": self.per_round})

    @classmethod
    def from_json(cls, text: str) -> Timings:
        raw = json.loads(text)
        return cls(raw["samples"], raw["per_round"])


def measure(files: dict[str, Path], rounds: int) -> Timings:
    from benchmarks.approaches import FACTORIES

    chosen = plan(list(files))
    runs = {name: FACTORIES[name]() for name in {n for names in chosen.values() for n in names}}
    datas = {image: path.read_bytes() for image, path in files.items()}
    timings = Timings()
    for image, names in chosen.items():
        for approach in names:
            runs[approach](datas[image])  # warm: imports, caches, thread pools
            timings.samples[Timings.key(image, approach)] = []
            timings.per_round[Timings.key(image, approach)] = []
    turn = 0
    for _ in range(rounds):
        for image, names in chosen.items():
            this_round: dict[str, list[float]] = {a: [] for a in names}
            for _ in range(PASSES.get(image, 1)):
                shift = turn % len(names)
                turn += 1
                for approach in names[shift:] + names[:shift]:
                    start = time.perf_counter()
                    runs[approach](datas[image])
                    this_round[approach].append((time.perf_counter() - start) * 1000)
            for approach, values in this_round.items():
                timings.samples[Timings.key(image, approach)] += values
                timings.per_round[Timings.key(image, approach)].append(statistics.median(values))
    return timings


def pin(cores: int) -> None:
    """Keep this process on its first `cores` allowed CPUs (before any image library loads)."""
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(allowed[:cores]))


def in_child(files: dict[str, Path], rounds: int, cores: int, out: Path) -> Timings:
    """Run `measure` in a fresh interpreter pinned to `cores` CPUs; its timings."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # libvips sizes its pool from the CPUs the process may use; said outright all the same.
    env["VIPS_CONCURRENCY"] = str(cores)
    command = [sys.executable, "-m", "benchmarks.timing", "--cores", str(cores)]
    command += ["--rounds", str(rounds), "--out", str(out), *map(str, files.values())]
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    return Timings.from_json(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timing", description=__doc__)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    pin(args.cores)
    timings = measure({path.name: path for path in args.files}, args.rounds)
    args.out.write_text(timings.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
