"""imgpipe benchmark: one command, one run, every number the issue asks for.

    make bench        (or: .venv/bin/python -m benchmarks.run [--rounds N])

Times, interleaved call by call (every approach once per pass, the order rotated each
pass) so machine noise hits every approach alike, on the same generated 12 MP / 24 MP
JPEGs, 12 MP PNG, 12 MP HEIC and 12 MP HEIC with a 320 px embedded thumbnail (as iPhones
write them):
  seed       the original pipeline: Image.open, resize to 200 px wide LANCZOS, save JPEG q85
  floor      a bare decode: JPEG at 1/8 scale (draft), other formats in full (for
             12mp-thumb.heic too: its embedded thumbnail is a shortcut, not the photo)
  vips       pyvips (libvips) thumbnail_buffer to 200 px, jpegsave q85
  thumbnail  this project, profiles/thumbnail.yaml, through imaging.process
  thumb-lz   the same profile with the default lanczos kernel instead of its bicubic one
             (shown so the kernel's cost and quality are both on the record)
  vips-deb   the `vips` peer on Debian's libvips (which can decode HEIC), in a child process
             that times itself; skipped when libvips42 is not installed
  web        this project, profiles/web.yaml (7 renditions)
  vips-web   pyvips making the web profile's renditions: one thumbnail per distinct size,
             kept in memory, saved once per format with the same quality/effort settings
Then quality against a full-decode LANCZOS reference, peak RSS of a fresh process per
approach, the handler's cold import time, Lambda cost per million images, and the targets.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.system_vips import ChildMilliseconds, SystemVips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Lambda prices (us-east-1, on-demand, first tier), USD.
PRICE_GB_S = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
PRICE_PER_REQUEST = 0.20 / 1_000_000
# Memory size assumed for cost: 2048 MB (Lambda gives ~1 vCPU per 1769 MB; the encode
# pool uses the second core from 3538 MB, so at 2048 MB multi-rendition times are optimistic).
LAMBDA_MEMORY_MB = 2048


# -- approaches (each: bytes in, encoded bytes or pixels out) ------------------------------


def _pil(data: bytes = b""):
    from PIL import Image

    from lambda_pkg import formats

    if formats.looks_like_heif(data):
        formats._register_heif()  # the peers get HEIC through the same pillow-heif
    return Image


def seed(data: bytes) -> bytes:
    Image = _pil(data)
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    size = (200, max(1, int(height * 200 / width + 0.5)))
    resized = image.resize(size, Image.Resampling.LANCZOS)
    if resized.mode != "RGB":
        resized = resized.convert("RGB")
    out = io.BytesIO()
    resized.save(out, "JPEG", quality=85)
    return out.getvalue()


def floor(data: bytes) -> None:
    image = _pil(data).open(io.BytesIO(data))
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", (image.width // 8, image.height // 8))
    image.load()


def vips(data: bytes) -> bytes:
    import pyvips

    return pyvips.Image.thumbnail_buffer(data, 200).jpegsave_buffer(Q=85, optimize_coding=True)


def _profile(name: str):
    from lambda_pkg.profiles import load_named

    return load_named(name)


def _with_kernel(profile, kernel: str):
    from dataclasses import replace

    renditions = tuple(
        replace(r, resize=replace(r.resize, kernel=kernel)) for r in profile.renditions
    )
    return replace(profile, renditions=renditions)


def ours(name: str, kernel: str | None = None) -> Callable[[bytes], object]:
    from lambda_pkg import imaging

    profile = _profile(name)
    if kernel is not None:
        profile = _with_kernel(profile, kernel)
    return lambda data: imaging.process(data, profile)


def vips_web(data: bytes) -> list[bytes]:
    import pyvips

    groups: dict[tuple, list] = {}
    for r in _profile("web").renditions:
        groups.setdefault((r.resize.mode, r.resize.width, r.resize.height), []).append(r)
    outputs = []
    for (mode, width, height), renditions in groups.items():
        if mode == "cover":
            image = pyvips.Image.thumbnail_buffer(data, width, height=height, crop="centre")
        else:
            image = pyvips.Image.thumbnail_buffer(data, width, height=10_000_000)
        image = image.copy_memory()  # decode once per size, save in every format from memory
        for r in renditions:
            if r.format == "webp":
                outputs.append(image.webpsave_buffer(Q=r.quality, effort=r.method))
            else:
                outputs.append(image.jpegsave_buffer(Q=r.quality, optimize_coding=r.optimize))
    return outputs


FACTORIES: dict[str, Callable[[], Callable[[bytes], object]]] = {
    "seed": lambda: seed,
    "floor": lambda: floor,
    "vips": lambda: vips,
    "thumbnail": lambda: ours("thumbnail"),
    "thumb-lz": lambda: ours("thumbnail", "lanczos"),
    "vips-deb": SystemVips,
    "web": lambda: ours("web"),
    "vips-web": lambda: vips_web,
}


def approaches() -> dict[str, Callable[[bytes], object]]:
    made = {}
    for name, make in FACTORIES.items():
        try:
            made[name] = make()
        except RuntimeError as exc:  # vips-deb without the system library
            print(f"  ({name} skipped: {exc})")
        else:
            if isinstance(made[name], SystemVips):
                print(f"  ({name}: the system's libvips {made[name].version}, in a child process)")
    return made


# -- measurements -------------------------------------------------------------------------


@dataclass
class Timings:
    """Per (image, approach): every sample, and each round's median (the same round's
    approaches ran back to back, so a ratio within a round cancels slow machine drift)."""

    samples: dict[tuple[str, str], list[float]]
    per_round: dict[tuple[str, str], list[float]]

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.samples

    def ms(self, image: str, approach: str) -> float:
        return statistics.median(self.samples[(image, approach)])

    def ratio(self, image: str, numerator: str, denominator: str) -> float:
        """The median over rounds of numerator/denominator measured in that round."""
        pairs = zip(
            self.per_round[(image, numerator)], self.per_round[(image, denominator)], strict=True
        )
        return statistics.median(a / b for a, b in pairs)


def time_all(files: dict[str, Path], rounds: int) -> Timings:
    runs = approaches()
    datas = {name: path.read_bytes() for name, path in files.items()}
    timings = Timings({}, {})
    for image, data in datas.items():
        for approach, run in runs.items():
            try:
                run(data)  # warm: imports, caches, thread pool
                timings.samples[(image, approach)] = []
                timings.per_round[(image, approach)] = []
            except Exception as exc:  # e.g. a peer without a decoder for this format
                print(f"  ({approach} cannot process {image}: {type(exc).__name__}: {exc})")
    names = list(runs)
    turn = 0
    for _ in range(rounds):
        for image, data in datas.items():
            count = 1 if image != "12mp.jpg" else 5  # the headline input gets more samples
            this_round: dict[str, list[float]] = {a: [] for a in names if (image, a) in timings}
            for _ in range(count):
                # Every approach once per pass, so a pair compared within a round ran
                # moments apart; the order rotates each pass so no approach always runs
                # right after the same peer (whose caches and threads it would inherit).
                shift = turn % len(names)
                turn += 1
                for approach in names[shift:] + names[:shift]:
                    if approach not in this_round:
                        continue
                    start = time.perf_counter()
                    result = runs[approach](data)
                    elapsed = (time.perf_counter() - start) * 1000
                    if isinstance(result, ChildMilliseconds):
                        elapsed = float(result)  # the child's own timer: no pipe copy
                    this_round[approach].append(elapsed)
            for approach, values in this_round.items():
                timings.samples[(image, approach)] += values
                timings.per_round[(image, approach)].append(statistics.median(values))
    return timings


def _psnr_ssim(a, b) -> tuple[float, float]:
    import numpy as np

    x = np.asarray(a.convert("L" if a.mode == "L" else "RGB"), dtype=np.float64)
    y = np.asarray(b.convert(a.mode if a.mode == "L" else "RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    # SSIM on luma with 8x8 windows (Wang et al. constants), mean over windows.
    wx = np.asarray(a.convert("L"), dtype=np.float64)
    wy = np.asarray(b.convert("L"), dtype=np.float64)
    h, w = (wx.shape[0] // 8) * 8, (wx.shape[1] // 8) * 8
    bx = wx[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 64)
    by = wy[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 64)
    mx, my = bx.mean(1), by.mean(1)
    vx, vy = bx.var(1), by.var(1)
    cov = ((bx - mx[:, None]) * (by - my[:, None])).mean(1)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return psnr, float(ssim.mean())


def quality(path: Path) -> dict[str, tuple[float, float]]:
    """Resize fidelity: each approach's 200 px pixels (lossless PNG out) against the seed's
    full decode + LANCZOS; and the encoded JPEG q85 outputs against the reference's."""
    from dataclasses import replace

    import pyvips

    from lambda_pkg import imaging

    data = path.read_bytes()
    Image = _pil(data)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    size = (200, int(full.height * 200 / full.width + 0.5))
    reference = full.resize(size, Image.Resampling.LANCZOS)
    thumbnail = _profile("thumbnail")
    lossless = replace(
        thumbnail, renditions=(replace(thumbnail.renditions[0], format="png", quality=85),)
    )
    (ours_png,) = imaging.process(data, lossless)[1]
    (lanczos_png,) = imaging.process(data, _with_kernel(lossless, "lanczos"))[1]
    vips_png = pyvips.Image.thumbnail_buffer(data, 200).pngsave_buffer()
    ref_jpeg = io.BytesIO()
    reference.save(ref_jpeg, "JPEG", quality=85, optimize=True)
    (ours_jpeg,) = imaging.process(data, thumbnail)[1]
    (lanczos_jpeg,) = imaging.process(data, _with_kernel(thumbnail, "lanczos"))[1]

    def load(raw: bytes):
        return Image.open(io.BytesIO(raw)).convert("RGB")

    return {
        "thumbnail pixels": _psnr_ssim(load(ours_png.data), reference),
        "thumb-lz pixels": _psnr_ssim(load(lanczos_png.data), reference),
        "vips pixels": _psnr_ssim(load(vips_png), reference),
        "thumbnail jpeg vs reference jpeg": _psnr_ssim(
            load(ours_jpeg.data), load(ref_jpeg.getvalue())
        ),
        # What a viewer sees: each delivered q85 JPEG against the reference's pixels. The
        # reference's own JPEG is the line to compare with (the encode's error alone).
        "thumbnail jpeg vs reference pixels": _psnr_ssim(load(ours_jpeg.data), reference),
        "thumb-lz jpeg vs reference pixels": _psnr_ssim(load(lanczos_jpeg.data), reference),
        "reference jpeg vs reference pixels": _psnr_ssim(load(ref_jpeg.getvalue()), reference),
    }


