"""The cost model (lambda_pkg/costs.py): hostile inputs refused from their headers, before
Pillow opens them or before a pixel is decoded, with a reason that names the measure and the
limit; and real files, counted exactly as Pillow counts them, left alone.

Every input is made here, byte by byte where Pillow cannot write it. "Fast" is asserted
without a clock: Pillow is made to fail the test if it opens or decodes what must be refused
before that point, and every walk is shown to stop one step past its cap.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator

import pytest
from PIL import Image, ImageFile, TiffImagePlugin, WebPImagePlugin

from imgpipe_samples import samples
from lambda_pkg import costs, decoding, formats, headers, imaging, planning
from lambda_pkg.profiles import Profile, load_named, profile_from_dict
from tests.support import images

THUMBNAIL = load_named("thumbnail")
WEB = load_named("web")


def profile(*renditions: dict, **options: object) -> Profile:
    return profile_from_dict(
        {"name": "costs", "renditions": list(renditions), **options}, source="test_costs.py"
    )


def rendition(fmt: str = "webp", **resize: object) -> dict:
    return {
        "name": f"r-{fmt}",
        "resize": resize or {"mode": "width", "width": 120},
        "format": fmt,
        "key": "processed/{key}/{rendition}.{ext}",
    }


ANIMATED = profile(rendition(), keep_animation=True)


# -- hostile files, made by hand ------------------------------------------------------------


def jpeg_with_scans(scans: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real progressive JPEG whose last scan is repeated until it has `scans` scans: libjpeg
    decodes every one of them (each refines the same coefficients again)."""
    data = images.encode(images.photo(*size), "JPEG", quality=80, progressive=True)
    last, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    extra = scans - data.count(b"\xff\xda")  # byte stuffing keeps FFDA out of scan data
    return data[:end] + data[last:end] * extra + data[end:]


def jpeg_with_comments(count: int) -> bytes:
    data = images.jpeg(64, 48)
    return data[:2] + b"\xff\xfe\x00\x04ok" * count + data[2:]


def jpeg_with_junk(count: int) -> bytes:
    """`count` zero bytes after the first segment (APP0): libjpeg skips them with a warning."""
    data = images.jpeg(64, 48)
    at = 4 + int.from_bytes(data[4:6], "big")
    return data[:at] + b"\0" * count + data[at:]


def _entry(tag: int, kind: int, count: int, value: int) -> bytes:
    return struct.pack("<HHII", tag, kind, count, value)


def _grey_page(strips: int = 1, strips_at: int = 8, counts_at: int = 8) -> list[bytes]:
    """The entries of a 1x1 8-bit grey page (width/height patched by the callers)."""
    return [
        _entry(256, 4, 1, 1),
        _entry(257, 4, 1, 1),
        _entry(258, 3, 1, 8),
        _entry(259, 3, 1, 1),
        _entry(262, 3, 1, 1),
        _entry(273, 4, strips, strips_at),
        _entry(277, 3, 1, 1),
        _entry(278, 4, 1, 1),
        _entry(279, 4, strips, counts_at),
    ]


def tiff_chain(pages: int, loop_to: int | None = None) -> bytes:
    """`pages` chained 1x1 directories (all sharing one pixel at byte 8); the last one
    points back to directory `loop_to` instead of ending the chain, when given."""
    entries = b"".join(_grey_page())
    size = 2 + len(entries) + 4
    first = 9
    out = bytearray(b"II*\x00" + struct.pack("<I", first) + b"\x80")
    for index in range(pages):
        last = index == pages - 1
        following = len(out) + size if not last else 0
        if last and loop_to is not None:
            following = first + loop_to * size
        out += struct.pack("<H", 9) + entries + struct.pack("<I", following)
    return bytes(out)


