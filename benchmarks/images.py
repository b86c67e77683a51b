"""The benchmark's inputs, generated in code (nothing is downloaded) and cached on disk."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

CACHE = Path(__file__).resolve().parent.parent / ".build" / "bench"
SIZES = {"12mp": (4000, 3000), "24mp": (6000, 4000)}


def synthetic_photo(width: int, height: int) -> Image.Image:
    """Gradients, coarse and fine noise, hard-edged shapes: detail a resize must keep."""
    ramp = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    coarse = Image.effect_noise((width // 4, height // 4), 40).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    fine = Image.effect_noise((width, height), 12)
    rgb = Image.merge("RGB", (ramp, radial, Image.blend(coarse, fine, 0.3)))
    draw = ImageDraw.Draw(rgb)
    step = width // 16
    for i in range(0, width, step):
        draw.ellipse(
            (i, height // 3, i + width // 24, height // 3 + width // 24), fill=(250, 220, 30)
        )
    draw.rectangle((width // 3, height // 2, width // 2, height - 1), fill=(20, 40, 200))
    return rgb


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def ensure() -> dict[str, Path]:
    """name -> file: 12mp.jpg, 24mp.jpg, 12mp.png, 12mp.heic, 12mp-thumb.heic."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wanted = {
        "12mp.jpg": ("12mp", "JPEG", {"quality": 90}),
        "24mp.jpg": ("24mp", "JPEG", {"quality": 90}),
        "12mp.png": ("12mp", "PNG", {"compress_level": 1}),
        "12mp.heic": ("12mp", "HEIF", {"quality": 90}),
        # As an iPhone writes it: a 320x240 thumbnail embedded next to the photo.
        "12mp-thumb.heic": ("12mp", "HEIF", {"quality": 90, "thumbnails": [320]}),
    }
    paths = {}
    photos: dict[str, Image.Image] = {}
    for name, (size, fmt, params) in wanted.items():
        path = CACHE / name
        if not path.exists():
            if fmt == "HEIF":
                import pillow_heif

                pillow_heif.register_heif_opener()
            if size not in photos:
                photos[size] = synthetic_photo(*SIZES[size])
            path.write_bytes(_encode(photos[size], fmt, **params))
        paths[name] = path
    return paths
