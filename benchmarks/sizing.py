"""Sizing from measurements: what `imaging.process` costs per input kind and pixel count,
and the constants pipeline/program/guards.py sizes memory and timeout with.

    .venv/bin/python -m benchmarks.sizing [--rounds N] [--sizes 4,12,24,50] [--kinds png-rgba,...]

Every case (kind x pixel count x profile) runs in a fresh interpreter pinned to one core
(`taskset -c 0`), so peaks never accumulate and CPU time is one core's. The child imports
what the function imports (the handler, boto3 clients), warms up on a small JPEG, reads the
file and runs `imaging.process` once, then reports its peak RSS (VmHWM: unlike ru_maxrss it
does not survive exec from the parent) and the CPU time of that call (all threads).

Still kinds carry EXIF orientation 6 and an ICC profile wherever the format can, so the
decode, the transpose and the LittleCMS conversion are all in the peak; animated kinds run
with the profile's `keep_animation` on (off, only the first frame is ever decoded: a still).
Inputs are generated once into .build/sizing/ and are the same bytes on every run.

Then, per kind, a least-squares line through the points: MB = base + bytes-per-pixel x
pixels, and CPU seconds per Mpx for the 1-rendition `thumbnail` and the 7-rendition `web`
profile, split into a decode part and a per-rendition part. The worst kind's constants are
printed ready to paste into pipeline/program/guards.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".build" / "sizing"
SIZES_MPX = (4, 12, 24, 50)
PROFILES = ("thumbnail", "web")
ANIMATION_FRAMES = 100  # a profile's default max_frames: the most an animation keeps
ORIENTATION = 6  # swaps the axes: a full-size transpose after the decode


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    make: Callable[[int], bytes]  # total pixels -> the file
    animated: bool = False


def _side(pixels: int) -> int:
    return math.isqrt(pixels)


def _jpeg_rgb(pixels: int) -> bytes:
    from imgpipe_samples import encode, exif_with_orientation, photo
    from imgpipe_samples.crafted import srgb_icc

    side = _side(pixels)
    exif = exif_with_orientation(ORIENTATION)
    return encode(photo(side, side), "JPEG", quality=90, exif=exif, icc_profile=srgb_icc())


def _jpeg_cmyk(pixels: int) -> bytes:
    from imgpipe_samples import encode, exif_with_orientation, photo
    from imgpipe_samples.crafted import cmyk_icc

    side = _side(pixels)
    exif = exif_with_orientation(ORIENTATION)
    return encode(photo(side, side, "CMYK"), "JPEG", quality=90, exif=exif, icc_profile=cmyk_icc())


def _png_rgba(pixels: int) -> bytes:
    from imgpipe_samples import alpha_photo, encode, exif_with_orientation
    from imgpipe_samples.crafted import srgb_icc

    side = _side(pixels)
    exif = exif_with_orientation(ORIENTATION)
    # compress_level 1: generating is quick; inflating costs the same at any level.
    picture = alpha_photo(side, side)
    return encode(picture, "PNG", compress_level=1, exif=exif, icc_profile=srgb_icc())


def _png_16(pixels: int) -> bytes:
    from imgpipe_samples import encode, exif_with_orientation, sixteen_bit_photo

    side = _side(pixels)
    exif = exif_with_orientation(ORIENTATION)
    return encode(sixteen_bit_photo(side, side), "PNG", compress_level=1, exif=exif)


def _tiff_48(pixels: int) -> bytes:
    from imgpipe_samples import photo
    from imgpipe_samples.crafted import srgb_icc, tiff_rgb48

    side = _side(pixels)
    return tiff_rgb48(photo(side, side), ORIENTATION, srgb_icc())


def _gif_palette(pixels: int) -> bytes:
    from imgpipe_samples import encode, photo

    side = _side(pixels)
    return encode(photo(side, side).convert("P"), "GIF")


def _webp_rgba(pixels: int) -> bytes:
    from imgpipe_samples import alpha_photo, encode, exif_with_orientation
    from imgpipe_samples.crafted import srgb_icc

    side = _side(pixels)
    exif = exif_with_orientation(ORIENTATION)
    picture = alpha_photo(side, side)
    return encode(picture, "WEBP", quality=80, method=0, exif=exif, icc_profile=srgb_icc())


def _frames(pixels: int) -> list:
    """ANIMATION_FRAMES distinct frames whose pixels add up to `pixels`."""
    from PIL import ImageChops

    from imgpipe_samples import photo

    side = _side(pixels // ANIMATION_FRAMES)
    base = photo(side, side)
    step = max(1, side // ANIMATION_FRAMES)
    return [ImageChops.offset(base, i * step, 0) for i in range(ANIMATION_FRAMES)]


def _animated(fmt: str, **params: object) -> Callable[[int], bytes]:
    def make(pixels: int) -> bytes:
        from imgpipe_samples import encode

        frames = _frames(pixels)
        if fmt == "GIF":
            frames = [frame.convert("P") for frame in frames]
        return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **params)

    return make


KINDS = (
    Kind("jpeg-rgb", "8-bit RGB JPEG q90, EXIF orientation 6, ICC", _jpeg_rgb),
    Kind("jpeg-cmyk", "CMYK JPEG q90, EXIF orientation 6, CMYK ICC", _jpeg_cmyk),
    Kind("png-rgba", "RGBA PNG, EXIF orientation 6, ICC", _png_rgba),
    Kind("png-16", "16-bit greyscale PNG, EXIF orientation 6", _png_16),
    Kind("tiff-48", "16-bit RGB TIFF (deflate), orientation 6, ICC", _tiff_48),
    Kind("gif-palette", "palette GIF", _gif_palette),
    Kind("webp-rgba", "RGBA WebP q80, EXIF orientation 6, ICC", _webp_rgba),
    Kind(
        "gif-anim",
        f"animated GIF, {ANIMATION_FRAMES} frames (keep_animation)",
        _animated("GIF", duration=40, loop=0),
        animated=True,
    ),
    Kind(
        "webp-anim",
        f"animated WebP, {ANIMATION_FRAMES} frames (keep_animation)",
        _animated("WEBP", duration=40, loop=0, quality=80, method=0),
        animated=True,
    ),
    Kind(
        "png-anim",
        f"APNG, {ANIMATION_FRAMES} frames (keep_animation)",
        _animated("PNG", duration=40, loop=0, compress_level=1),
        animated=True,
    ),
)


def input_file(kind: Kind, mpx: int) -> Path:
    """The case's file, generated on first use (the generators are deterministic)."""
    path = CACHE / f"{kind.name}-{mpx}mpx.bin"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(kind.make(mpx * 1_000_000))
        partial.rename(path)
    return path


