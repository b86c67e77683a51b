"""fastpng: libspng decodes a PNG only where the result is Pillow's own, byte for byte.

Every PNG of a varied corpus (bit depths, grey, alpha, palettes, tRNS, Adam7, ICC, EXIF
orientation before and after the pixels, gAMA, text after the pixels, APNG, damaged streams)
goes through imaging.process twice: as shipped, and with Pillow decoding every PNG (the
path before libspng). Outputs, metadata and the decoded picture must be identical, and a
rejection must keep its reason.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable

import numpy as np
import pyspng
import pytest
from PIL import Image

from imgpipe_samples import crafted, exif_with_orientation, photo
from lambda_pkg import decoding, fastpng, imaging
from lambda_pkg.profiles import Profile, load_named
from tests.support import REPO

SIZE = (301, 203)  # odd sides: Adam7's passes and the filters' edges at uneven widths


def _png(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **params)
    return buffer.getvalue()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    found, at = [], 8
    while at < len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        found.append((kind, data[at + 8 : at + 8 + length]))
        at += 12 + length
    return found


def _join(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:
        crc = zlib.crc32(kind + body)
        out.append(struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", crc))
    return b"".join(out)


def _insert(data: bytes, kind: bytes, body: bytes, after_pixels: bool) -> bytes:
    chunks = _chunks(data)
    kinds = [k for k, _ in chunks]
    at = len(chunks) - 1 if after_pixels else kinds.index(b"IDAT")
    return _join([*chunks[:at], (kind, body), *chunks[at:]])


def _exif_after_pixels(data: bytes) -> bytes:
    chunks = _chunks(data)
    exif = next(c for c in chunks if c[0] == b"eXIf")
    rest = [c for c in chunks if c[0] != b"eXIf"]
    return _join([*rest[:-1], exif, rest[-1]])


def _single_idat(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The pixel stream as one IDAT, changed, every CRC still right."""
    chunks = _chunks(data)
    stream = b"".join(body for kind, body in chunks if kind == b"IDAT")
    first = [k for k, _ in chunks].index(b"IDAT")
    kept = [c for c in chunks if c[0] != b"IDAT"]
    return _join([*kept[:first], (b"IDAT", change(stream)), *kept[first:]])


def _interlaced(array: np.ndarray) -> bytes:
    return pyspng.encode(array, pyspng.ProgressiveMode.INTERLACED)


def corpus() -> dict[str, bytes]:
    rgb = photo(*SIZE)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(rgb.convert("L"))
    grey = rgb.convert("L")
    palette = rgb.quantize(64)
    sixteen = np.asarray(grey, dtype=np.uint16) * 257
    rgba16 = np.asarray(rgba, dtype=np.uint16) * 257 + 3
    oriented = _png(rgb, exif=exif_with_orientation(6))
    return {
        "rgb": _png(rgb),
        "rgb-z9": _png(rgb, compress_level=9),
        "rgba": _png(rgba),
        "grey": _png(grey),
        "grey-alpha": _png(rgba.convert("LA")),
        "palette": _png(palette),
        "palette-trns": _png(palette, transparency=0),
        "rgb-trns": _png(rgb, transparency=(255, 255, 0)),
        "grey-trns": _png(grey, transparency=0),
        "grey16": _png(Image.fromarray(sixteen.astype(np.uint16)).convert("I;16")),
        "rgba16": pyspng.encode(rgba16.astype(np.uint16)),
        "bilevel": _png(grey.convert("1")),
        "rgb-adam7": _interlaced(np.asarray(rgb)),
        "rgba-adam7": _interlaced(np.asarray(rgba)),
        "grey-adam7": _interlaced(np.asarray(grey)),
        "rgb-icc": _png(rgb, icc_profile=crafted.srgb_icc()),
        "rgb-exif6": oriented,
        "rgb-exif6-after-pixels": _exif_after_pixels(oriented),
        "rgba-exif8-icc": _png(rgba, exif=exif_with_orientation(8), icc_profile=crafted.srgb_icc()),
        "rgb-gamma": _insert(_png(rgb), b"gAMA", struct.pack(">I", 100000), after_pixels=False),
        "rgb-text-after": _insert(_png(rgb), b"tEXt", b"Comment\x00late", after_pixels=True),
        "rgb-xmp-after": _insert(
            _png(rgb),
            b"iTXt",
            b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x tiff:Orientation='3'/>",
            after_pixels=True,
        ),
        "apng": _apng(rgb),
        # libspng refuses a critical chunk it does not know, Pillow skips it: Pillow decides.
        "unknown-critical": _insert(_png(rgb), b"ZZZZ", b"junk", after_pixels=False),
        "bad-adler": _single_idat(_png(rgb), lambda s: s[:-4] + bytes(4)),
        "bad-stream": _single_idat(_png(rgb), lambda s: s[:40] + b"\xff" * 64 + s[104:]),
        "short-stream": _single_idat(_png(rgb), lambda s: zlib.compress(zlib.decompress(s)[:-999])),
        "truncated": _png(rgb)[:-5000],
    }