def peak_rss_mb(approach: str, path: Path) -> float:
    """Peak RSS (VmHWM) of a fresh interpreter that imports, reads the file and runs once.

    Read by the child itself: a fork of this (large) parent would report the parent's pages.
    """
    out = subprocess.check_output(
        [sys.executable, "-m", "benchmarks.run", "--child", approach, str(path)],
        cwd=ROOT,
        text=True,
    )
    return int(out.split()[-1]) / 1024  # kB


def child(approach: str, path: str) -> None:
    if approach == "baseline":  # the interpreter, Pillow and the project, no image work
        _pil()
        import lambda_pkg.imaging  # noqa: F401

        Path(path).read_bytes()
    else:
        FACTORIES[approach]()(Path(path).read_bytes())  # imports only what it uses
    status = Path("/proc/self/status").read_text()
    print(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


def cold_import_ms(samples: int = 5) -> float:
    code = (
        "import time; t=time.perf_counter(); import lambda_pkg.handler; "
        "print((time.perf_counter()-t)*1000)"
    )
    values = [
        float(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, text=True))
        for _ in range(samples)
    ]
    return statistics.median(values)


def cost_per_million(ms: float) -> dict[str, float]:
    gb_s = ms / 1000 * LAMBDA_MEMORY_MB / 1024
    return {arch: 1e6 * (gb_s * price + PRICE_PER_REQUEST) for arch, price in PRICE_GB_S.items()}