def tiff_with_strips(width: int, height: int, strips: int) -> bytes:
    """A classic TIFF whose one page has `strips` strips, all pointing at the same byte."""
    offsets_at = 8 + 2 + 12 * 9 + 4
    counts_at = offsets_at + 4 * strips
    page = _grey_page(strips, offsets_at, counts_at)
    page[0], page[1] = _entry(256, 4, 1, width), _entry(257, 4, 1, height)
    pixel = counts_at + 4 * strips
    head = b"II*\x00" + struct.pack("<IH", 8, 9) + b"".join(page) + b"\0\0\0\0"
    body = struct.pack("<I", pixel) * strips + struct.pack("<I", 1) * strips
    return head + body + b"\x80"


def bigtiff_with_strips(strips: int) -> bytes:
    """The same shape as a BigTIFF (magic 43, 64-bit offsets), which Pillow reads too."""
    entries = [(256, 4, 1, 1), (257, 4, 1, 1), (258, 3, 1, 8), (273, 16, strips, 64)]
    entries.append((279, 16, strips, 64))
    directory = struct.pack("<Q", len(entries)) + b"".join(
        struct.pack("<HHQQ", *entry) for entry in entries
    )
    return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + directory + b"\0" * 8


def tiff_with_entries(count: int) -> bytes:
    page = _grey_page() + [_entry(40000 + i % 20000, 4, 1, i) for i in range(count - 9)]
    return b"II*\x00" + struct.pack("<IH", 8, count) + b"".join(page) + b"\0\0\0\0"


