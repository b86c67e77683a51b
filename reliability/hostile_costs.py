"""Hostile shapes: small files, under every configured limit (`max_bytes`, `max_pixels`),
that cost far more memory or time than the function has (issue 12).

Each generator is deterministic and takes well under a few seconds; most files are a few
hundred KB. `reliability/budget.py` runs them through `imaging.process` and through the
handler under Lambda's memory and time limits;
tests/reliability/test_budget_inputs.py is the CI form.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from imgpipe_samples import encode, exif_with_orientation, photo
from imgpipe_samples.crafted import (
    ADOBE_DEFLATE,
    BITS,
    COMPRESSION,
    HEIGHT,
    LONG,
    NO_COMPRESSION,
    ORIENTATION,
    PHOTOMETRIC,
    ROWS_PER_STRIP,
    SHORT,
    STRIP_BYTES,
    STRIP_OFFSETS,
    WIDTH,
    Tiff,
    srgb_icc,
)
from reliability.hostile import png_chunk

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Shape:
    name: str  # for the table
    key: str  # the object key it is uploaded under
    make: Callable[[], bytes]
    profile: str = "web"  # the shipped profile with the most work per image


# -- JPEG ---------------------------------------------------------------------------------


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


class _Bits:
    """An entropy-coded segment, MSB first, with JPEG's 0xFF byte stuffing."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._value = 0
        self._count = 0

    def put(self, value: int, length: int) -> None:
        self._value = (self._value << length) | value
        self._count += length
        while self._count >= 8:
            self._count -= 8
            byte = (self._value >> self._count) & 0xFF
            self.out += b"\xff\x00" if byte == 0xFF else bytes([byte])
        self._value &= (1 << self._count) - 1

    def done(self) -> bytes:
        if self._count:
            self.put((1 << (8 - self._count)) - 1, 8 - self._count)  # pad with 1-bits
        return bytes(self.out)


