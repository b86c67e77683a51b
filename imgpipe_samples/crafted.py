"""Files Pillow cannot write itself, written by hand: a TIFF of any structure (48-bit RGB,
thousands of IFDs or strips), and a CMYK ICC profile (LittleCMS cannot create one).

Used by the sizing benchmark (benchmarks/sizing.py) and the hostile shapes
(reliability/hostile_costs.py); deterministic, no randomness, nothing downloaded.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from array import array
from collections.abc import Sequence
from functools import cache

from PIL import Image, ImageCms

# TIFF field types: the struct code and size of one value.
BYTE, ASCII, SHORT, LONG, UNDEFINED = 1, 2, 3, 4, 7
_TYPES = {BYTE: "B", ASCII: "B", SHORT: "H", LONG: "I", UNDEFINED: "B"}
# Baseline tags used below.
WIDTH, HEIGHT, BITS, COMPRESSION, PHOTOMETRIC = 256, 257, 258, 259, 262
STRIP_OFFSETS, ORIENTATION, SAMPLES, ROWS_PER_STRIP, STRIP_BYTES = 273, 274, 277, 278, 279
PLANAR, ICC_PROFILE = 284, 34675
NO_COMPRESSION, ADOBE_DEFLATE = 1, 8

Entry = tuple[int, int, Sequence[int] | bytes]  # (tag, type, values)


class Tiff:
    """A little-endian TIFF assembled front to back: blobs first, then the IFDs that point
    at them, each IFD linked from the one before."""

    def __init__(self) -> None:
        self.out = bytearray(b"II*\x00\x00\x00\x00\x00")
        self._link = 4  # where the next IFD's offset goes

    def blob(self, data: bytes) -> int:
        if len(self.out) % 2:
            self.out += b"\x00"  # TIFF offsets are word-aligned
        offset = len(self.out)
        self.out += data
        return offset

    def ifd(self, entries: Sequence[Entry]) -> int:
        packed = []
        for tag, kind, values in sorted(entries, key=lambda e: e[0]):
            raw = values if isinstance(values, bytes) else _pack(kind, values)
            count = len(raw) // struct.calcsize(_TYPES[kind])
            field = raw.ljust(4, b"\x00") if len(raw) <= 4 else struct.pack("<I", self.blob(raw))
            packed.append(struct.pack("<HHI", tag, kind, count) + field)
        offset = self.blob(struct.pack("<H", len(packed)) + b"".join(packed) + b"\x00" * 4)
        struct.pack_into("<I", self.out, self._link, offset)
        self._link = offset + 2 + 12 * len(packed)
        return offset

    def chain(self, entries: Sequence[Entry], count: int) -> None:
        """`count` identical IFDs, each linked to the next, written as one block (copies
        share any out-of-line values; only their next-IFD offsets differ)."""
        first = self.ifd(entries)
        one = bytes(self.out[first:])
        size = len(one)
        copies = bytearray(one * (count - 1))  # the template's next-IFD offset is 0
        if count > 1:
            struct.pack_into("<I", self.out, first + size - 4, first + size)
        for index in range(1, count - 1):
            struct.pack_into("<I", copies, index * size - 4, first + (index + 1) * size)
        self.out += copies
        self._link = first + count * size - 4

    def bytes(self) -> bytes:
        return bytes(self.out)


def _pack(kind: int, values: Sequence[int]) -> bytes:
    return array(_TYPES[kind], values).tobytes()  # little-endian on x86/arm64 hosts


def tiff_rgb48(
    image: Image.Image, orientation: int = 1, icc: bytes | None = None, rows: int = 64
) -> bytes:
    """`image` (RGB) as a 16-bit-per-sample RGB TIFF, deflate strips of `rows` rows."""
    width, height = image.size
    tiff = Tiff()
    offsets, counts = [], []
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows))).tobytes()
        # 8 -> 16 bits by repeating each byte (v * 257): the whole 0..65535 range is used.
        wide = bytearray(2 * len(band))
        wide[0::2], wide[1::2] = band, band
        strip = zlib.compress(wide, 1)
        offsets.append(tiff.blob(strip))
        counts.append(len(strip))
    entries: list[Entry] = [
        (WIDTH, LONG, [width]),
        (HEIGHT, LONG, [height]),
        (BITS, SHORT, [16, 16, 16]),
        (COMPRESSION, SHORT, [ADOBE_DEFLATE]),
        (PHOTOMETRIC, SHORT, [2]),
        (STRIP_OFFSETS, LONG, offsets),
        (ORIENTATION, SHORT, [orientation]),
        (SAMPLES, SHORT, [3]),
        (ROWS_PER_STRIP, LONG, [rows]),
        (STRIP_BYTES, LONG, counts),
        (PLANAR, SHORT, [1]),
    ]
    if icc:
        entries.append((ICC_PROFILE, UNDEFINED, icc))
    tiff.ifd(entries)
    return tiff.bytes()


@cache
def srgb_icc() -> bytes:
    """LittleCMS's sRGB profile: embedded, it makes the pipeline run a real ICC transform."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


_D50 = (0.9642, 1.0, 0.8249)


def _lab(c: float, m: float, y: float, k: float) -> tuple[float, float, float]:
    """CMYK -> naive sRGB -> CIE Lab (D50): a plausible press profile, no more."""
    rgb = [(1 - v) * (1 - k) for v in (c, m, y)]
    lin = [((u + 0.055) / 1.055) ** 2.4 if u > 0.04045 else u / 12.92 for u in rgb]
    xyz = [
        sum(w * u for w, u in zip(row, lin, strict=True))
        for row in (
            (0.4360747, 0.3850649, 0.1430804),
            (0.2225045, 0.7168786, 0.0606169),
            (0.0139322, 0.0971045, 0.7141733),
        )
    ]
    fx, fy, fz = (
        t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116
        for t in (v / w for v, w in zip(xyz, _D50, strict=True))
    )
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


@cache
def cmyk_icc(grid: int = 9) -> bytes:
    """An ICC v2 output profile for CMYK: one A2B0 lut16 (CMYK -> Lab) on a `grid`^4 table,
    the size of a real press profile's, so the pipeline's CMYK -> sRGB transform costs what
    it costs with a photographer's file."""
    steps = [i / (grid - 1) for i in range(grid)]
    clut = bytearray()
    for c, m, y, k in itertools.product(steps, repeat=4):
        lightness, a, b = _lab(c, m, y, k)
        clut += struct.pack(
            ">HHH", round(lightness / 100 * 0xFF00), round((a + 128) * 256), round((b + 128) * 256)
        )
    identity = b"".join(_s15(1.0 if i % 4 == 0 else 0.0) for i in range(9))
    ramp = struct.pack(">HH", 0, 0xFFFF)
    lut = b"mft2" + bytes(4) + bytes([4, 3, grid, 0]) + identity + struct.pack(">HH", 2, 2)
    lut += ramp * 4 + bytes(clut) + ramp * 3
    name = b"imgpipe generated CMYK"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + bytes(1 + 8 + 67)
    white = b"XYZ " + bytes(4) + b"".join(_s15(v) for v in _D50)
    tags = [(b"desc", desc), (b"wtpt", white), (b"A2B0", lut)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000)
    header += b"prtrCMYKLab " + bytes(12) + b"acsp" + bytes(28) + b"".join(_s15(v) for v in _D50)
    return header + bytes(128 - len(header)) + table + body
