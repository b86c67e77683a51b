"""What an image's container says about its own structure, read from the bytes alone.

No decoder and no Pillow: these walks run before Pillow opens the bytes, because opening
already walks some of these structures in Python (a TIFF's strip table becomes a list of
tiles; JPEG segments and PNG chunks before the pixels are read one by one). Each walk is a
generator that yields once per structure it passes, so the caller (costs.py, which holds the
caps) stops a walk at its cap just by not asking for more. A truncated or malformed container
ends the walk quietly: saying what is wrong with it is the decoder's job.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

JPEG_SOS = 0xDA
JPEG_EOI = 0xD9
# The next marker, found the way libjpeg finds it: 0xFF then any byte but 0x00 (a stuffed
# 0xFF in entropy-coded data), 0xD0-0xD7 (restart markers belong to their scan) and 0xFF
# (fill bytes before a marker). One byte after 0xFF, no repetition: linear on any input.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_STANDALONE = {0x01, 0xD8}  # TEM, SOI: no length field

GIF_FRAME = "frame"
GIF_BLOCK = "block"
_GIF_IMAGE, _GIF_EXTENSION, _GIF_TRAILER = 0x2C, 0x21, 0x3B

_TIFF_BLOCK_TAGS = {273, 279, 324, 325}  # StripOffsets/ByteCounts, TileOffsets/ByteCounts


def container(data: bytes) -> str | None:
    """The container whose structure the bytes start with (BigTIFF counts as TIFF)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


def jpeg_frame_components(data: bytes, at: int) -> int:
    """A start-of-frame segment's component count (Nf), from its length field's offset;
    0 when the segment is cut short."""
    return data[at + 7] if at + 7 < len(data) else 0


def jpeg_scan_components(data: bytes, at: int) -> int:
    """A start-of-scan segment's component count (Ns); 0 when the segment is cut short."""
    return data[at + 2] if at + 2 < len(data) else 0


def jpeg_markers(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Each marker segment's code, the bytes passed over to reach it (after SOS: the scan's
    entropy-coded data; elsewhere fill bytes or junk) and where its length field starts, up
    to the first EOI: an MPO's later pictures are never decoded."""
    at = 2
    while (found := _JPEG_MARKER.search(data, at)) is not None:
        code, skipped, at = data[found.start() + 1], found.start() - at, found.end()
        if code == JPEG_EOI:
            return
        yield code, skipped, at
        if code in _JPEG_STANDALONE:
            continue
        if at + 2 > len(data):
            return
        (length,) = struct.unpack_from(">H", data, at)
        if length < 2:
            return
        at += length


def png_chunk_spans(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Each chunk's offset, declared length and type, up to IEND or the end of the bytes;
    a chunk whose declared length passes the end is still yielded, for the caller to judge."""
    at = 8
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        yield at, length, kind
        if kind == b"IEND":
            return
        at += 12 + length


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk's type and, for the small ones the caller reads (acTL), its body."""
    for at, length, kind in png_chunk_spans(data):
        yield kind, data[at + 8 : at + 8 + min(length, 64)]


def png_frames_claimed(chunk: bytes) -> int:
    """acTL's num_frames: what Pillow reports as n_frames for an APNG."""
    return struct.unpack_from(">I", chunk)[0] if len(chunk) >= 4 else 0


def gif_blocks(data: bytes) -> Iterator[str]:
    """GIF_FRAME at each image descriptor, GIF_BLOCK at each extension, data sub-block and
    stray byte passed: skipping a frame means reading every sub-block's length, one by one."""
    if len(data) < 13:
        return
    at = 13 + _gif_colour_table(data[10])
    while at < len(data):
        introducer = data[at]
        if introducer == _GIF_IMAGE:
            if at + 10 > len(data):
                return
            at += 10 + _gif_colour_table(data[at + 9]) + 1  # + LZW minimum code size
            yield GIF_FRAME
        elif introducer == _GIF_EXTENSION:
            at += 2
            yield GIF_BLOCK
        elif introducer == _GIF_TRAILER:
            return
        else:  # a stray byte: Pillow passes over it and reads the next, one at a time
            at += 1
            yield GIF_BLOCK
            continue
        while at < len(data):
            size = data[at]
            at += 1 + size
            if size == 0:
                break
            yield GIF_BLOCK


def _gif_colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def webp_chunks(data: bytes) -> Iterator[bytes]:
    """The fourcc of each top-level RIFF chunk (ANMF: one animation frame)."""
    at = 12
    while at + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, at)
        yield kind
        at += 8 + size + (size & 1)


@dataclass(frozen=True)
class Directory:
    """One TIFF image file directory (a page)."""

    entries: int
    blocks: int  # strips or tiles: the longest of the offset and byte-count arrays


@dataclass(frozen=True)
class _TiffLayout:
    order: str  # "<" or ">"
    count: str  # entry count: H (classic) or Q (BigTIFF)
    entry: str  # tag, type, count, value
    offset: str  # I or Q


def tiff_directories(data: bytes, max_entries: int) -> Iterator[Directory]:
    """Each directory of the IFD chain, in order, until its end, a loop back to a directory
    already read (where Pillow's walk ends too) or the end of the bytes. A directory with
    more than `max_entries` entries is reported by its count, its entries left unread."""
    layout = _tiff_layout(data)
    if layout is None:
        return
    offset_size = struct.calcsize(layout.offset)
    (offset,) = struct.unpack_from(layout.order + layout.offset, data, 8 if offset_size == 8 else 4)
    seen: set[int] = set()
    while offset and offset not in seen:
        seen.add(offset)
        read = _read_directory(data, offset, layout, max_entries)
        if read is None:
            return
        directory, offset = read
        yield directory


def _tiff_layout(data: bytes) -> _TiffLayout | None:
    if len(data) < 16 or data[:2] not in (b"II", b"MM"):
        return None
    order = "<" if data[:2] == b"II" else ">"
    (magic,) = struct.unpack_from(order + "H", data, 2)
    if magic == 42:
        return _TiffLayout(order, "H", "HHI4s", "I")
    if magic == 43:
        return _TiffLayout(order, "Q", "HHQ8s", "Q")
    return None


def _read_directory(
    data: bytes, at: int, layout: _TiffLayout, max_entries: int
) -> tuple[Directory, int] | None:
    """One directory and the offset of the next (0: the last), or None when it is cut off."""
    head = struct.calcsize(layout.order + layout.count)
    size = struct.calcsize(layout.order + layout.entry)
    if at + head > len(data):
        return None
    (claimed,) = struct.unpack_from(layout.order + layout.count, data, at)
    start = at + head
    count = min(claimed, (len(data) - start) // size)  # Pillow reads no more than is there
    if count > max_entries:
        return Directory(count, 0), 0
    end = start + count * size
    entries = struct.iter_unpack(layout.order + layout.entry, memoryview(data)[start:end])
    blocks = max((n for tag, _, n, _ in entries if tag in _TIFF_BLOCK_TAGS), default=0)
    next_format = layout.order + layout.offset
    if count < claimed or end + struct.calcsize(next_format) > len(data):
        return Directory(count, blocks), 0
    return Directory(count, blocks), struct.unpack_from(next_format, data, end)[0]
