"""The benchmark's inputs: camera-sized frames of real photographs, made at run time.

The photographs are the colour ones scikit-image ships inside its wheel (`skimage/data/`).
The wheel is fetched with `pip download` (pinned in requirements/bench-photos.txt) and read
as the zip it is: scikit-image is never installed or imported, so none of its dependencies
(scipy, ...) come along. Each frame is a mosaic of crops of those photos at their native
resolution, so every pixel neighbourhood holds real photographic detail (noise, texture,
edges, flat sky): an upscaled photo or a gradient is smooth at pixel level, which flatters
any resize. Frames are encoded as a camera would (JPEG q92, 4:2:0), plus one PNG at
compress_level 6 (what most tools write), and cached in .build/bench/.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".build" / "bench"
PHOTOS_PIN = ROOT / "requirements" / "bench-photos.txt"
# Colour photographs only (the rest of skimage/data is greyscale, synthetic or microscopy).
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
)
# 3 MP is 2000x1500 on purpose: 1500 / 8 is not whole, so a draft's rounding shows.
FRAMES = {"3mp": (2000, 1500), "12mp": (4000, 3000), "24mp": (6000, 4000), "48mp": (8000, 6000)}
PIP_DOWNLOAD = (
    sys.executable,
    "-m",
    "pip",
    "download",
    "--quiet",
    "--no-deps",
    "--only-binary=:all:",
)
SEED = 14  # one fixed layout: the same bytes on every machine with the same Pillow


def photo_wheel() -> Path:
    """The pinned scikit-image wheel, downloaded once (pip, --no-deps) into the cache."""
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob("scikit_image-*.whl"))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*PIP_DOWNLOAD, "--dest", str(wheels), "-r", str(PHOTOS_PIN)],
        check=True,
    )
    return sorted(wheels.glob("scikit_image-*.whl"))[-1]


def photos(wheel: Path | None = None) -> list[Image.Image]:
    """The shipped colour photos, decoded to RGB, in PHOTOS order."""
    with zipfile.ZipFile(wheel or photo_wheel()) as archive:
        return [
            Image.open(io.BytesIO(archive.read(f"skimage/data/{name}"))).convert("RGB")
            for name in PHOTOS
        ]


def mosaic(width: int, height: int, sources: list[Image.Image], seed: int = SEED) -> Image.Image:
    """Rows of random height, each filled with random crops of random photos (mirrored at
    random): native pixels everywhere, no cell grid repeating at a fixed pitch."""
    rng = random.Random(seed)
    frame = Image.new("RGB", (width, height))
    shortest = min(p.height for p in sources)
    y = 0
    while y < height:
        row = rng.randint(min(240, shortest), shortest)
        x = 0
        while x < width:
            photo = rng.choice(sources)
            cell = rng.randint(min(240, photo.width), photo.width)
            left = rng.randint(0, photo.width - cell)
            top = rng.randint(0, photo.height - row)
            tile = photo.crop((left, top, left + cell, top + row))
            if rng.random() < 0.5:
                tile = ImageOps.mirror(tile)
            frame.paste(tile, (x, y))
            x += cell
        y += row
    return frame


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


WANTED = {
    **{f"{size}.jpg": (size, "JPEG") for size in FRAMES},
    "12mp.png": ("12mp", "PNG"),
}
PARAMS: dict[str, dict[str, object]] = {
    # A camera's JPEG: high quality, chroma halved both ways.
    "JPEG": {"quality": 92, "subsampling": "4:2:0"},
    "PNG": {"compress_level": 6},
}


def ensure(names: list[str] | None = None) -> dict[str, Path]:
    """name -> file for 3mp.jpg, 12mp.jpg, 24mp.jpg, 48mp.jpg and 12mp.png (or `names`)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    sources: list[Image.Image] = []
    frames: dict[str, Image.Image] = {}
    for name in names or list(WANTED):
        size, fmt = WANTED[name]
        path = CACHE / name
        if not path.exists():
            sources = sources or photos()
            if size not in frames:
                frames[size] = mosaic(*FRAMES[size], sources)
            partial = path.with_suffix(".partial")
            partial.write_bytes(_encode(frames[size], fmt, **PARAMS[fmt]))
            partial.rename(path)  # an interrupted run never leaves half a file behind
        paths[name] = path
    return paths