def _riff(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def webp_animation(canvas: tuple[int, int], frames: int, frame_side: int = 16) -> bytes:
    """An animated WebP: a huge canvas (VP8X) and `frames` tiny lossless frames (ANMF)."""
    frame = Image.new("RGBA", (frame_side,) * 2, (200, 10, 10, 255))
    still = images.encode(frame, "WEBP", lossless=True)
    assert still[12:16] == b"VP8L"  # a simple file: its one chunk is the frame's bitstream
    bitstream = still[12:]
    flags = bytes([0x12, 0, 0, 0])  # animation + alpha
    body = _riff(b"VP8X", flags + _u24(canvas[0] - 1) + _u24(canvas[1] - 1))
    body += _riff(b"ANIM", struct.pack("<IH", 0, 0))
    for index in range(frames):
        x = (index * frame_side) % (canvas[0] - frame_side) // 2  # stored halved
        place = _u24(x) + _u24(0) + _u24(frame_side - 1) * 2 + _u24(100) + b"\0"
        body += _riff(b"ANMF", place + bitstream)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def webp_with_chunks(count: int) -> bytes:
    still = images.encode(images.photo(64, 48), "WEBP")
    body = still[12:] + _riff(b"XTRA", b"") * count
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_tall(width: int, height: int) -> bytes:
    """A valid greyscale PNG of zeros, compressed in 1 MB steps (1 x 50,000,000: ~97 KB)."""
    row = 1 + width
    packer = zlib.compressobj(9)
    block = b"\0" * (row * max(1, 2**20 // row))
    left, parts = row * height, []
    while left:
        parts.append(packer.compress(block[: min(left, len(block))]))
        left -= min(left, len(block))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def png_with_chunks(count: int) -> bytes:
    data = images.png(64, 48)
    return data[:33] + _png_chunk(b"prVt", b"") * count + data[33:]


def apng(frames: int = 4, size: tuple[int, int] = (60, 40), claim: int | None = None) -> bytes:
    """Pillow's own APNG; `claim` rewrites acTL's num_frames (and its CRC)."""
    data = bytearray(images.animation("PNG", frames=frames, size=size))
    if claim is not None:
        at = data.index(b"acTL")
        body = struct.pack(">I", claim) + data[at + 8 : at + 12]
        data[at + 4 : at + 12] = body
        data[at + 12 : at + 16] = struct.pack(">I", zlib.crc32(b"acTL" + body))
    return bytes(data)


def gif_animation(canvas: tuple[int, int], frames: int, sub_blocks: int = 1) -> bytes:
    """`frames` frames of one pixel on a canvas of any size; each frame's data can be padded
    with `sub_blocks - 1` one-byte sub-blocks after its end code (encoders write 255-byte
    ones), which decoders skip."""
    screen = struct.pack("<HHBBB", *canvas, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    data = b"\x02\x44\x01" + b"\x01\x00" * (sub_blocks - 1) + b"\x00"  # clear, 0, end
    frame = (
        b"!\xf9\x04\x00\x02\x00\x00\x00"  # 20 ms
        + b","
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02"  # LZW minimum code size
        + data
    )
    return b"GIF89a" + screen + frame * frames + b";"


def tiff_pages(count: int) -> bytes:
    pages = [images.photo(40, 30).rotate(90 * i) for i in range(count)]
    return images.encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


# -- Pillow made to fail the test if it gets that far ---------------------------------------


@pytest.fixture
def never_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    def opened(*_: object) -> None:
        raise AssertionError("Pillow opened bytes that must be refused before it reads them")

    monkeypatch.setattr(formats, "open_image", opened)


@pytest.fixture
def never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def decoded(*_: object) -> None:
        raise AssertionError("pixels were decoded for an image that must be refused first")

    for cls in (ImageFile.ImageFile, TiffImagePlugin.TiffImageFile, WebPImagePlugin.WebPImageFile):
        monkeypatch.setattr(cls, "load", decoded)


def refused(data: bytes, profile: Profile) -> str:
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.decode(data, profile)
    reason = str(caught.value)
    assert reason.startswith("too costly to process: "), reason
    return reason


# -- 1. containers, refused before Pillow opens them ----------------------------------------


# Each: how it is made, the profile, the reason. What they cost before this check: 15,000
# scans of a 7000x7000 JPEG 89 CPU s; 100,000 TIFF directories 77 CPU s; 3M strips 6.4 s and
# 1.1 GB just to open; 1M JPEG segments 1.5 s, 1M PNG chunks 6.3 s, 1M GIF sub-blocks 0.5 s,
# 5 MB of junk 0.4 s in a JPEG and 1.2 s in a GIF (max_bytes holds tens of millions of each).
CONTAINER_BOMBS = {
    "jpeg-15000-scans": (
        lambda: jpeg_with_scans(15_000),
        THUMBNAIL,
        "JPEG scans: at least 101, over the limit of 100",
    ),
    "jpeg-5000-segments": (
        lambda: jpeg_with_comments(5_000),
        THUMBNAIL,
        "JPEG segments: at least 1,001, over the limit of 1,000",
    ),
    "jpeg-2MB-of-junk-between-segments": (
        lambda: jpeg_with_junk(2_000_000),
        THUMBNAIL,
        "JPEG bytes between segments before the first scan: at least 2,000,000, over the limit"
        " of 1,048,576",
    ),
    "tiff-100000-directories": (
        lambda: tiff_chain(100_000),
        THUMBNAIL,
        "TIFF directories: at least 1,001, over the limit of 1,000",
    ),
    "tiff-1000x1000-3M-strips": (
        lambda: tiff_with_strips(1000, 1000, 3_000_000),
        THUMBNAIL,
        "TIFF strips and tiles: at least 3,000,000, over the limit of 131,072",
    ),
    "gif-20000-frames": (  # refused even when only the first frame would be decoded
        lambda: gif_animation((16, 16), 20_000),
        THUMBNAIL,
        "GIF frames: at least 10,001, over the limit of 10,000",
    ),
    "gif-600000-sub-blocks": (
        lambda: gif_animation((16, 16), 2, sub_blocks=600_000),
        THUMBNAIL,
        "GIF blocks: at least 524,289, over the limit of 524,288",
    ),
    "gif-2MB-of-stray-bytes": (
        lambda: gif_animation((16, 16), 1)[:-1] + b"\0" * 2_000_000 + b";",
        THUMBNAIL,
        "GIF blocks: at least 524,289, over the limit of 524,288",
    ),
    "apng-claiming-1M-frames": (
        lambda: apng(claim=1_000_000),
        ANIMATED,
        "APNG frames (acTL): 1,000,000, over the limit of 10,000",
    ),
    "png-60000-chunks": (
        lambda: png_with_chunks(60_000),
        THUMBNAIL,
        "PNG chunks: at least 50,001, over the limit of 50,000",
    ),
    "webp-20000-chunks": (
        lambda: webp_with_chunks(20_000),
        THUMBNAIL,
        "WebP chunks: at least 10,065, over the limit of 10,064",
    ),
}


@pytest.mark.parametrize("name", CONTAINER_BOMBS)
def test_a_container_too_costly_to_walk_is_refused_before_pillow_opens_it(never_opened, name):
    # GIVEN a file whose structure alone costs seconds or gigabytes to walk
    make, named, expected = CONTAINER_BOMBS[name]
    # WHEN it is decoded THEN it is refused from the counts, naming the measure and the limit
    assert expected in refused(make(), named)


def test_the_scan_bomb_is_a_real_jpeg_that_libjpeg_would_decode_in_full():
    # The refusal is about cost, not validity: Pillow alone decodes every scan of it.
    bomb = Image.open(io.BytesIO(jpeg_with_scans(15_000)))
    bomb.load()
    assert bomb.size == (64, 48)


def _restarts(data: bytes) -> int:
    return sum(data.count(bytes([0xFF, code])) for code in range(0xD0, 0xD8))


@pytest.mark.parametrize(
    ("make", "scans", "restarts"),
    [
        (lambda: images.jpeg(640, 480), 1, False),
        (lambda: images.jpeg(640, 480, progressive=True), 10, False),  # libjpeg's progression
        (lambda: images.encode(images.photo(640, 480, "L"), "JPEG", progressive=True), 6, False),
        (
            lambda: images.encode(images.photo(640, 480, "CMYK"), "JPEG", progressive=True),
            18,
            False,
        ),
        # Restart markers (FFD0-FFD7) and stuffed FF00 bytes inside the entropy-coded data
        # must neither end a scan nor count as segments.
        (lambda: images.jpeg(640, 480, restart_marker_blocks=1), 1, True),
        (lambda: images.jpeg(640, 480, progressive=True, restart_marker_rows=1), 10, True),
    ],
)
def test_the_jpeg_walk_counts_exactly_the_scans_libjpeg_writes(make, scans, restarts):
    data = make()
    assert b"\xff\x00" in data and (_restarts(data) > 0) == restarts
    codes = [code for code, _, _ in headers.jpeg_markers(data)]
    assert codes.count(headers.JPEG_SOS) == scans
    before_first_scan = list(headers.jpeg_markers(data))[: codes.index(headers.JPEG_SOS) + 1]
    assert all(skipped == 0 for _, skipped, _ in before_first_scan)
    assert costs.check_container(data, ("jpeg",)) is None  # accepted


def test_a_large_scan_is_not_mistaken_for_junk():
    # Only bytes before the first scan are junk: after it they are the scan's own data.
    noise = random.Random(12).randbytes(1500 * 1000 * 3)  # does not compress: a big scan
    data = images.encode(Image.frombytes("RGB", (1500, 1000), noise), "JPEG", quality=98)
    assert len(data) > 2 * costs.MAX_JPEG_SKIPPED
    assert costs.check_container(data, ("jpeg",)) is None


def test_the_tiff_walk_reads_one_directory_past_the_cap_and_no_more(monkeypatch):
    # GIVEN a chain of 100,000 directories, WHEN it is checked, THEN the reader read
    # exactly MAX_TIFF_DIRECTORIES + 1 of them: the refusal costs the same for any length.
    reads = []
    real = headers._read_directory

    def counting(*args: object, **kwargs: object):
        reads.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(headers, "_read_directory", counting)
    with pytest.raises(costs.TooCostly):
        costs.check_container(tiff_chain(100_000), ("tiff",))
    assert len(reads) == costs.MAX_TIFF_DIRECTORIES + 1
    assert len(set(reads)) == len(reads)  # each directory read once


@pytest.mark.parametrize(("pages", "loop_to", "counted"), [(1, 0, 1), (3, 1, 3), (3, None, 3)])
def test_a_directory_chain_that_loops_ends_where_pillow_ends_it(pages, loop_to, counted):
    data = tiff_chain(pages, loop_to)
    assert costs.check_container(data, ("tiff",)) == counted
    assert Image.open(io.BytesIO(data)).n_frames == counted


def test_a_bigtiff_with_too_many_strips_is_refused_as_well():
    with pytest.raises(costs.TooCostly, match="TIFF strips and tiles: at least 200,000"):
        costs.check_container(bigtiff_with_strips(200_000), ("tiff",))


def test_a_tiff_directory_with_60000_entries_is_refused_without_reading_them():
    with pytest.raises(costs.TooCostly, match="TIFF tag entries: at least 60,000, over the"):
        costs.check_container(tiff_with_entries(60_000), ("tiff",))


WALKS: list[tuple[str, Callable[[], bytes], str, int]] = [
    ("jpeg_markers", lambda: jpeg_with_comments(5_000), "jpeg", costs.MAX_JPEG_SEGMENTS),
    ("png_chunks", lambda: png_with_chunks(60_000), "png", costs.MAX_PNG_CHUNKS),
    ("gif_blocks", lambda: gif_animation((16, 16), 1, 600_000), "gif", costs.MAX_GIF_BLOCKS),
    ("webp_chunks", lambda: webp_with_chunks(20_000), "webp", costs.MAX_WEBP_CHUNKS),
]


@pytest.mark.parametrize(("walk", "make", "fmt", "steps"), WALKS, ids=[w[0] for w in WALKS])
def test_every_walk_stops_one_step_past_its_cap(monkeypatch, walk, make, fmt, steps):
    taken = 0
    real = getattr(headers, walk)

    def counting(*args: object) -> Iterator[object]:
        nonlocal taken
        for step in real(*args):
            taken += 1
            yield step

    monkeypatch.setattr(headers, walk, counting)
    with pytest.raises(costs.TooCostly):
        costs.check_container(make(), (fmt,))
    assert taken == steps + 1


# -- 2. the decode, refused from the header's size before a pixel is decoded ----------------


@pytest.mark.slow
@pytest.mark.parametrize("named", [THUMBNAIL, WEB], ids=["thumbnail", "web"])
def test_a_1_by_50_million_png_is_refused_before_its_rows_are_decoded(never_decoded, named):
    # GIVEN a valid 97 KB PNG of 1 x 50,000,000: under max_pixels, yet its 50M row pointers
    # alone are 400 MB (it peaked at 1.2 GB with thumbnail and 3.9 GB with web)
    data = png_tall(1, 50_000_000)
    assert len(data) < 100_000
    reason = refused(data, named)
    assert "the decoded picture would be 1x50,000,000: 149,868,928 pixels' worth" in reason
    assert "row pointers" in reason and "over the profile's max_pixels of 50,000,000" in reason


def test_an_animated_webp_canvas_times_its_frames_is_refused_before_a_frame_is_decoded(
    never_decoded, monkeypatch
):
    # GIVEN a 24 KB animated WebP: 500 16x16 frames on a 7000x7000 canvas, and a profile that
    # keeps animations; Pillow is not even asked to count the frames
    monkeypatch.setattr(decoding, "_frame_count", lambda _: pytest.fail("Pillow counted"))
    data = webp_animation((7000, 7000), 500)
    assert len(data) < 30_000
    reason = refused(data, ANIMATED)
    assert "animation is 100 frames of 7000x7000 = 4,900,000,000 pixels" in reason
    assert "over the profile's max_pixels of 50,000,000" in reason


def test_only_the_first_frame_counts_when_the_profile_does_not_keep_animations():
    # A still profile decodes frame 0 only: the canvas alone, which max_pixels allows.
    data = webp_animation((7000, 7000), 500)
    assert costs.check_container(data, THUMBNAIL.input_formats) == 500
    costs.check_decode((7000, 7000), 500, THUMBNAIL)  # no refusal


def test_a_gif_with_a_huge_canvas_and_many_frames_is_refused_when_frames_are_kept(never_decoded):
    reason = refused(gif_animation((7000, 7000), 5_000), ANIMATED)
    assert "animation is 100 frames of 7000x7000" in reason


@pytest.mark.slow
def test_an_apng_canvas_times_its_frames_is_refused_before_a_frame_is_decoded(never_decoded):
    kept = profile(rendition(), keep_animation=True, max_pixels=10_000_000)
    reason = refused(apng(4, (2000, 2000)), kept)
    assert "animation is 4 frames of 2000x2000 = 16,000,000 pixels" in reason


# -- 3. renditions, from the upright size ---------------------------------------------------


def tiff_line(width: int, height: int) -> bytes:
    return images.encode(Image.new("L", (width, height), 128), "TIFF")


def test_a_rendition_over_jpegs_side_limit_is_refused_before_decoding(never_decoded):
    # thumbnail never upscales: a 1 x 70,000 source stays 1 x 70,000 at width 200.
    reason = refused(tiff_line(1, 70_000), THUMBNAIL)
    assert "rendition 'thumb' would be 1x70,000: a side of 70,000 px" in reason
    assert "over JPEG's limit of 65,500 px a side" in reason


def test_a_rendition_over_webps_side_limit_is_refused_before_decoding(never_decoded):
    reason = refused(tiff_line(1, 20_000), WEB)
    assert "rendition 'w1600' would be 1x20,000" in reason
    assert "over WEBP's limit of 16,383 px a side" in reason


def test_the_geometry_is_worked_out_after_the_exif_orientation():
    # GIVEN a 20,000 x 1 JPEG: with the web profile it becomes 1600x1 and processes
    data = images.jpeg(20_000, 1)
    _, outputs = imaging.process(data, WEB)
    assert {(o.width, o.height) for o in outputs} == {(1600, 1), (800, 1), (320, 1), (1, 1)}
    # WHEN it says it is stored sideways (orientation 6) THEN upright it is 1 x 20,000
    reason = refused(images.jpeg(20_000, 1, orientation=6), WEB)
    assert "rendition 'w1600' would be 1x20,000" in reason


def test_an_upscaled_rendition_larger_than_max_pixels_is_refused(never_decoded):
    huge = profile(rendition("png", mode="width", width=16_384, upscale=True))
    reason = refused(tiff_line(100, 10_000), huge)
    assert "rendition 'r-png' would be 16,384x1,638,400: " in reason
    assert "over the profile's max_pixels of 50,000,000" in reason


@pytest.mark.parametrize("fmt", ["webp", "png"])
def test_an_animated_rendition_counts_every_frame_it_keeps(fmt):
    kept = profile(
        rendition(fmt, mode="fit", width=4000, height=4000, upscale=True),
        keep_animation=True,
        max_pixels=40_000_000,
    )
    sizes = planning.measure((60, 40), kept)
    with pytest.raises(costs.TooCostly, match="4,000x2,667 x 4 frames: 42,672,000 pixels"):
        costs.check_renditions(sizes, "gif", False, 4, kept)
    costs.check_renditions(sizes, "gif", False, 1, kept)  # a still: one picture


def test_the_encoder_limits_are_the_ones_pillow_really_has():
    # One pixel over each limit fails in Pillow itself; the limit itself is written.
    for fmt, name in (("jpeg", "JPEG"), ("webp", "WEBP")):
        side = costs.ENCODER_MAX_SIDE[fmt]
        images.encode(Image.new("L", (side, 1)), name)
        with pytest.raises((OSError, ValueError)):
            images.encode(Image.new("L", (side + 1, 1)), name)


# -- real files: counted as Pillow counts them, and left alone ------------------------------


@pytest.mark.parametrize(
    ("make", "fmt", "count"),
    [
        (lambda: images.animation("GIF", frames=4), "gif", 4),
        (lambda: images.animation("WEBP", frames=4), "webp", 4),
        (lambda: apng(4), "png", 4),
        (lambda: tiff_pages(3), "tiff", 3),
        (lambda: images.png(64, 48), "png", 1),
        (lambda: images.encode(images.photo(64, 48), "WEBP"), "webp", 1),
        (lambda: images.encode(images.photo(64, 48).convert("P"), "GIF"), "gif", 1),
    ],
)
def test_the_header_count_is_the_count_pillow_gives(make, fmt, count):
    data = make()
    assert costs.check_container(data, (fmt,)) == count
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == count


def test_a_multi_page_tiff_still_decodes_with_its_page_count():
    decoded = imaging.decode(tiff_pages(3), THUMBNAIL)
    assert decoded.frame_count == 3 and decoded.original_size == (40, 30)


@pytest.mark.slow  # every sample through both profiles: make test runs it
def test_every_sample_image_still_processes():
    for name, (_, expect, data) in samples().items():
        if expect != "ok":
            continue
        for named in (THUMBNAIL, WEB):
            _, outputs = imaging.process(data, named)
            expected = sum(len(rendition.formats) for rendition in named.renditions)
            assert len(outputs) == expected, (name, named.name)  # one per format


def test_a_sequential_jpeg_is_walked_only_to_its_first_scan(monkeypatch):
    # GIVEN a baseline JPEG followed by a second copy of its scan 150 times (the progressive
    # form of this is the scan bomb above), and the same bytes marked progressive
    data = images.jpeg(64, 48)
    first, end = data.index(b"\xff\xda"), data.rindex(b"\xff\xd9")
    repeated = data[:end] + data[first:end] * 150 + data[end:]
    sof0 = repeated.index(b"\xff\xc0")
    progressive = repeated[:sof0] + b"\xff\xc2" + repeated[sof0 + 2 :]
    walked: list[int] = []
    real = headers.jpeg_markers

    def counting(data: bytes):
        for marker in real(data):
            walked.append(marker[0])
            yield marker

    monkeypatch.setattr(headers, "jpeg_markers", counting)

    # WHEN the container is checked
    costs.check_container(repeated, ("jpeg",))

    # THEN the walk stopped at the first scan: it coded every component, so libjpeg decodes
    # the frame in one pass and refuses the copies
    assert walked.count(headers.JPEG_SOS) == 1 and walked[-1] == headers.JPEG_SOS
    with pytest.raises(OSError):
        Image.open(io.BytesIO(repeated)).load()
    # AND the progressive form is still walked to the end and refused
    with pytest.raises(costs.TooCostly, match="JPEG scans"):
        costs.check_container(progressive, ("jpeg",))


def _segment(code: int, body: bytes) -> bytes:
    return bytes([0xFF, code]) + struct.pack(">H", len(body) + 2) + body


def sequential_multiscan(width: int, height: int, scans: int) -> bytes:
    """Baseline (SOF0), three components; the first scan codes only the first, so libjpeg
    buffers the whole image's coefficients and decodes every later scan (none carries any
    data: libjpeg fills each with zeros after a warning). Found by review."""
    frame = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    counts = bytes([1] + [0] * 15)
    out = b"\xff\xd8" + _segment(0xDB, b"\x00" + bytes([1]) * 64) + _segment(0xC0, frame)
    out += _segment(0xC4, b"\x00" + counts + b"\x00" + b"\x10" + counts + b"\x00")
    out += _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    out += _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00") * (scans - 1)
    return out + b"\xff\xd9"


def test_a_baseline_jpeg_whose_first_scan_leaves_out_a_component_is_walked_to_the_end():
    # 7000x7000 in 1.5 KB: with 1,000 such scans libjpeg spends 17 CPU s where a 13 MB
    # photo takes 0.5 s; a scan of every component first is what stops the walk early
    few = sequential_multiscan(64, 48, 3)
    assert costs.check_container(few, ("jpeg",)) is None
    bomb = sequential_multiscan(7000, 7000, costs.MAX_JPEG_SCANS + 1)
    with pytest.raises(costs.TooCostly, match="JPEG scans"):
        costs.check_container(bomb, ("jpeg",))