# -- one case, in a fresh interpreter -----------------------------------------------------


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(path: str, profile_name: str, animated: bool) -> None:
    """Cold start as the function has it, then one image; prints one JSON line."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "sizing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "sizing")
    import boto3

    from imgpipe_samples import encode, photo
    from lambda_pkg import handler, imaging  # noqa: F401  (what a cold start imports)
    from lambda_pkg.profiles import load_named

    clients = boto3.client("s3"), boto3.client("dynamodb")  # noqa: F841  (held, as the handler)
    profile = load_named(profile_name)
    if animated:
        profile = dataclasses.replace(profile, keep_animation=True)
    imaging.process(encode(photo(640, 480), "JPEG"), profile)  # codecs, pool threads
    base = _status_mb("VmHWM")
    data = Path(path).read_bytes()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        decoded, outputs = imaging.process(data, profile)
        outcome = f"ok: {len(outputs)} renditions, {decoded.frame_count} frame(s)"
    except imaging.ImageRejected as exc:
        outcome = f"failed: {exc}"
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    result = {"base_mb": base, "peak_mb": _status_mb("VmHWM"), "cpu_s": cpu, "wall_s": wall}
    print(json.dumps({**result, "outcome": outcome}))


@dataclass(frozen=True)
class Measured:
    kind: str
    mpx: int
    pixels: int  # what the file holds (all frames)
    file_mb: float
    profile: str
    base_mb: float
    peak_mb: float
    cpu_s: float
    wall_s: float
    outcome: str


def _pinned() -> list[str]:
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def measure(kind: Kind, mpx: int, profile: str) -> Measured:
    path = input_file(kind, mpx)
    command = [*_pinned(), sys.executable, "-m", "benchmarks.sizing", "--child", str(path)]
    command += [profile, *(["--animated"] if kind.animated else [])]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    pixels = _pixels(kind, mpx)
    return Measured(kind.name, mpx, pixels, path.stat().st_size / 2**20, profile, **result)


def _pixels(kind: Kind, mpx: int) -> int:
    if kind.animated:
        return _side(mpx * 1_000_000 // ANIMATION_FRAMES) ** 2 * ANIMATION_FRAMES
    return _side(mpx * 1_000_000) ** 2


# -- the model ----------------------------------------------------------------------------


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares: intercept, slope."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0
    return mean_y - slope * mean_x, slope


RENDITIONS = {"thumbnail": 1, "web": 7}


@dataclass(frozen=True)
class KindFit:
    """One kind's lines. Memory: MB = intercept + bytes_per_pixel x pixels (the steeper
    profile). CPU: seconds = renditions x rendition_s + Mpx x (decode + renditions x
    rendition_s_per_mpx), from the 1-rendition and the 7-rendition profile's lines."""

    kind: str
    animated: bool
    memory_intercept_mb: float
    bytes_per_pixel: float
    decode_s_per_mpx: float
    rendition_s_per_mpx: float
    rendition_s: float


