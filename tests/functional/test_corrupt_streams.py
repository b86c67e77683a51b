"""Damaged pixel data through the handler: `failed` with a reason, and nothing written.

Every case makes a photo-like image in code (gradients, shapes and noise, so the compressed
stream is long), damages only its compressed pixel data, never the header, and sends the real
S3 event to the handler. Two kinds of damage: sixteen bytes inverted in the middle of the
stream, and the file cut off there.

Whether a decoder can notice inverted bytes depends on the format. PNG's did at every place
tried (each row starts with a filter byte that must be 0-4, which garbage soon breaks). The
GIF (LZW), lossless WebP, TIFF deflate and TIFF LZW decoders notice most such damage but not
all (bytes that still decode as valid codes pass), so for them the test takes the first place
from the middle on where Pillow's decoder raises. Whatever the decoder raises must reach the
item. For PNG it once did not: reading EXIF decoded the pixels inside `except Exception`, and
the load after it returned the half-decoded picture as if it were whole.

The JPEG, lossy WebP, HEIC, TIFF PackBits and BMP RLE8 decoders report nothing for the damage
in the middle (see CONCEALED for why). Those cases are strict xfails: they record the outcome
we want, and the run fails if a decoder starts to notice. Cutting the file short is detected
in every format, and the cut tests assert it.
"""

from __future__ import annotations

import functools
import io
import random
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from PIL import GifImagePlugin, Image, ImageFile, TiffImagePlugin

from lambda_pkg import imaging
from lambda_pkg.handler import process_event
from lambda_pkg.profiles import PipelineConfig, Profile, Rendition, Resize, load_named
from lambda_pkg.settings import Settings
from tests.support import images
from tests.support.aws import INPUT_BUCKET, OUTPUT_BUCKET, TABLE, put_event

pytestmark = pytest.mark.slow  # every format, damaged three ways: make test runs it

SIZE = (480, 360)
Span = tuple[int, int]  # [start, end) of compressed pixel data in the file