# -- report -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--child", nargs=2, metavar=("APPROACH", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    import PIL
    import pyvips

    from benchmarks.images import ensure

    print(
        f"imgpipe benchmark: Python {sys.version.split()[0]}, Pillow {PIL.__version__}, "
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
        f"{os.cpu_count()} cores, {args.rounds} interleaved rounds"
    )
    files = ensure()
    times = time_all(files, args.rounds)

    print("\nmedian ms per image")
    names = ["seed", "floor", "vips", "vips-deb", "thumbnail", "thumb-lz", "web", "vips-web"]
    print(f"{'image':<16}" + "".join(f"{n:>11}" for n in names))
    for image in files:
        row = [
            f"{times.ms(image, n):11.1f}" if (image, n) in times else f"{'n/a':>11}" for n in names
        ]
        print(f"{image:<16}" + "".join(row))
    print(
        "\nratios: the median over rounds of the ratio within each round (approaches in a round"
        "\nrun back to back, so drift in machine speed cancels); peer/ours > 1 means ours is faster"
    )
    for ours_name in ("thumbnail", "thumb-lz"):
        print(f"\n`{ours_name}`")
        print(
            f"  {'image':<16}{'seed/ours':>12}{'vips/ours':>12}{'vips-deb/ours':>15}"
            f"{'ours/floor':>12}"
        )
        for image in files:
            peers = [
                f"{times.ratio(image, peer, ours_name):{width - 1}.2f}x"
                if (image, peer) in times
                else f"{'n/a':>{width}}"
                for peer, width in (("vips", 12), ("vips-deb", 15))
            ]
            print(
                f"  {image:<16}{times.ratio(image, 'seed', ours_name):11.2f}x{''.join(peers)}"
                f"{times.ratio(image, ours_name, 'floor'):11.2f}x"
            )
    print("\n`web`")
    print(f"  {'image':<16}{'vips-web/web':>14}")
    for image in files:
        if (image, "vips-web") in times:
            print(f"  {image:<16}{times.ratio(image, 'vips-web', 'web'):13.2f}x")

    print("\nquality on 12mp.jpg against full decode + LANCZOS to 200 px (PSNR dB, SSIM)")
    scores = quality(files["12mp.jpg"])
    for name, (psnr, ssim) in scores.items():
        print(f"  {name:<34}{psnr:8.2f} dB  SSIM {ssim:.4f}")

    print("\npeak RSS, fresh process per approach, 24mp.jpg (MB)")
    rss = {a: peak_rss_mb(a, files["24mp.jpg"]) for a in ("baseline", "seed", "vips", "thumbnail")}
    for approach, value in rss.items():
        above = value - rss["baseline"]
        print(f"  {approach:<10}{value:8.1f} MB   ({above:+.1f} MB over the import-only baseline)")

    cold = cold_import_ms()
    print(
        f"\nhandler cold import (import lambda_pkg.handler, fresh process, median of 5): "
        f"{cold:.0f} ms"
    )

    print(
        f"\nLambda cost per million images ({LAMBDA_MEMORY_MB} MB, this machine's ms, "
        f"$0.20/M requests; arm64 ${PRICE_GB_S['arm64']}/GB-s, x86 ${PRICE_GB_S['x86_64']}/GB-s)"
    )
    for approach in ("seed", "vips", "thumbnail", "web", "vips-web"):
        cost = cost_per_million(times.ms("12mp.jpg", approach))
        print(
            f"  {approach:<10} 12mp.jpg  arm64 ${cost['arm64']:8.2f}   x86 ${cost['x86_64']:8.2f}"
        )

    headline = "12mp.jpg"
    seed_x = times.ratio(headline, "seed", "thumbnail")
    vips_x = times.ratio(headline, "vips", "thumbnail")
    floor_x = times.ratio(headline, "thumbnail", "floor")
    floor_of_medians = times.ms(headline, "thumbnail") / times.ms(headline, "floor")
    web_x = times.ratio(headline, "web", "vips-web")
    psnr = scores["thumbnail pixels"][0]
    rss_share = rss["thumbnail"] / rss["seed"]
    targets = [
        ("thumbnail >= 5x faster than seed (12mp.jpg)", f"{seed_x:.2f}x", seed_x >= 5),
        ("thumbnail no slower than pyvips (12mp.jpg)", f"vips/ours {vips_x:.2f}x", vips_x >= 1),
        (
            "thumbnail within 1.2x of bare 1/8 decode (12mp.jpg)",
            f"{floor_x:.2f}x; ratio of the medians {floor_of_medians:.2f}x",
            floor_x <= 1.2,
        ),
        ("thumbnail PSNR >= 40 dB (pixels)", f"{psnr:.2f} dB", psnr >= 40),
        ("web >= 20% faster than pyvips (12mp.jpg)", f"web/vips-web {web_x:.2f}x", web_x <= 0.8),
        (
            "thumbnail peak RSS (24mp) <= 1/4 of seed's",
            f"{rss['thumbnail']:.1f} of {rss['seed']:.1f} MB = {rss_share:.2f}",
            rss_share <= 0.25,
        ),
    ]
    print("\ntargets")
    for label, value, ok in targets:
        print(f"  [{'PASS' if ok else 'FAIL'}] {label}: {value}")
    return 0 if all(ok for _, _, ok in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