def fit(kind: Kind, rows: list[Measured]) -> KindFit:
    mine = [r for r in rows if r.kind == kind.name and r.outcome.startswith("ok")]
    lines = {
        p: (
            _line([(r.pixels / 2**20, r.peak_mb) for r in mine if r.profile == p]),
            _line([(r.pixels / 1e6, r.cpu_s) for r in mine if r.profile == p]),
        )
        for p in PROFILES
    }
    intercept, slope = max((memory for memory, _ in lines.values()), key=lambda line: line[1])
    (thumb_at, thumb_slope), (web_at, web_slope) = lines["thumbnail"][1], lines["web"][1]
    extra = RENDITIONS["web"] - RENDITIONS["thumbnail"]
    per_rendition = max(0.0, (web_slope - thumb_slope) / extra)
    return KindFit(
        kind.name,
        kind.animated,
        intercept,
        slope,  # MB per MiB of pixels = bytes per pixel
        max(0.0, thumb_slope - per_rendition),
        per_rendition,
        max(0.0, (web_at - thumb_at) / extra, thumb_at),
    )


@dataclass(frozen=True)
class Group:
    """The worst kind of a group (still / animated), field by field: the guard's constants."""

    name: str
    kinds: tuple[str, ...]
    bytes_per_pixel: tuple[float, str]
    decode_s_per_mpx: tuple[float, str]
    rendition_s_per_mpx: tuple[float, str]
    rendition_s: tuple[float, str]


def worst(name: str, fits: list[KindFit]) -> Group:
    def top(field: str) -> tuple[float, str]:
        best = max(fits, key=lambda f: getattr(f, field))
        return getattr(best, field), best.kind

    return Group(
        name,
        tuple(f.kind for f in fits),
        top("bytes_per_pixel"),
        top("decode_s_per_mpx"),
        top("rendition_s_per_mpx"),
        top("rendition_s"),
    )


def runtime_mb(rows: list[Measured], groups: dict[bool, Group]) -> float:
    """The smallest base that, with its group's bytes per pixel, covers every measured peak."""
    return max(
        r.peak_mb - groups[_animated(r.kind)].bytes_per_pixel[0] * r.pixels / 2**20
        for r in rows
        if r.outcome.startswith("ok")
    )


def _animated(kind: str) -> bool:
    return next(k.animated for k in KINDS if k.name == kind)


# -- the report ---------------------------------------------------------------------------


def table(rows: list[Measured]) -> list[str]:
    head = " | ".join(f"{p} peak MB | {p} CPU s" for p in PROFILES)
    lines = [f"| kind | Mpx | file MB | {head} |", "|---|---:|---:|" + "---:|---:|" * len(PROFILES)]
    cells: dict[tuple[str, int], dict[str, Measured]] = {}
    for r in rows:
        cells.setdefault((r.kind, r.mpx), {})[r.profile] = r
    for (kind, _), by_profile in cells.items():
        first = next(iter(by_profile.values()))
        values = []
        for p in PROFILES:
            r = by_profile.get(p)
            failed = r is not None and not r.outcome.startswith("ok")
            values += ["", ""] if r is None else [f"{r.peak_mb:.0f}", f"{r.cpu_s:.2f}"]
            values[-2] += f" ({r.outcome[:60]})" if failed else ""
        row = f"| {kind} | {first.pixels / 1e6:.1f} | {first.file_mb:.1f} | {' | '.join(values)} |"
        lines.append(row)
    return lines