def progressive_jpeg_scans(side: int = 7000, scans: int = 15_000) -> bytes:
    """A greyscale progressive JPEG of one flat colour: a DC scan, then the same AC scan
    (1..63, full precision, every block an end-of-band run) `scans` times. Each scan is ~90
    bytes yet makes libjpeg walk every block of the picture again, whatever the draft scale."""
    blocks = ((side + 7) // 8) ** 2
    tables = _segment(0xDB, b"\x00" + b"\x01" * 64)  # one quantisation table
    tables += _segment(0xC2, struct.pack(">BHHB", 8, side, side, 1) + b"\x01\x11\x00")
    # DC table: category 0 (no difference) is the only symbol, code "0".
    tables += _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    # AC table: EOBn (n << 4, a run of 2^n + n extra bits blocks), 4-bit codes.
    tables += _segment(0xC4, b"\x10" + bytes([0, 0, 0, 15] + [0] * 12) + bytes(range(0, 240, 16)))
    dc = _Bits()
    dc.out += bytes(blocks // 8)
    dc.put(0, blocks % 8)
    ac = _Bits()
    left = blocks
    while left:
        run = min(left, 32767)
        length = run.bit_length() - 1
        ac.put(length, 4)
        ac.put(run - (1 << length), length)
        left -= run
    dc_scan = _segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + dc.done()
    ac_scan = _segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + ac.done()
    return b"\xff\xd8" + tables + dc_scan + ac_scan * scans + b"\xff\xd9"


def jpeg_many_segments(count: int = 100_000) -> bytes:
    """A small JPEG with `count` APP15 segments before its frame: Pillow reads each in
    Python and keeps every one in `applist`."""
    data = encode(photo(64, 48), "JPEG", quality=80)
    segment = _segment(0xEF, b"imgpipe-hostile\x00")
    return data[:2] + segment * count + data[2:]


def jpeg_huge_icc(entries: int = 8_000_000) -> bytes:
    """A small JPEG carrying a 16 MB ICC profile in 255 APP2 chunks (the format's most):
    sRGB, except that its three tone curves share one curve of `entries` points."""
    icc = _icc_with_long_curves(entries)
    chunk = 65_519  # 65,535 - the length field - "ICC_PROFILE\0" - sequence and count
    parts = [icc[i : i + chunk] for i in range(0, len(icc), chunk)]
    assert len(parts) <= 255, len(parts)
    app2 = b"".join(
        _segment(0xE2, b"ICC_PROFILE\x00" + bytes([n + 1, len(parts)]) + part)
        for n, part in enumerate(parts)
    )
    data = encode(photo(64, 48), "JPEG", quality=80)
    return data[:2] + app2 + data[2:]


def _icc_with_long_curves(entries: int) -> bytes:
    source = srgb_icc()
    count = struct.unpack_from(">I", source, 128)[0]
    tags = [struct.unpack_from(">4sII", source, 132 + 12 * i) for i in range(count)]
    curve = b"curv" + bytes(4) + struct.pack(">I", entries)
    curve += array("H", range(0, 65536, 65536 // 4096 or 1)).tobytes() * (entries // 4096 + 1)
    curve = curve[: 12 + 2 * entries]
    kept = [(sig, source[at : at + size]) for sig, at, size in tags if not sig.endswith(b"TRC")]
    table_end = 128 + 4 + 12 * (len(kept) + 3)
    body = bytearray()
    table = bytearray(struct.pack(">I", len(kept) + 3))
    for signature, value in kept:
        table += signature + struct.pack(">II", table_end + len(body), len(value))
        body += value + bytes(-len(value) % 4)
    at = table_end + len(body)
    for signature in (b"rTRC", b"gTRC", b"bTRC"):  # one shared curve, as ICC allows
        table += signature + struct.pack(">II", at, len(curve))
    body += curve
    header = bytearray(source[:128])
    struct.pack_into(">I", header, 0, table_end + len(body))
    return bytes(header + table + body)


# -- TIFF ---------------------------------------------------------------------------------


def _grey_entries(width: int, height: int, offsets: list[int] | array, counts) -> list:
    return [
        (WIDTH, LONG, [width]),
        (HEIGHT, LONG, [height]),
        (BITS, SHORT, [8]),
        (COMPRESSION, SHORT, [NO_COMPRESSION]),
        (PHOTOMETRIC, SHORT, [1]),
        (STRIP_OFFSETS, LONG, offsets),
        (ROWS_PER_STRIP, LONG, [1]),
        (STRIP_BYTES, LONG, counts),
    ]


def tiff_chained_ifds(count: int = 100_000) -> bytes:
    """`count` 1x1 pages, each IFD pointing at the next: counting the pages walks them all."""
    tiff = Tiff()
    pixel = tiff.blob(b"\x80")
    tiff.chain(_grey_entries(1, 1, [pixel], [1]), count)
    return tiff.bytes()


def tiff_many_strips(strips: int) -> bytes:
    """A 1000x1000 greyscale TIFF whose strip table lists `strips` strips (all the same
    1000-byte row): Pillow makes a tile for each entry before decoding a pixel."""
    tiff = Tiff()
    row = tiff.blob(bytes(range(250)) * 4)
    offsets, counts = array("I", [row]) * strips, array("I", [1000]) * strips
    tiff.ifd(_grey_entries(1000, 1000, offsets, counts))
    return tiff.bytes()


def tiff_16bit(side: int = 7071, rows: int = 64) -> bytes:
    """16-bit greyscale at max_pixels (7071^2 = 49,999,041), orientation 6: deflate strips
    of one horizontal ramp, every strip pointing at the same compressed bytes."""
    ramp = array("H", (x * 65535 // (side - 1) for x in range(side))).tobytes()
    tiff = Tiff()
    strip = tiff.blob(zlib.compress(ramp * rows, 9))
    count = -(-side // rows)
    size = len(tiff.out) - strip
    tiff.ifd(
        [
            (WIDTH, LONG, [side]),
            (HEIGHT, LONG, [side]),
            (BITS, SHORT, [16]),
            (COMPRESSION, SHORT, [ADOBE_DEFLATE]),
            (PHOTOMETRIC, SHORT, [1]),
            (STRIP_OFFSETS, LONG, array("I", [strip]) * count),
            (ORIENTATION, SHORT, [6]),
            (ROWS_PER_STRIP, LONG, [rows]),
            (STRIP_BYTES, LONG, array("I", [size]) * count),
        ]
    )
    return tiff.bytes()


# -- PNG ----------------------------------------------------------------------------------


def _ihdr(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))


def _deflated_repeats(unit: bytes, repeat: int, chunk: int = 1 << 20) -> bytes:
    """zlib data of `unit` x `repeat`, fast: one ~1 MB run of units is compressed once and
    its bytes repeated (a full flush makes each run stand alone), then the remainder."""
    per_run = max(1, chunk // len(unit))
    runs, rest = divmod(repeat, per_run)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: we write the wrapper
    run = unit * per_run
    block = packer.compress(run) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = unit * rest
    checksum = 1
    for _ in range(runs):
        checksum = zlib.adler32(run, checksum)
    checksum = zlib.adler32(last, checksum)
    body = block * runs + tail.compress(last) + tail.flush()
    return b"\x78\xda" + body + struct.pack(">I", checksum)


def png_tall(height: int = 50_000_000) -> bytes:
    """1 x `height` greyscale: each row is a filter byte and one zero pixel (~97 KB)."""
    data = _deflated_repeats(b"\x00\x00", height)
    return PNG_SIGNATURE + _ihdr(1, height) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def png_rgba_oriented(side: int = 7071) -> bytes:
    """RGBA at max_pixels with EXIF orientation 6 and an ICC profile (rows of one ramp):
    decode, transpose and colour conversion each make a full-size copy."""
    ramp = bytes(b for x in range(side) for b in (x % 256, 255 - x % 256, 128, 255))
    exif = exif_with_orientation(6).removeprefix(b"Exif\x00\x00")
    icc = b"sRGB\x00\x00" + zlib.compress(srgb_icc())
    return (
        PNG_SIGNATURE + _ihdr(side, side, 8, 6) + png_chunk(b"iCCP", icc)
        + png_chunk(b"eXIf", exif) + png_chunk(b"IDAT", _deflated_repeats(b"\x00" + ramp, side))
        + png_chunk(b"IEND", b"")
    )  # fmt: skip


def png_many_idat(count: int = 1_000_000) -> bytes:
    """A 256x256 greyscale PNG whose image data follows `count` empty IDAT chunks (12 MB)."""
    data = zlib.compress(bytes(257 * 256), 9)
    empty = png_chunk(b"IDAT", b"")
    return (
        PNG_SIGNATURE + _ihdr(256, 256) + empty * count + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )  # fmt: skip


def png_exif_entries(entries: int = 16_000, block: int = 65_536) -> bytes:
    """A 64x64 PNG with an eXIf chunk (no size limit, unlike JPEG's 64 KB APP1) whose IFD has
    `entries` tags, each `block` bytes long and all pointing at the same block: 260 KB that
    read back as entries x block bytes (1 GB by default)."""
    start = 8 + 2 + 12 * entries + 4
    fields = b"".join(struct.pack("<HHII", 0x9000 + n, 7, block, start) for n in range(entries))
    exif = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", entries) + fields
    exif += bytes(4) + bytes(block)
    pixels = zlib.compress(bytes(65 * 64), 9)
    return (
        PNG_SIGNATURE + _ihdr(64, 64) + png_chunk(b"eXIf", exif) + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )  # fmt: skip


def apng_many_frames(side: int = 7000, frames: int = 10_000) -> bytes:
    """An APNG whose canvas is `side` square (RGBA zeros) followed by `frames` - 1 frames
    of 1x1: the frame count comes from acTL, the first frame is the whole canvas."""
    chunks = [_ihdr(side, side, 8, 6), png_chunk(b"acTL", struct.pack(">II", frames, 0))]
    sequence = 0

    def control(width: int, height: int, x: int, y: int) -> bytes:
        nonlocal sequence
        body = struct.pack(">IIIIIHHBB", sequence, width, height, x, y, 1, 25, 0, 0)
        sequence += 1
        return png_chunk(b"fcTL", body)

    canvas = _deflated_repeats(bytes(1 + 4 * side), side)
    chunks += [control(side, side, 0, 0), png_chunk(b"IDAT", canvas)]
    pixel = zlib.compress(b"\x00\xff\x00\x00\xff")
    for index in range(1, frames):
        chunks.append(control(1, 1, index % side, (index // side) % side))
        chunks.append(png_chunk(b"fdAT", struct.pack(">I", sequence) + pixel))
        sequence += 1
    return PNG_SIGNATURE + b"".join(chunks) + png_chunk(b"IEND", b"")


# -- GIF and WebP -------------------------------------------------------------------------


def gif_canvas_frames(side: int = 7000, frames: int = 10_000) -> bytes:
    """A `side` square GIF screen with `frames` frames of 1x1 scattered over it."""
    screen = struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    parts = [b"GIF89a", screen, loop]
    for index in range(frames):
        x, y = (index * 7) % side, (index * 13) % side
        parts.append(b"!\xf9\x04\x00\x02\x00\x00\x00")  # 20 ms, no transparency
        parts.append(b"," + struct.pack("<HHHHB", x, y, 1, 1, 0) + b"\x02\x02\x44\x01\x00")
    return b"".join(parts) + b";"


def _riff(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) % 2)


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "little")


def webp_canvas_frames(side: int = 7000, frames: int = 500, size: int = 16) -> bytes:
    """An animated WebP with a `side` square canvas and `frames` lossless frames of `size`
    square: decoding any frame composes the whole canvas."""
    still = encode(Image.new("RGBA", (size, size), (200, 30, 30, 255)), "WEBP", lossless=True)
    bitstream = still[12:]  # the VP8L chunk, header included
    assert bitstream[:4] == b"VP8L", bitstream[:4]
    header = _riff(b"VP8X", bytes([0x12, 0, 0, 0]) + _u24(side - 1) + _u24(side - 1))
    header += _riff(b"ANIM", b"\x00\x00\x00\x00" + struct.pack("<H", 0))
    body = bytearray(header)
    for index in range(frames):
        x = (index * 2 * size) % (side - size) // 2
        y = (index * 37 * size) % (side - size) // 2
        place = _u24(x) + _u24(y) + _u24(size - 1) + _u24(size - 1) + _u24(40) + b"\x00"
        body += _riff(b"ANMF", place + bitstream)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + bytes(body)


SHAPES = (
    Shape("progressive JPEG 7000x7000, 15,000 scans", "budget/scans.jpg", progressive_jpeg_scans),
    Shape("TIFF, 100,000 chained 1x1 IFDs", "budget/ifds.tif", tiff_chained_ifds),
    Shape("PNG 1 x 50,000,000", "budget/tall.png", png_tall),
    Shape(
        "TIFF 1000x1000, 3,000,000 strip offsets",
        "budget/strips-3m.tif",
        lambda: tiff_many_strips(3_000_000),
    ),
    Shape(
        "TIFF 1000x1000, 6,000,000 strip offsets",
        "budget/strips-6m.tif",
        lambda: tiff_many_strips(6_000_000),
    ),
    Shape(
        "animated WebP, 7000x7000 canvas, 500 frames of 16x16",
        "budget/canvas.webp",
        webp_canvas_frames,
    ),
    Shape(
        "RGBA PNG 7071x7071, EXIF orientation 6 + ICC",
        "budget/rgba-oriented.png",
        png_rgba_oriented,
    ),
    Shape("GIF, 7000x7000 screen, 10,000 frames of 1x1", "budget/canvas.gif", gif_canvas_frames),
    Shape("APNG 7000x7000 RGBA, 10,000 frames", "budget/frames.apng", apng_many_frames),
    Shape("JPEG with 100,000 APP15 segments", "budget/segments.jpg", jpeg_many_segments),
    Shape("JPEG with a 16 MB ICC profile (255 APP2 chunks)", "budget/icc.jpg", jpeg_huge_icc),
    Shape(
        "PNG eXIf: 16,000 tags x 64 KB, all one block (Pillow caps tag data at the file size)",
        "budget/exif.png",
        png_exif_entries,
    ),
    Shape("16-bit TIFF 7071x7071, orientation 6", "budget/16bit.tif", tiff_16bit),
    Shape("PNG with 1,000,000 empty IDAT chunks", "budget/idat.png", png_many_idat),
)
