"""A catalogue of hostile and awkward inputs, each with the outcome it must have.

Every case is made in code (nothing downloaded). The expectation is the contract: a bad
input becomes a `failed` item whose `error` says why (and `error_type` names the class),
with no output written; an awkward but valid one (CMYK, 16-bit, odd EXIF, odd key) is
processed. Used by tests/reliability/test_hostile_inputs.py and by the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import resource
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from imgpipe_samples import encode, exif_with_orientation, photo
from lambda_pkg.profiles import Profile, load_named, profile_from_dict

S3_MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class Case:
    name: str  # what the case is, for the report
    key: str  # the object key it is uploaded under
    make: Callable[[], bytes]  # lazily: a few cases take a moment to build
    expect: str  # "ok", "failed" or "skipped"
    reason: str = ""  # a substring the failed item's `error` must contain
    profile: str = "thumbnail"  # a name from profiles/ or from PROFILES below
    group: str = "input"


# -- hand-made files ----------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A 57-byte PNG whose header claims any size and that has no pixel data at all."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def png_zero_bomb(width: int, height: int, bit_depth: int = 8) -> bytes:
    """A real, valid greyscale PNG of zeros: a few hundred KB that inflate to width*height."""
    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)  # filter byte + the row's samples
    packer = zlib.compressobj(9)
    chunks = [packer.compress(row) for _ in range(height)]
    data = b"".join(chunks) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    """A valid one-pixel-of-data GIF whose screen and frame claim width x height."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # 2-colour global table
    table = b"\x00\x00\x00\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    pixels = b"\x02\x02\x44\x01\x00"  # LZW min size 2, one sub-block: clear, 0, end
    return b"GIF89a" + screen + table + frame + pixels + b";"