def _apng(image: Image.Image) -> bytes:
    frames = [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return _png(frames[0], save_all=True, append_images=frames[1:], duration=100)


CORPUS = corpus()
ANIMATED = dataclasses.replace(load_named("web"), keep_animation=True, keep_metadata=True)
PROFILES = {"thumbnail": load_named("thumbnail"), "web": load_named("web"), "kept": ANIMATED}


def _run(data: bytes, profile: Profile) -> tuple[object, ...]:
    """What process() gives, in comparable form: the outputs, the item's facts, the picture."""
    try:
        decoded, outputs = imaging.process(data, profile)
    except decoding.ImageRejected as exc:
        return ("rejected", str(exc))
    facts = {f.name: getattr(decoded, f.name) for f in dataclasses.fields(decoded)}
    picture = facts.pop("image")
    facts.pop("animation")
    rendered = [(o.rendition.name, o.format, o.width, o.height, o.data) for o in outputs]
    return rendered, facts, picture.mode, picture.size, picture.tobytes()


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", CORPUS)
def test_same_result_as_pillow_alone(
    name: str, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one PNG of the corpus
    data = CORPUS[name]
    # WHEN it is processed as shipped, and with Pillow decoding every PNG
    ours = _run(data, PROFILES[profile])
    monkeypatch.setattr(fastpng, "pixels", lambda data: None)
    pillows = _run(data, PROFILES[profile])
    # THEN everything is identical, a rejection's reason included
    assert ours == pillows


LIBSPNG_DECODES = {
    "rgb": "RGB",
    "rgb-z9": "RGB",
    "rgba": "RGBA",
    "grey": "L",
    "rgb-adam7": "RGB",
    "rgba-adam7": "RGBA",
    "grey-adam7": "L",
    "rgb-icc": "RGB",
    "rgb-exif6": "RGB",
    "rgba-exif8-icc": "RGBA",
    "rgb-gamma": "RGB",
}


# Chosen from the chunks alone; libspng then refuses the stream and Pillow decides.
DAMAGED = ("unknown-critical", "bad-adler", "bad-stream", "short-stream", "truncated")


@pytest.mark.parametrize("name", CORPUS)
def test_libspng_is_chosen_for_exactly_the_plain_8_bit_pngs(name: str) -> None:
    chosen = fastpng.pixels(CORPUS[name])
    expected = "RGB" if name in DAMAGED else LIBSPNG_DECODES.get(name)
    assert (chosen.mode if chosen else None) == expected


@pytest.mark.parametrize("name", sorted(LIBSPNG_DECODES))
def test_libspng_picture_is_pillows(name: str) -> None:
    data = CORPUS[name]
    chosen = fastpng.pixels(data)
    assert chosen is not None
    fast = chosen.decode()
    assert fast is not None  # libspng did decode it: the comparison below is not vacuous
    pillow = Image.open(io.BytesIO(data))
    pillow.load()
    assert (fast.mode, fast.size, fast.tobytes()) == (pillow.mode, pillow.size, pillow.tobytes())


@pytest.mark.parametrize("name", DAMAGED)
def test_libspng_refuses_a_damaged_stream(name: str) -> None:
    chosen = fastpng.pixels(CORPUS[name])
    assert chosen is not None and chosen.decode() is None


def test_libspng_refusal_hands_the_bytes_back_to_pillow() -> None:
    # GIVEN a critical chunk no decoder knows: libspng refuses the file, Pillow skips it
    decoded, outputs = imaging.process(CORPUS["unknown-critical"], PROFILES["thumbnail"])
    # THEN the picture is Pillow's, as before libspng
    assert decoded.original_size == SIZE and outputs


@pytest.mark.parametrize("name", ["bad-adler", "bad-stream", "short-stream", "truncated"])
def test_a_damaged_png_is_still_rejected_with_a_reason(name: str) -> None:
    with pytest.raises(decoding.ImageRejected, match="corrupt or truncated image: "):
        imaging.process(CORPUS[name], PROFILES["thumbnail"])


def test_no_pixel_is_decoded_before_the_rendition_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a plain PNG whose metadata is all before its pixels
    header = decoding.read_header(CORPUS["rgb-exif6"], PROFILES["thumbnail"])
    # THEN reading its header (orientation included) decoded nothing
    assert header.image._im is None and header.orientation == 6


def test_a_cold_start_imports_neither_pyspng_nor_numpy() -> None:
    code = (
        "import sys, lambda_pkg.handler\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspng', 'numpy')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == "[]"


def test_the_budget_child_loads_the_decoder_before_any_call_limit() -> None:
    # GIVEN a fresh function process (no pyspng) and its worker, started as for an image
    code = (
        "import sys, time\n"
        "from lambda_pkg import budget, isolated\n"
        "def loaded(): return sorted(m for m in ('pyspng', 'numpy') if m in sys.modules)\n"
        "worker = isolated.new_worker()\n"
        "worker.start(memory_mb=None)\n"
        "print(loaded(), worker.call(budget.Budget(time.monotonic() + 60), loaded))\n"
        "worker.stop()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    # THEN the parent never imported it; the child did as it started, before any call's
    # RLIMIT_AS (numpy's OpenBLAS spins for good when an allocation fails under it)
    assert done.stdout.strip() == "[] ['numpy', 'pyspng']"
