"""Input formats: recognised from the bytes, opened through an allow-list.

The key's extension is never consulted. HEIC/HEIF support (pillow-heif) is registered only
when the bytes are HEIF, so its import never slows the cold start of JPEG-only traffic.
"""

from __future__ import annotations

import importlib
import io
import struct
import zlib
from collections.abc import Callable

from PIL import Image

from lambda_pkg import headers

# Profile names -> Pillow's format identifiers, for the open() allow-list.
PILLOW_FORMATS = {
    "jpeg": ("JPEG", "MPO"),  # MPO: phones' multi-picture JPEG; the first picture is the photo
    "png": ("PNG",),  # APNG included: Pillow opens it as an animated PNG
    "gif": ("GIF",),
    "webp": ("WEBP",),
    "tiff": ("TIFF",),
    "bmp": ("BMP",),
    "avif": ("AVIF",),
    "heic": ("HEIF",),
}
# ISO-BMFF brands of HEIF still images (iPhone photos are `heic`); AVIF has its own opener.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


def looks_like_heif(data: bytes) -> bool:
    if data[4:8] != b"ftyp":
        return False
    brand = data[8:12]
    if brand in (b"avif", b"avis"):
        return False
    return brand in _HEIF_BRANDS


# BMP's DIB header sizes (core, v2..v5): "BM" alone also starts plenty of text.
_BMP_HEADERS = {12, 16, 40, 52, 56, 64, 108, 124}
# Each input format's first bytes: a file that starts like an allowed format but does not
# open is a damaged one, which its error should say, not "not an image".
_STARTS_LIKE: dict[str, Callable[[bytes], bool]] = {
    "jpeg": lambda data: data[:3] == b"\xff\xd8\xff",
    "png": lambda data: data[:8] == b"\x89PNG\r\n\x1a\n",
    "gif": lambda data: data[:6] in (b"GIF87a", b"GIF89a"),
    "webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
    "tiff": lambda data: data[:4] in (b"II*\x00", b"MM\x00*"),
    "bmp": lambda data: data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADERS,
    "avif": lambda data: data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"),
    "heic": looks_like_heif,
}


def starts_like(data: bytes, input_formats: tuple[str, ...]) -> str | None:
    """The allowed format whose signature the bytes begin with, whether or not they open."""
    return next((fmt for fmt in input_formats if _STARTS_LIKE[fmt](data)), None)


def _register_heif() -> None:
    if "HEIF" not in Image.OPEN:
        import pillow_heif  # in the layer; imported on first HEIF input only

        pillow_heif.register_heif_opener()


def _register_decoder_for(data: bytes, input_formats: tuple[str, ...]) -> None:
    """Import only the Pillow plugin these bytes need. Image.preinit() registers JPEG (which
    opens MPO itself), PNG, GIF and BMP; WebP, TIFF and AVIF each load a C library, and an
    unused one costs every cold start time and memory."""
    Image.preinit()
    plugin = None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        plugin = "WebPImagePlugin"
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        plugin = "TiffImagePlugin"
    elif data[4:8] == b"ftyp":
        plugin = "AvifImagePlugin"  # AVIF may carry a generic brand (mif1): let Pillow decide
        if "heic" in input_formats and looks_like_heif(data):
            _register_heif()
    if plugin is not None:
        importlib.import_module(f"PIL.{plugin}")


def allowed_openers(data: bytes, input_formats: tuple[str, ...]) -> list[str]:
    """Pillow format names open() may try for these bytes under this allow-list."""
    _register_decoder_for(data, input_formats)
    return [n for fmt in input_formats for n in PILLOW_FORMATS[fmt] if n in Image.OPEN]


def open_image(data: bytes, input_formats: tuple[str, ...]) -> Image.Image:
    """Image.open restricted to the profile's formats; raises Pillow's own errors."""
    return Image.open(io.BytesIO(data), formats=allowed_openers(data, input_formats))


def profile_format(pillow_format: str | None) -> str | None:
    for name, pillow_names in PILLOW_FORMATS.items():
        if pillow_format in pillow_names:
            return name
    return None


def png_damage(data: bytes) -> str | None:
    """What is wrong with a PNG's chunk structure, or None. Pillow stops reading once it has
    every row, so a file cut after its last row (before the zlib checksum and IEND) would
    otherwise come out as a picture. Pillow skips IDAT's CRCs: they are checked on the way,
    a few milliseconds per 10 MB."""
    for at, length, kind in headers.png_chunk_spans(data):
        end = at + 8 + length
        if end + 4 > len(data):
            break
        (stored,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[at + 4 : end]) != stored:
            return f"PNG chunk {kind.decode('latin-1')!r} at byte {at:,} fails its CRC"
        if kind == b"IEND":
            return None
    return f"the PNG ends at byte {len(data):,} without its IEND chunk (the file is truncated)"
