"""The cost model: what an image would cost, worked out from its headers and refused before a
single pixel is decoded.

A small table of limits in the spirit of ImageMagick's policy.xml and libjpeg-turbo's
max_scans, each a named constant with its reason, checked at three points of decoding.read_header:

1. check_container, before Pillow opens the bytes: the structures that opening and counting
   frames walk in Python (JPEG segments and scans, PNG chunks, GIF blocks and frames, WebP
   chunks and frames, TIFF directories, entries, strips and tiles), each walk (headers.py)
   stopped one past its cap. Caps bound time: each keeps Pillow's own walk of that structure
   well under a second on a Lambda vCPU (~1.7x slower than the machine measured on).
2. check_decode, once Pillow has read the size: the stored picture, row pointers included,
   and the frames an animation keeps, against the profile's max_pixels.
3. check_renditions, once the orientation is known: each rendition's geometry against its
   encoder's largest side and the same pixel budget.

Pixel budgets are in units of the profile's max_pixels, the number the deploy sizes the
function's memory from (pipeline/program/guards.py): what passes here fits the memory sized for it.
Every check is a pure function of the bytes, the header's numbers and the profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from lambda_pkg import animation, encoding, headers, planning
from lambda_pkg.profiles import MAX_FRAMES as PROFILE_MAX_FRAMES
from lambda_pkg.profiles import Profile

# Libjpeg's progression writes 10 scans for colour and 6 for grey, mozjpeg's scan search up
# to ~20. Each scan is another entropy-decoding pass over every block of the picture (15,000
# tiny scans of a 7000x7000 JPEG took 89 CPU s), so 100 costs at most ~5x a real progressive
# file. (nvImageCodec's default is 256; libjpeg-turbo leaves max_scans to the caller.)
MAX_JPEG_SCANS = 100
# Marker segments before the first EOI: APPn metadata (EXIF, XMP and its extension chunks, up
# to 255 ICC chunks), tables, the frame header, tables between scans: a few hundred at most.
# Pillow reads those before the first scan one by one in Python (1M COM segments: 1.5 s).
MAX_JPEG_SEGMENTS = 1_000
# Fill bytes and junk between those segments: a valid file has none or a few; Pillow passes
# over each one by one in Python (5 MB of zeros: 0.43 s), libjpeg in C.
MAX_JPEG_SKIPPED = 2**20
# A dozen metadata chunks, IDAT every 8-64 KB of compressed data (libpng writes 8 KB) and two
# chunks per APNG frame: 50,000 is a 400 MB PNG. Pillow reads those before the first IDAT in
# Python, png_damage all of them (1M empty chunks: 4.8 s to open, 1.5 s to check).
MAX_PNG_CHUNKS = 50_000
# Encoders fill 255-byte sub-blocks: 2^19 of them carry 130 MB of pixel data. Counting
# frames skips every sub-block by its length byte, in Python (1M 1-byte sub-blocks: 0.5 s),
# and every stray byte between blocks, one at a time (5 MB of them: 1.2 s).
MAX_GIF_BLOCKS = 2**19
# Frames in a GIF, WebP or APNG: 10,000 is 16 minutes at 10 fps, where real animations have
# up to a few thousand. Counting is all they cost unless the profile keeps the animation.
MAX_FRAMES = 10_000
MAX_WEBP_CHUNKS = MAX_FRAMES + 64  # one per frame, a few for metadata
# TIFF pages: Pillow's frame count reads each directory twice, in Python, and slows down
# as the chain grows (1,000: 0.1 s; 10,000: 1.6 s; 100,000: 77 s). Multi-page scans have
# tens to hundreds; a profile keeps at most profiles.MAX_FRAMES pages.
MAX_TIFF_DIRECTORIES = PROFILE_MAX_FRAMES
# Tag entries over the directories walked: a page has 10-100; Pillow reads each, ~7 us.
MAX_TIFF_ENTRIES = 50_000
# Strips and tiles over the directories walked. A strip holds at least one row, so a 50 MP
# picture has at most ~26,000 (1-row strips, 3 planes); 256x256 tiles make ~800. Pillow
# builds a ~360-byte tile record for each on every page it visits (3M strips: 6.4 s and
# 1.1 GB just to open).
MAX_TIFF_BLOCKS = 2**17
# Pillow keeps one 8-byte pointer per row, two 4-byte pixels' worth: a 1 x 50,000,000 PNG is
# 50 MB of pixels and 400 MB of row pointers. The first FREE_ROWS rows (a 512 KB table) are
# noise next to any picture that tall and are not counted, so max_pixels keeps its meaning.
ROW_COST = 2
FREE_ROWS = 65_536
# The longest side each encoder writes (each tried with Pillow 13, one pixel over fails):
# libjpeg's JPEG_MAX_DIMENSION, WebP's 14-bit sizes (WEBP_MAX_DIMENSION), GIF's 16-bit
# fields, AV1's 16-bit frame size (libavif), PNG's 31-bit ones.
ENCODER_MAX_SIDE = {
    "jpeg": 65_500,
    "webp": 16_383,
    "gif": 65_535,
    "avif": 65_536,
    "png": 2**31 - 1,
}

Size = tuple[int, int]
_Step = TypeVar("_Step")


class TooCostly(Exception):
    """The image would cost more than the function has. A retry cannot help."""


def _over(measure: str, value: str, limit: int, why: str) -> TooCostly:
    return TooCostly(f"{measure}: {value}, over the limit of {limit:,} ({why})")


def _at_least(limit: int) -> str:
    return f"at least {limit + 1:,}"  # walks stop one past the cap


# -- 1. the container, before Pillow opens it ------------------------------------------------


def check_container(data: bytes, input_formats: tuple[str, ...]) -> int | None:
    """Refuse a container whose structure costs too much to walk; return its frame count
    (None for JPEG and for containers this does not read: BMP, AVIF, HEIC)."""
    kind = headers.container(data)
    if kind is None or kind not in input_formats:
        return None  # Pillow will not open it as anything we walk
    return _COUNTERS[kind](data)


def _capped(steps: Iterable[_Step], limit: int, measure: str, why: str) -> Iterator[_Step]:
    """The steps of a walk, refused at the first one past `limit`: no walk goes further."""
    for count, step in enumerate(steps, 1):
        if count > limit:
            raise _over(measure, _at_least(limit), limit, why)
        yield step


def _count(steps: Iterable[object]) -> int:
    return sum(1 for _ in steps)


# Start-of-frame markers (SOF0-SOF15 but DHT, JPG and DAC, which share the range).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Sequential Huffman frames (baseline, extended) whose first scan codes every component:
# libjpeg decodes such a frame in one pass and refuses any further scan ("didn't expect more
# than one scan"), so the walk stops there; counting scans through the entropy-coded data
# costs about half a millisecond per MB, several for a 48 MP photo. A first scan of fewer
# components makes libjpeg buffer the picture and decode every later scan, however empty
# (14 bytes each: a 7000x7000 file of 1,000 such scans costs 17 CPU s), so those are walked.
_SEQUENTIAL_HUFFMAN = frozenset({0xC0, 0xC1})


def _jpeg(data: bytes) -> int | None:
    why = "a real JPEG has a few hundred at most"
    segments = _capped(headers.jpeg_markers(data), MAX_JPEG_SEGMENTS, "JPEG segments", why)
    scans = skipped = frame = components = 0
    for code, gap, at in segments:
        one_pass = frame in _SEQUENTIAL_HUFFMAN and scans == 0 and code == headers.JPEG_SOS
        if one_pass and 0 < components == headers.jpeg_scan_components(data, at):
            return None
        if code in _JPEG_FRAMES:
            frame, components = code, headers.jpeg_frame_components(data, at)
        skipped += 0 if scans else gap  # after the first scan: entropy-coded data, not junk
        if skipped > MAX_JPEG_SKIPPED:
            why = "Pillow passes over them one byte at a time, looking for a marker"
            measure = "JPEG bytes between segments before the first scan"
            raise _over(measure, f"at least {skipped:,}", MAX_JPEG_SKIPPED, why)
        scans += code == headers.JPEG_SOS
        if scans > MAX_JPEG_SCANS:
            why = "each scan is one more decoding pass over the whole picture; encoders write ~20"
            raise _over("JPEG scans", _at_least(MAX_JPEG_SCANS), MAX_JPEG_SCANS, why)
    return None  # only the first picture is ever decoded


_FRAMES_WHY = "16 minutes at 10 fps; every one is walked to count them"


def _png(data: bytes) -> int:
    why = "metadata plus one IDAT per 8-64 KB of data and two per APNG frame"
    chunks = _capped(headers.png_chunks(data), MAX_PNG_CHUNKS, "PNG chunks", why)
    frames, pixels_seen = 1, False
    for kind, body in chunks:
        pixels_seen = pixels_seen or kind == b"IDAT"
        if kind == b"acTL" and not pixels_seen:  # Pillow reads acTL only before the pixels
            claimed = headers.png_frames_claimed(body)
            frames = claimed if 0 < claimed <= 0x80000000 else 1  # else Pillow ignores it
            if frames > MAX_FRAMES:
                raise _over("APNG frames (acTL)", f"{frames:,}", MAX_FRAMES, _FRAMES_WHY)
    return frames


def _gif(data: bytes) -> int:
    why = "encoders write 255-byte sub-blocks; each, and each stray byte, is read in Python"
    blocks = _capped(headers.gif_blocks(data), MAX_GIF_BLOCKS, "GIF blocks", why)
    frames = (block for block in blocks if block == headers.GIF_FRAME)
    return max(1, _count(_capped(frames, MAX_FRAMES, "GIF frames", _FRAMES_WHY)))


def _webp(data: bytes) -> int:
    why = "one per frame and a few for metadata"
    chunks = _capped(headers.webp_chunks(data), MAX_WEBP_CHUNKS, "WebP chunks", why)
    frames = (chunk for chunk in chunks if chunk == b"ANMF")
    return max(1, _count(_capped(frames, MAX_FRAMES, "WebP frames", _FRAMES_WHY)))


def _tiff(data: bytes) -> int:
    why = "Pillow reads every directory to count the pages"
    directories = headers.tiff_directories(data, MAX_TIFF_ENTRIES)
    entries = blocks = pages = 0
    for directory in _capped(directories, MAX_TIFF_DIRECTORIES, "TIFF directories", why):
        pages += 1
        entries += directory.entries
        if entries > MAX_TIFF_ENTRIES:
            why = "a page has 10-100 tags, each read in Python"
            raise _over("TIFF tag entries", f"at least {entries:,}", MAX_TIFF_ENTRIES, why)
        blocks += directory.blocks
        if blocks > MAX_TIFF_BLOCKS:
            why = "a strip holds at least one row; each costs a tile record on every page read"
            raise _over("TIFF strips and tiles", f"at least {blocks:,}", MAX_TIFF_BLOCKS, why)
    return max(pages, 1)


_COUNTERS: dict[str, Callable[[bytes], int | None]] = {
    "jpeg": _jpeg,
    "png": _png,
    "gif": _gif,
    "webp": _webp,
    "tiff": _tiff,
}


# -- 2. the decode, from the header's size -------------------------------------------------


def picture_cost(size: Size, frames: int = 1) -> int:
    """Memory of `frames` pictures of this size, in pixels (4 bytes), row pointers included."""
    width, height = size
    return frames * (width * height + ROW_COST * max(0, height - FREE_ROWS))


def _check_picture(what: str, size: Size, frames: int, profile: Profile) -> None:
    cost = picture_cost(size, frames)
    if cost <= profile.max_pixels:
        return
    shape = f"{size[0]:,}x{size[1]:,}" + (f" x {frames:,} frames" if frames > 1 else "")
    rows = " with its row pointers (8 bytes a row)" if size[1] > FREE_ROWS else ""
    raise TooCostly(
        f"{what} would be {shape}: {cost:,} pixels' worth of memory{rows}, over the "
        f"profile's max_pixels of {profile.max_pixels:,}"
    )


def check_decode(size: Size, frames: int | None, profile: Profile) -> None:
    """The stored picture and, when the profile keeps animations, the frames it keeps (from
    the container's own count, before Pillow walks the frames to count them)."""
    _check_picture("the decoded picture", size, 1, profile)
    if frames is not None and frames > 1 and profile.keep_animation:
        try:
            animation.frames_to_keep(frames, size, profile)
        except animation.TooManyPixels as exc:
            raise TooCostly(str(exc)) from None


# -- 3. the renditions, from the upright size ----------------------------------------------


def check_renditions(
    sizes: planning.Sizes, input_format: str, has_alpha: bool, frames: int, profile: Profile
) -> None:
    """Every rendition's size, as the plan will have it (`sizes` from the size after the
    EXIF orientation; `frames`: how many an animation keeps, 0 or 1 for a still)."""
    _check_picture("the upright picture", sizes.original, 1, profile)
    animated = frames > 1
    for rendition, sizing in zip(profile.renditions, sizes.renditions, strict=True):
        for each in rendition.formats:
            # Animations render as if with alpha, exactly as planning.plan asks.
            fmt = encoding.output_format(each, input_format, has_alpha or animated, animated)
            target = sizing.target
            limit = ENCODER_MAX_SIDE[fmt]
            if max(target) > limit:
                raise TooCostly(
                    f"rendition {rendition.name!r} would be {target[0]:,}x{target[1]:,}: a side "
                    f"of {max(target):,} px, over {fmt.upper()}'s limit of {limit:,} px a side"
                )
            copies = frames if animated and fmt in animation.FORMATS else 1
            _check_picture(f"rendition {rendition.name!r}", target, copies, profile)