def constants(rows: list[Measured], fits: list[KindFit]) -> list[str]:
    groups = {}
    for animated, name in ((False, "STILL"), (True, "ANIMATED")):
        mine = [f for f in fits if f.animated == animated]
        if mine:
            groups[animated] = worst(name, mine)
    lines = [
        "| kind | MB at 0 px | bytes/pixel | decode CPU s/Mpx | + per rendition: s/Mpx | s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f.kind} | {f.memory_intercept_mb:.0f} | {f.bytes_per_pixel:.2f} | "
        f"{f.decode_s_per_mpx:.4f} | {f.rendition_s_per_mpx:.4f} | {f.rendition_s:.3f} |"
        for f in fits
    ]
    lines += ["", "For pipeline/program/guards.py (each field the worst kind's, named after it):"]
    lines.append(f"RUNTIME_MEMORY_MB = {math.ceil(runtime_mb(rows, groups))}")
    for group in groups.values():
        fields = ("bytes_per_pixel", "decode_s_per_mpx", "rendition_s_per_mpx", "rendition_s")
        values = ", ".join(f"{getattr(group, f)[0]:.4g}" for f in fields)
        sources = ", ".join(f"{f}: {getattr(group, f)[1]}" for f in fields)
        lines.append(f"{group.name} = Cost({values})  # {sources}")
    return lines + coverage(rows)


def coverage(rows: list[Measured]) -> list[str]:
    """How the guard's constants, as committed, compare with what was just measured."""
    from pipeline.program import guards

    memory, cpu = [], []
    for r in rows:
        if not r.outcome.startswith("ok"):
            continue
        cost = guards.ANIMATED if _animated(r.kind) else guards.STILL
        memory.append((guards.model_memory_mb(cost, r.pixels) / r.peak_mb, r))
        cpu.append((guards.model_cpu_s(cost, r.pixels, RENDITIONS[r.profile]) / r.cpu_s, r))
    lines = [
        "",
        "The committed constants (pipeline/program/guards.py, before margins) against these runs:",
    ]
    for what, ratios in (("memory", memory), ("CPU time", cpu)):
        ratio, r = min(ratios, key=lambda pair: pair[0])
        lines.append(
            f"- {what}: model / measured is at least {ratio:.2f} "
            f"({r.kind} {r.pixels / 1e6:.0f} Mpx {r.profile}); "
            f"{sum(1 for x, _ in ratios if x < 1)} of {len(ratios)} points under 1"
        )
    return lines


RESULTS = CACHE / "results.json"


def run(kinds: list[Kind], sizes: list[int], rounds: int) -> list[Measured]:
    """Every case `rounds` times, round after round: a noisy spell hits all cases alike."""
    if not _pinned():
        print("taskset not found: the children are not pinned to one core", file=sys.stderr)
    rows: list[Measured] = []
    for number in range(rounds):
        for kind in kinds:
            for mpx in sizes:
                for profile in PROFILES:
                    row = measure(kind, mpx, profile)
                    print(
                        f"round {number + 1}: {kind.name} {mpx} Mpx {profile}: "
                        f"{row.peak_mb:.0f} MB, {row.cpu_s:.2f} CPU s, {row.outcome}",
                        file=sys.stderr,
                        flush=True,
                    )
                    rows.append(row)
    RESULTS.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    return rows


def combine(rows: list[Measured]) -> list[Measured]:
    """One row per case: the highest peak (memory barely varies), the median CPU time (a
    shared machine's noise mostly adds)."""
    cases: dict[tuple[str, int, str], list[Measured]] = {}
    for r in rows:
        cases.setdefault((r.kind, r.mpx, r.profile), []).append(r)
    return [
        dataclasses.replace(
            same[0],
            peak_mb=max(r.peak_mb for r in same),
            cpu_s=statistics.median(r.cpu_s for r in same),
        )
        for same in cases.values()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sizing")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "PROFILE"), help=argparse.SUPPRESS)
    parser.add_argument("--animated", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES_MPX)), help="Mpx, e.g. 4,12")
    parser.add_argument("--kinds", default=",".join(k.name for k in KINDS))
    parser.add_argument("--rounds", type=int, default=1, help="measure every case N times")
    parser.add_argument("--refit", action="store_true", help=f"fit {RESULTS} again, no runs")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.animated)
        return 0
    kinds = [k for k in KINDS if k.name in args.kinds.split(",")]
    if args.refit:
        rows = [Measured(**r) for r in json.loads(RESULTS.read_text())]
        kinds = [k for k in kinds if any(r.kind == k.name for r in rows)]
    else:
        rows = run(kinds, [int(s) for s in args.sizes.split(",")], args.rounds)
    rows = combine(rows)
    print("\n".join(table(rows)))
    print()
    print("\n".join(constants(rows, [fit(kind, rows) for kind in kinds])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
