"""Sample images made on the spot, for the demo and the tests: nothing is downloaded.

A separate package because it needs Pillow and `pipeline/` never imports Pillow: the CLI
runs `python -m imgpipe_samples DIR`, which writes the files and prints a JSON manifest.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

ORIENTATION_TAG = 0x0112


def photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A photo-like image: gradients plus shapes, so resizing has real detail to keep."""
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((width, height))
    blue = Image.radial_gradient("L").resize((width, height))
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    step = max(8, width // 12)
    for x in range(0, width, step):
        draw.ellipse((x, height // 4, x + step // 2, height // 4 + step // 2), fill=(255, 255, 0))
    draw.rectangle((width // 3, height // 2, width // 2, height - 1), fill=(20, 40, 200))
    return image.convert(mode) if mode != "RGB" else image


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()


def _stored_for(upright: Image.Image, orientation: int) -> Image.Image:
    """How a camera stores an upright scene for this EXIF orientation."""
    inverse = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }
    return upright.transpose(inverse[orientation]) if orientation in inverse else upright


@dataclass(frozen=True)
class Sample:
    file: str
    description: str
    expect: str  # "ok" or "failed"


def alpha_photo(width: int, height: int) -> Image.Image:
    """RGBA: the photo inside an ellipse, transparent around it."""
    image = photo(width, height).convert("RGBA")
    mask = Image.new("L", image.size, 0)
    inset = min(width, height) // 12
    ImageDraw.Draw(mask).ellipse((inset, inset, width - inset, height - inset), fill=255)
    image.putalpha(mask)
    return image


def alpha_png(width: int, height: int) -> bytes:
    """An RGBA PNG: the photo inside an ellipse, transparent around it."""
    return encode(alpha_photo(width, height), "PNG")


def sixteen_bit_photo(width: int, height: int) -> Image.Image:
    """16-bit greyscale (I;16) using the whole 0..65535 range."""
    grey = photo(width, height).convert("L").convert("I").point(lambda v: v * 257)
    return grey.convert("I;16")


def sixteen_bit_png(width: int, height: int) -> bytes:
    """A 16-bit greyscale PNG using the whole 0..65535 range."""
    return encode(sixteen_bit_photo(width, height), "PNG")


def _heic(image: Image.Image) -> bytes:
    import pillow_heif  # the layer ships it; registering lets Pillow write HEIF too

    pillow_heif.register_heif_opener()
    return encode(image, "HEIF", quality=80)


def samples() -> dict[str, tuple[str, str, bytes]]:
    """file name -> (description, expected status, bytes)."""
    portrait = photo(1080, 1920)
    return {
        "photo.jpg": (
            "1920x1080 JPEG, the seed's example",
            "ok",
            encode(photo(1920, 1080), "JPEG", quality=90),
        ),
        "landscape 12MP.jpg": (
            "4000x3000 JPEG, name with a space",
            "ok",
            encode(photo(4000, 3000), "JPEG", quality=88),
        ),
        "portrait-rotated.jpg": (
            "1080x1920 scene stored sideways, EXIF orientation 6",
            "ok",
            encode(_stored_for(portrait, 6), "JPEG", quality=90, exif=exif_with_orientation(6)),
        ),
        "upside-down.jpg": (
            "1600x1200 scene stored upside down, EXIF orientation 3",
            "ok",
            encode(
                _stored_for(photo(1600, 1200), 3), "JPEG", quality=90, exif=exif_with_orientation(3)
            ),
        ),
        "progressive.jpg": (
            "2048x1365 progressive JPEG",
            "ok",
            encode(photo(2048, 1365), "JPEG", quality=85, progressive=True),
        ),
        "cmyk.jpg": (
            "1200x800 CMYK JPEG (print workflow)",
            "ok",
            encode(photo(1200, 800, "CMYK"), "JPEG", quality=90),
        ),
        "logo-alpha.png": ("800x600 RGBA PNG with transparency", "ok", alpha_png(800, 600)),
        "scan-16bit.png": ("640x480 16-bit greyscale PNG", "ok", sixteen_bit_png(640, 480)),
        "palette.gif": ("500x400 palette GIF", "ok", encode(photo(500, 400).convert("P"), "GIF")),
        "iphone.heic": ("1512x2016 HEIC, as an iPhone takes it", "ok", _heic(photo(1512, 2016))),
        "scan.tiff": (
            "1000x700 TIFF (LZW)",
            "ok",
            encode(photo(1000, 700), "TIFF", compression="tiff_lzw"),
        ),
        "banner.webp": ("1600x400 WebP", "ok", encode(photo(1600, 400), "WEBP", quality=85)),
        "tiny.jpg": (
            "64x48 JPEG, smaller than every rendition (never upscaled)",
            "ok",
            encode(photo(64, 48), "JPEG"),
        ),
        "broken.jpg": (
            "a JPEG cut off after 2 KB",
            "failed",
            encode(photo(1200, 900), "JPEG", quality=90)[:2048],
        ),
        "notes.png": (
            "a text file with an image name",
            "failed",
            b"shopping list: milk, eggs\n" * 10,
        ),
    }


def write(directory: Path) -> list[Sample]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (description, expect, data) in samples().items():
        (directory / name).write_bytes(data)
        written.append(Sample(file=name, description=description, expect=expect))
    return written


def manifest(directory: Path) -> list[dict[str, str]]:
    return [asdict(sample) for sample in write(directory)]