def gif_frames(count: int, size: tuple[int, int]) -> bytes:
    """An animated GIF: `count` distinct frames of `size`."""
    frames = []
    for index in range(count):
        # Each frame differs from the last, so Pillow's writer keeps every one of them.
        frame = Image.new("P", size, color=0)
        frame.putpixel((index % size[0], (index // size[0]) % size[1]), 1 + index % 250)
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=20, loop=0)
    return buffer.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF marker is rewritten to claim width x height."""
    data = bytearray(encode(photo(64, 48), "JPEG", quality=80))
    at = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def jpeg_with_exif(app1_body: bytes) -> bytes:
    """A JPEG carrying an arbitrary APP1 segment (EXIF or junk pretending to be)."""
    data = encode(photo(320, 240), "JPEG", quality=85)
    segment = b"\xff\xe1" + struct.pack(">H", len(app1_body) + 2) + app1_body
    return data[:2] + segment + data[2:]


def flip_bytes(data: bytes, start: int, count: int) -> bytes:
    out = bytearray(data)
    for index in range(start, min(len(out), start + count)):
        out[index] ^= 0xFF
    return bytes(out)


def _jpeg(width: int = 640, height: int = 480, **params: object) -> bytes:
    return encode(photo(width, height), "JPEG", quality=85, **params)


def _png16_rgb() -> bytes:
    """48-bit RGB PNG, written by hand: Pillow cannot save 16-bit-per-channel RGB itself."""
    width, height = 64, 48
    rows = b"".join(
        b"\x00" + b"".join(struct.pack(">HHH", x * 1000, y * 1300, 40000) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def _png16_grey() -> bytes:
    grey = photo(320, 240).convert("L").convert("I").point(lambda v: v * 257)
    return encode(grey.convert("I;16"), "PNG")


# Formats Pillow can read but the allow-list must never open, as the bytes they start with.
FOREIGN_FORMATS = {
    "EPS (Ghostscript)": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n",
    "PDF": b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
    "PSD": b"8BPS\x00\x01"
    + b"\x00" * 6
    + b"\x00\x03\x00\x00\x00\x10\x00\x00\x00\x10\x00\x08\x00\x03",
    "FITS": b"SIMPLE  =                    T" + b" " * 50 + b"BITPIX  =                    8",
    "SVG": b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"/>',
}


def _foreign(name: str) -> Callable[[], bytes]:
    magic = FOREIGN_FORMATS[name]
    return lambda: magic.ljust(2048, b" ")


def _tiff_cmyk() -> bytes:
    return encode(photo(400, 300, "CMYK"), "TIFF")


PROFILES: dict[str, Callable[[], Profile]] = {
    # keep_animation with a frame cap: the animated-bomb cases need a profile that decodes
    # every frame, so the cap and the frames x pixels budget are what stand in the way.
    "animated": lambda: profile_from_dict(
        {
            "name": "animated",
            "keep_animation": True,
            "max_frames": 50,
            "max_pixels": 4_000_000,
            "renditions": [
                {
                    "name": "anim",
                    "resize": {"mode": "width", "width": 120},
                    "format": "webp",
                    "key": "processed/{key}/{rendition}.{ext}",
                }
            ],
        },
        source="reliability/hostile.py",
    ),
}


def profile(name: str) -> Profile:
    return PROFILES[name]() if name in PROFILES else load_named(name)


def cases() -> list[Case]:
    long_name = "n" * (S3_MAX_KEY_BYTES - len(".jpg")) + ".jpg"
    long_folder = "d" * (S3_MAX_KEY_BYTES - len("/x.jpg")) + "/x.jpg"
    unicode_key = "фото/写真 café 🙂.jpg"
    orientation_cases = [
        Case(
            f"EXIF orientation {value}",
            f"exif/orientation-{value}.jpg",
            lambda value=value: _jpeg(320, 200, exif=exif_with_orientation(value)),
            "ok",
            group="exif",
        )
        for value in range(9)
    ]
    return [
        # -- decompression bombs: refused from the header, before any pixel is decoded
        Case(
            "PNG bomb: 16000x16000 1-bit zeros, real IDAT (32 KB on disk)",
            "bombs/zeros-1bit.png",
            lambda: png_zero_bomb(16000, 16000, bit_depth=1),
            "failed",
            "decompression bomb",
            group="bomb",
        ),
        Case(
            "PNG bomb: 10000x10000 8-bit zeros, real IDAT (Pillow's warning band)",
            "bombs/zeros-8bit.png",
            lambda: png_zero_bomb(10000, 10000),
            "failed",
            "decompression bomb",
            group="bomb",
        ),
        Case(
            "PNG header claiming 60000x60000 in 57 bytes",
            "bombs/claims.png",
            lambda: png_header_only(60000, 60000),
            "failed",
            "decompression bomb",
            group="bomb",
        ),
        Case(
            "PNG header claiming 9000x9000 (under Pillow's limit, over max_pixels)",
            "bombs/claims-9000.png",
            lambda: png_header_only(9000, 9000),
            "failed",
            "over the profile's max_pixels",
            group="bomb",
        ),
        Case(
            "GIF claiming 40000x40000 in 35 bytes",
            "bombs/claims.gif",
            lambda: gif_claiming(40000, 40000),
            "failed",
            "decompression bomb",
            group="bomb",
        ),
        Case(
            "JPEG whose SOF claims 65000x65000",
            "bombs/claims.jpg",
            lambda: jpeg_claiming(65000, 65000),
            "failed",
            "decompression bomb",
            group="bomb",
        ),
        Case(
            "animated GIF, 400 frames of 160x120, keep_animation capped at 50 frames",
            "bombs/frames.gif",
            lambda: gif_frames(400, (160, 120)),
            "ok",
            profile="animated",
            group="bomb",
        ),
        Case(
            "animated GIF, 60 frames of 400x300 (frames x pixels over max_pixels)",
            "bombs/frame-pixels.gif",
            lambda: gif_frames(60, (400, 300)),
            "failed",
            "over the profile's max_pixels",
            profile="animated",
            group="bomb",
        ),
        # -- broken files
        Case(
            "JPEG truncated to 2 KB",
            "broken/truncated.jpg",
            lambda: _jpeg(1200, 900)[:2048],
            "failed",
            "truncated",
            group="broken",
        ),
        Case(
            "PNG truncated mid-IDAT",
            "broken/truncated.png",
            lambda: encode(photo(400, 300), "PNG")[:3000],
            "failed",
            "corrupt or truncated",
            group="broken",
        ),
        Case(
            "PNG with a corrupt IHDR checksum",
            "broken/bad-crc.png",
            lambda: flip_bytes(encode(photo(200, 150), "PNG"), 29, 4),
            "failed",
            "not a recognised image",
            group="broken",
        ),
        Case(
            "GIF cut after its header",
            "broken/header-only.gif",
            lambda: encode(photo(200, 150).convert("P"), "GIF")[:40],
            "failed",
            "",
            group="broken",
        ),
        Case(
            "WebP cut in half",
            "broken/half.webp",
            lambda: (lambda d: d[: len(d) // 2])(encode(photo(400, 300), "WEBP")),
            "failed",
            "",
            group="broken",
        ),
        Case(
            "zero-byte object",
            "broken/empty.jpg",
            lambda: b"",
            "failed",
            "empty",
            group="broken",
        ),
        # -- not an image, or not an allowed one, whatever the extension says
        Case(
            "a text file named .jpg",
            "wrong/notes.jpg",
            lambda: b"shopping list: milk, eggs\n" * 40,
            "failed",
            "not a recognised image",
            group="wrong",
        ),
        Case(
            "an HTML page named .png",
            "wrong/page.png",
            lambda: b"<!doctype html><html><body>hello</body></html>\n" * 20,
            "failed",
            "not a recognised image",
            group="wrong",
        ),
        *[
            Case(
                f"{fmt} named .jpg (outside the allow-list)",
                f"wrong/{fmt.split()[0].lower()}.jpg",
                _foreign(fmt),
                "failed",
                "not a recognised image",
                group="wrong",
            )
            for fmt in FOREIGN_FORMATS
        ],
        Case(
            "ICO (Pillow reads it; not allowed)",
            "wrong/favicon.jpg",
            lambda: encode(photo(32, 32), "ICO"),
            "failed",
            "not a recognised image",
            group="wrong",
        ),
        Case(
            "a PNG named .jpg (format comes from the bytes)",
            "wrong/really-a-png.jpg",
            lambda: encode(photo(300, 200), "PNG"),
            "ok",
            group="wrong",
        ),
        Case(
            "a JPEG named .gif",
            "wrong/really-a-jpeg.gif",
            lambda: _jpeg(300, 200),
            "ok",
            group="wrong",
        ),
        # -- awkward but valid
        Case("16-bit greyscale PNG", "modes/grey16.png", _png16_grey, "ok", group="mode"),
        Case("48-bit RGB PNG", "modes/rgb48.png", _png16_rgb, "ok", group="mode"),
        Case(
            "CMYK JPEG",
            "modes/cmyk.jpg",
            lambda: encode(photo(400, 300, "CMYK"), "JPEG"),
            "ok",
            group="mode",
        ),
        Case("CMYK TIFF", "modes/cmyk.tif", _tiff_cmyk, "ok", group="mode"),
        Case(
            "1-bit TIFF",
            "modes/bilevel.tif",
            lambda: encode(photo(300, 200).convert("1"), "TIFF"),
            "ok",
            group="mode",
        ),
        Case(
            "LA PNG (grey + alpha)",
            "modes/la.png",
            lambda: encode(photo(300, 200).convert("LA"), "PNG"),
            "ok",
            group="mode",
        ),
        *orientation_cases,
        Case(
            "EXIF orientation 65535 (out of range)",
            "exif/orientation-65535.jpg",
            lambda: _jpeg(320, 200, exif=exif_with_orientation(65535)),
            "ok",
            group="exif",
        ),
        Case(
            "corrupt EXIF: garbage after the Exif header",
            "exif/garbage.jpg",
            lambda: jpeg_with_exif(b"Exif\x00\x00" + bytes(range(256)) * 4),
            "ok",
            group="exif",
        ),
        Case(
            "corrupt EXIF: IFD offset pointing past the end",
            "exif/bad-offset.jpg",
            lambda: jpeg_with_exif(b"Exif\x00\x00MM\x00\x2a\x7f\xff\xff\xf0"),
            "ok",
            group="exif",
        ),
        Case(
            "corrupt EXIF: an IFD claiming 65535 entries",
            "exif/many-entries.jpg",
            lambda: jpeg_with_exif(b"Exif\x00\x00II\x2a\x00\x08\x00\x00\x00\xff\xff"),
            "ok",
            group="exif",
        ),
        # -- keys
        Case("key with spaces", "keys/my holiday photo.jpg", _jpeg, "ok", group="key"),
        Case("key with +", "keys/a+b=c.jpg", _jpeg, "ok", group="key"),
        Case("key with %", "keys/100% real%20.jpg", _jpeg, "ok", group="key"),
        Case("unicode key", unicode_key, _jpeg, "ok", group="key"),
        Case(
            "1,024-byte key: long folder, short name (flattened by thumbnail)",
            long_folder,
            _jpeg,
            "ok",
            group="key",
        ),
        Case(
            "1,024-byte key whose output key would pass S3's 1,024-byte limit",
            long_name,
            _jpeg,
            "failed",
            "1,024",
            group="key",
        ),
        Case(
            "1,024-byte key, web profile (keys keep the whole source key)",
            long_folder.replace("/x.jpg", "/y.jpg"),
            _jpeg,
            "failed",
            "1,024",
            profile="web",
            group="key",
        ),
        Case("folder marker", "keys/folder/", lambda: b"", "skipped", group="key"),
    ]


# -- running the catalogue ----------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    case: Case
    status: str  # ok / failed / skipped / raised
    error_type: str = ""
    error: str = ""
    outputs: int = 0  # objects under processed/ after this case
    problem: str = ""  # empty when the outcome is the expected one

    @property
    def passed(self) -> bool:
        return not self.problem


def run_case(world: Any, case: Case) -> CaseResult:
    """Upload the case, deliver its S3 event to the handler, and judge what it left."""
    world.clear_outputs()
    data = case.make()
    try:
        summary = world.process(case.key, data, profile(case.profile))
    except Exception as exc:  # the handler raising means Lambda would retry a bad image
        return CaseResult(case, "raised", type(exc).__name__, str(exc), problem="raised")
    item = world.item(case.key)
    outputs = world.output_sizes()
    status = (item or {}).get("status", "none")
    if summary.get("skipped"):
        status = "skipped"
    result = CaseResult(
        case,
        status,
        (item or {}).get("error_type", ""),
        (item or {}).get("error", ""),
        len(outputs),
    )
    return dataclasses.replace(result, problem=_judge(case, result, item, outputs))


def _judge(case: Case, result: CaseResult, item: dict | None, outputs: dict[str, int]) -> str:
    if result.status != case.expect:
        return f"expected {case.expect}, got {result.status} ({result.error})"
    if case.expect == "skipped":
        return "" if item is None and not outputs else "a skipped key left an item or output"
    if case.expect == "failed":
        if outputs:
            return f"a failed image wrote {len(outputs)} output(s)"
        if not result.error or not result.error_type:
            return "the failed item has no error or error_type"
        if case.reason not in result.error:
            return f"reason {case.reason!r} not in {result.error!r}"
        return ""
    assert item is not None
    recorded = {r["key"]: int(r["bytes"]) for r in item["renditions"]}
    if recorded != outputs:
        return f"renditions {recorded} do not match the outputs {outputs}"
    return ""


def memory_probe(timeout_s: float = 120) -> dict[str, Any]:
    """Peak RSS of a fresh interpreter decoding every case (no AWS), in MB.

    A child process, so the figure is this corpus's and nothing else's; ru_maxrss only grows,
    so the growth after each case is what that case cost on top of everything before it.
    """
    done = subprocess.run(
        [sys.executable, "-c", "from reliability.hostile import _probe; _probe()"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    """Peak RSS of this process's memory (VmHWM). Not ru_maxrss: that survives exec, so a
    child of a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _probe() -> None:
    from lambda_pkg import imaging

    made = [(case, case.make()) for case in cases() if case.expect != "skipped"]
    imaging.process(_jpeg(640, 480), profile("thumbnail"))  # warm: codecs, pools, caches
    baseline = before = _rss_mb()
    growth: dict[str, float] = {}
    for case, data in made:
        with contextlib.suppress(imaging.ImageRejected):
            imaging.process(data, profile(case.profile))
        after = _rss_mb()
        growth[case.name] = round(after - before, 1)
        before = after
    worst = max(growth, key=growth.__getitem__)
    print(
        json.dumps(
            {
                "baseline_mb": round(baseline, 1),
                "peak_mb": round(_rss_mb(), 1),
                "worst_case": worst,
                "worst_growth_mb": growth[worst],
                "growth_mb": growth,
            }
        )
    )