@dataclass(frozen=True)
class Stream:
    data: bytes
    payload: tuple[Span, ...]

    def positions(self) -> list[int]:
        return [i for start, end in self.payload for i in range(start, end)]

    def flipped(self, at: int | None = None, count: int = 16) -> bytes:
        """`count` bytes inverted in the compressed pixel data, from its `at`-th byte (by
        default the middle one)."""
        positions = self.positions()
        start = len(positions) // 2 if at is None else at
        damaged = bytearray(self.data)
        for i in positions[start : start + count]:
            damaged[i] ^= 0xFF
        return bytes(damaged)

    def flipped_where_noticed(self) -> bytes:
        """Inverted bytes the decoder notices: the first such place from the middle on, in
        steps of a few hundred bytes. Where a format's decoder notices only some damage,
        this picks damage it notices; the handler must then never lose the error."""
        positions = self.positions()
        for at in range(len(positions) // 2, len(positions) - 16, 331):
            damaged = self.flipped(at)
            if not pillow_reads(damaged):
                return damaged
        raise AssertionError("the decoder noticed no inverted bytes after the middle")

    def cut(self) -> bytes:
        """The file up to the middle of its compressed pixel data."""
        positions = self.positions()
        return self.data[: positions[len(positions) // 2]]


@functools.cache
def detailed(mode: str = "RGB") -> Image.Image:
    """The sample photo under seeded noise: detail that keeps every codec's stream long."""
    rng = random.Random(20240611)
    cells = (SIZE[0] // 2, SIZE[1] // 2)
    noise = Image.frombytes("L", cells, rng.randbytes(cells[0] * cells[1])).resize(SIZE)
    image = Image.blend(images.photo(*SIZE), noise.convert("RGB"), 0.35)
    return image.convert(mode)


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset of the chunk, length of its data) for each chunk."""
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        found.append((data[at + 4 : at + 8], at, length))
        at += 12 + length
    return found


def png_stream() -> Stream:
    data = images.encode(detailed(), "PNG")
    idat = [(at + 8, at + 8 + n) for kind, at, n in _png_chunks(data) if kind == b"IDAT"]
    return Stream(data, tuple(idat))


def gif_stream() -> Stream:
    data = images.encode(detailed("P"), "GIF")
    at, spans = 13, []
    if data[10] & 0x80:  # global colour table
        at += 3 * (2 << (data[10] & 7))
    while data[at] != 0x3B:  # trailer
        if data[at] == 0x21:  # extension: label, then sub-blocks
            at += 2
            while data[at]:
                at += data[at] + 1
            at += 1
            continue
        flags = data[at + 9]  # image descriptor, local colour table, LZW code size
        at += 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0) + 1
        while data[at]:  # LZW data sub-blocks: only their data, never their length bytes
            spans.append((at + 1, at + 1 + data[at]))
            at += data[at] + 1
        at += 1
    return Stream(data, tuple(spans))


def _riff_chunk(data: bytes, fourcc: bytes) -> Span:
    at = 12
    while at < len(data):
        (length,) = struct.unpack("<I", data[at + 4 : at + 8])
        if data[at : at + 4] == fourcc:
            return at + 8, at + 8 + length
        at += 8 + length + (length & 1)
    raise AssertionError(f"no {fourcc!r} chunk")


def webp_lossy_stream() -> Stream:
    data = images.encode(detailed(), "WEBP", quality=85)
    start, end = _riff_chunk(data, b"VP8 ")
    return Stream(data, ((start + 10, end),))  # after the 10-byte frame header


def webp_lossless_stream() -> Stream:
    data = images.encode(detailed(), "WEBP", lossless=True)
    start, end = _riff_chunk(data, b"VP8L")
    return Stream(data, ((start + 5, end),))  # after the signature and size


def tiff_stream(compression: str, directory_first: bool = True) -> Stream:
    data = images.encode(detailed(), "TIFF", compression=compression)
    tags = Image.open(io.BytesIO(data)).tag_v2
    strips = [data[at : at + n] for at, n in zip(tags[273], tags[279], strict=True)]
    if not directory_first:  # as libtiff writes it: the directory after the strips
        return Stream(
            data, tuple((at, at + len(s)) for at, s in zip(tags[273], strips, strict=True))
        )
    # The directory first, so a cut inside the strips leaves the header readable.
    directory = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    for tag, value in tags.items():
        directory[tag] = value
        directory.tagtype[tag] = tags.tagtype[tag]
    relative = [sum(len(s) for s in strips[:i]) for i in range(len(strips))]
    directory[273] = tuple(relative)  # Pillow's writer counts these from the directory's end
    head = b"II*\x00" + struct.pack("<I", 8) + directory.tobytes(8)
    spans = tuple(
        (len(head) + at, len(head) + at + len(s)) for at, s in zip(relative, strips, strict=True)
    )
    return Stream(head + b"".join(strips), spans)


def bmp_rle8_stream() -> Stream:
    """An 8-bit RLE BMP, written by hand (Pillow writes BMP uncompressed only): each row as
    (count, index) runs and an end-of-line, the last row ending the bitmap instead."""
    image = detailed("P")
    width, height = image.size
    pixels = image.tobytes()
    rle = bytearray()
    for y in reversed(range(height)):  # bottom-up
        row, x = pixels[y * width : (y + 1) * width], 0
        while x < width:
            run = 1
            while x + run < width and run < 255 and row[x + run] == row[x]:
                run += 1
            rle += bytes((run, row[x]))
            x += run
        rle += b"\x00\x00" if y else b"\x00\x01"
    rgb = (image.getpalette() or []) + [0] * 768
    palette = b"".join(bytes((rgb[i + 2], rgb[i + 1], rgb[i], 0)) for i in range(0, 768, 3))
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(rle), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(rle), 2835, 2835, 256, 0)
    data = header + info + palette + bytes(rle)
    return Stream(data, ((offset, len(data)),))


def jpeg_stream() -> Stream:
    data = images.encode(detailed(), "JPEG", quality=90)
    sos = data.rfind(b"\xff\xda")
    (length,) = struct.unpack(">H", data[sos + 2 : sos + 4])
    return Stream(data, ((sos + 2 + length, len(data) - 2),))  # the scan, before EOI


def heic_stream() -> Stream:
    import pillow_heif

    pillow_heif.register_heif_opener()
    data = images.encode(detailed(), "HEIF", quality=90)
    at, spans = 0, []
    while at < len(data):  # top-level boxes; the HEVC slices live in mdat
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"mdat":
            spans.append((at + 8, at + size))
        at += size
    return Stream(data, tuple(spans))


STREAMS: dict[str, Callable[[], Stream]] = {
    "png": png_stream,
    "gif": gif_stream,
    "webp-lossy": webp_lossy_stream,
    "webp-lossless": webp_lossless_stream,
    "tiff-deflate": lambda: tiff_stream("tiff_deflate"),
    "tiff-lzw": lambda: tiff_stream("tiff_lzw"),
    "tiff-packbits": lambda: tiff_stream("packbits"),
    "bmp-rle8": bmp_rle8_stream,
    "jpeg": jpeg_stream,
    "heic": heic_stream,
}
DETECTED = ("png", "gif", "webp-lossless", "tiff-deflate", "tiff-lzw")
CONCEALED = {
    "jpeg": "libjpeg reports this damage only as a warning ('Corrupt JPEG data: 47 extraneous"
    " bytes before marker 0xd9', djpeg exits 2) and carries on; Pillow's JPEG decoder gives"
    " libjpeg a no-op message handler and never looks at its warning count, so Python sees"
    " a complete picture",
    "webp-lossy": "VP8 has no checksum, and libwebp decodes these inverted bytes into other"
    " pixels with no error",
    "heic": "HEVC slices have no checksum, and libde265 (pillow-heif's decoder) decodes the"
    " damaged slice data into other pixels with no error",
    "tiff-packbits": "PackBits has no checksum, and these bytes fall inside a literal run:"
    " they are pixel values, not structure, so the strip still unpacks to exactly its rows"
    " and no decoder can tell",
    "bmp-rle8": "RLE has no checksum, and Pillow's RLE8 decoder clips a run that overruns its"
    " row (the damage turns counts of 1 into 254) instead of failing: the rows stay aligned"
    " and the picture comes out the right size",
}
assert set(DETECTED) | set(CONCEALED) == set(STREAMS)


def _flip_case(fmt: str) -> object:
    if fmt in CONCEALED:
        mark = pytest.mark.xfail(strict=True, raises=AssertionError, reason=CONCEALED[fmt])
        return pytest.param(fmt, marks=mark)
    return fmt


def run(aws, key: str, data: bytes, settings: Settings | None = None) -> dict[str, int]:
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, key, len(data))
    return process_event(event, settings or aws.settings(), aws.s3, aws.dynamodb)


def pillow_reads(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data)).load()
    except Exception:
        return False
    return True


def assert_failed_as_damaged(aws, key: str, result: dict[str, int]) -> None:
    assert result == {"processed": 0, "failed": 1, "skipped": 0}
    item = aws.item(key)
    assert item["status"] == "failed"
    assert item["error_type"] == "ImageRejected"
    assert re.search(r"corrupt|truncated", item["error"]), item["error"]
    assert aws.output_keys() == []
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("fmt", STREAMS)
def test_the_undamaged_images_are_processed(aws, fmt):
    # GIVEN the image each damage test starts from, undamaged
    data = STREAMS[fmt]().data

    # WHEN its upload reaches the handler
    result = run(aws, f"good/{fmt}", data)

    # THEN it is processed: only the damage makes the other tests' images fail
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    assert aws.item(f"good/{fmt}")["status"] == "ok"
    assert len(aws.output_keys()) == 1


@pytest.mark.parametrize("fmt", [_flip_case(fmt) for fmt in STREAMS])
def test_bytes_inverted_mid_stream_fail_the_image(aws, fmt):
    # GIVEN an image with 16 bytes inverted in the middle of its compressed pixel data
    stream = STREAMS[fmt]()
    damaged = stream.flipped() if fmt in CONCEALED else stream.flipped_where_noticed()

    # WHEN its upload reaches the handler
    result = run(aws, f"flipped/{fmt}", damaged)

    # THEN the item is failed as a damaged image, and no rendition is written
    assert_failed_as_damaged(aws, f"flipped/{fmt}", result)


# A TIFF cut before its directory makes Pillow warn while it looks for one: that is the input.
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize("fmt", [*STREAMS, "tiff-deflate-directory-last"])
def test_a_file_cut_mid_stream_fails_the_image(aws, fmt):
    # GIVEN an image cut off in the middle of its compressed pixel data (a TIFF as libtiff
    # writes it loses its directory with the cut; the others keep their header)
    if fmt == "tiff-deflate-directory-last":
        stream = tiff_stream("tiff_deflate", directory_first=False)
    else:
        stream = STREAMS[fmt]()

    # WHEN its upload reaches the handler
    result = run(aws, f"cut/{fmt}", stream.cut())

    # THEN the item is failed as a damaged image, and no rendition is written
    assert_failed_as_damaged(aws, f"cut/{fmt}", result)


def _with_chunk(png: bytes, kind: bytes, body: bytes, before: bytes) -> bytes:
    """`png` with a chunk inserted before the first chunk of type `before`."""
    at = next(offset for name, offset, _ in _png_chunks(png) if name == before)
    crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return png[:at] + struct.pack(">I", len(body)) + kind + body + crc + png[at:]


JUNK_EXIF = b"not exif at all"


@pytest.mark.parametrize("where", [b"IDAT", b"IEND"])
def test_junk_exif_in_a_good_png_is_tolerated(aws, where):
    # GIVEN a PNG with good pixels and an eXIf chunk that does not parse, stored before the
    # pixels or after them (where Pillow looks only once the pixels are decoded)
    data = _with_chunk(png_stream().data, b"eXIf", JUNK_EXIF, before=where)
    with pytest.raises(SyntaxError):  # premise: Pillow's getexif() raises on this block
        Image.open(io.BytesIO(data)).getexif()

    # WHEN its upload reaches the handler
    result = run(aws, "junk-exif.png", data)

    # THEN junk metadata does not lose the picture
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    assert aws.item("junk-exif.png")["status"] == "ok"


def test_a_png_with_exif_after_damaged_pixels_fails_the_image(aws):
    # GIVEN damaged pixel data, and a good eXIf chunk after it: reading EXIF decodes first
    exif = images.exif_with_orientation(6)
    data = _with_chunk(png_stream().flipped(), b"eXIf", exif, before=b"IEND")

    # WHEN its upload reaches the handler
    result = run(aws, "exif-after.png", data)

    # THEN the decode error is not lost in the EXIF read
    assert_failed_as_damaged(aws, "exif-after.png", result)


def keeping_animations() -> Settings:
    webp = Rendition(
        "anim", Resize("width", width=120), "webp", "processed/{key}/{rendition}.{ext}"
    )
    profile = Profile(name="animated", renditions=(webp,), keep_animation=True)
    return Settings(OUTPUT_BUCKET, TABLE, PipelineConfig.single(profile))


def test_an_apng_whose_first_frame_is_damaged_fails_when_frames_are_kept(aws):
    # GIVEN a 3-frame APNG whose first frame's data (the IDAT) is damaged mid-stream
    picture = detailed()
    frames = [picture, picture.rotate(90), picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    apng = images.encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    idat = [(at + 8, at + 8 + n) for kind, at, n in _png_chunks(apng) if kind == b"IDAT"]
    damaged = Stream(apng, tuple(idat)).flipped()

    # WHEN its upload reaches a handler whose profile keeps animations
    result = run(aws, "anim.png", damaged, keeping_animations())

    # THEN the item is failed, not an animation with a half-decoded first frame
    assert_failed_as_damaged(aws, "anim.png", result)


def test_an_attribute_error_while_counting_frames_is_not_one_frame(monkeypatch):
    # GIVEN a GIF whose frame count cannot be read (counting reads every frame's header, and
    # getattr(image, "n_frames", 1) once turned an AttributeError in there into "1 frame")
    def broken(self):
        raise AttributeError("'GifImageFile' object has no attribute 'dispose_extent'")

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "n_frames", property(broken))

    # WHEN it is decoded, THEN it is rejected as damaged
    with pytest.raises(imaging.ImageRejected, match="corrupt or truncated"):
        imaging.process(images.animation("GIF"), load_named("thumbnail"))


def test_a_png_cut_before_its_checksum_and_end_fails(aws):
    # GIVEN a PNG missing its zlib checksum and IEND: every row is there, the file is not
    png = images.encode(detailed(), "PNG")
    cut = png[: -12 - 4]
    assert pillow_reads(cut)
    result = run(aws, "crc/cut.png", cut)
    assert_failed_as_damaged(aws, "crc/cut.png", result)
