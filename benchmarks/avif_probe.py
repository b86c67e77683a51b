"""What AVIF costs per image, against WebP and JPEG at matched quality (issue 15).

    .venv/bin/python -m benchmarks.avif_probe [--rounds 3] [--speed 8 6] [FILE]

Pinned to one core (Lambda's `web` function has 0.87 of a vCPU). The 12 MP photo mosaic
of `make bench` (or FILE) is resized once per width of the `web` profile (1600, 800, 320,
LANCZOS), then each picture is encoded as JPEG q82, WebP q80 and AVIF at qualities 50-80
and each `--speed`. Printed per encode: bytes, the median CPU milliseconds over the rounds
(`time.process_time`: the encode's own CPU, which a busy shared machine does not inflate
the way it does wall time), and PSNR/SSIM of the decoded encode against the resized
picture, so AVIF's bytes can be read at the quality WebP q80 gives. profiles/web.yaml
quotes the run that decided it carries no AVIF.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from benchmarks import quality, timing

WIDTHS = (1600, 800, 320)
AVIF_QUALITIES = (50, 60, 70, 80)


def _encode(picture: object, fmt: str, options: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)  # type: ignore[attr-defined]
    return buffer.getvalue()


def _cpu_ms(picture: object, fmt: str, options: dict[str, object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        _encode(picture, fmt, options)
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def encodings(speeds: list[int]) -> list[tuple[str, dict[str, object]]]:
    """What is compared: the web profile's JPEG and WebP, and AVIF over qualities x speeds."""
    chosen: list[tuple[str, dict[str, object]]] = [
        ("JPEG", {"quality": 82, "optimize": True, "subsampling": "4:2:0"}),
        ("WEBP", {"quality": 80, "method": 4}),
    ]
    for speed in speeds:
        chosen += [("AVIF", {"quality": q, "speed": speed}) for q in AVIF_QUALITIES]
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, help="a photo (default: the 12 MP mosaic)")
    parser.add_argument("--rounds", type=int, default=3, help="encodes timed per format")
    parser.add_argument("--speed", type=int, nargs="+", default=[8, 6], help="AVIF speeds")
    args = parser.parse_args()
    timing.pin(1)
    from PIL import Image  # after pinning: libavif sizes its threads from the CPUs allowed

    from benchmarks.images import ensure

    path = args.file or ensure(["12mp.jpg"])["12mp.jpg"]
    source = Image.open(path).convert("RGB")
    for width in WIDTHS:
        picture = source.resize((width, round(source.height * width / source.width)), Image.LANCZOS)
        reference = quality.decode(_encode(picture, "PNG", {"compress_level": 1}))
        for fmt, options in encodings(args.speed):
            data = _encode(picture, fmt, options)
            score = quality.score(quality.decode(data), reference)
            ms = _cpu_ms(picture, fmt, options, args.rounds)
            described = " ".join(f"{k}={v}" for k, v in options.items())
            print(
                f"{width:5d} {fmt:4s} {described:42s} {len(data):9,d} B {ms:8.1f} ms "
                f"PSNR {score.psnr:5.2f} SSIM {score.ssim:.4f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
