"""Images generated in code for the tests: nothing is downloaded."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A photo-like image: gradients plus shapes, so resizing has real detail to keep."""
    image = Image.linear_gradient("L").resize((width, height))
    red = image
    green = image.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    blue = Image.radial_gradient("L").resize((width, height))
    rgb = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(rgb)
    step = max(8, width // 12)
    for i in range(0, width, step):
        draw.ellipse((i, height // 4, i + step // 2, height // 4 + step // 2), fill=(255, 255, 0))
    draw.rectangle((width // 3, height // 2, width // 2, height - 1), fill=(20, 40, 200))
    return rgb.convert(mode) if mode != "RGB" else rgb


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(width: int, height: int, orientation: int | None = None, **params: object) -> bytes:
    image = photo(width, height)
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif.tobytes()
    return encode(image, "JPEG", quality=90, **params)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    return encode(photo(width, height, mode), "PNG")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims any size: a decompression bomb with no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
