"""decode -> orient -> colour -> every rendition -> encode, with Pillow.

The stages are fixed here; each step lives in its own small module:
formats (what the bytes are), colour (sRGB, 8-bit modes), geometry (sizes), transforms
(resize rules), gravity (where a crop sits), encoding (options, metadata), animation,
placeholders (BlurHash, dominant colour).

Speed comes from doing less decoding: JPEG is decoded DCT-scaled (`draft`) at the smallest
scale every rendition can still be made from, once; renditions cascade from the largest
down, each from the smallest earlier picture still big enough; encodes run on a thread
pool (Pillow's encoders release the GIL) while the next rendition is being resized.
Nothing here touches AWS; the handler feeds bytes in and gets encoded renditions out.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from lambda_pkg import animation, costs, encoding, formats, geometry, placeholders, transforms
from lambda_pkg.colour import has_alpha as _has_alpha
from lambda_pkg.colour import normalise_mode, to_srgb
from lambda_pkg.geometry import target_size
from lambda_pkg.profiles import EXTENSIONS, Profile, Rendition, Resize

__all__ = ["Decoded", "ImageRejected", "Output", "decode", "normalise_mode", "process"]
__all__ += ["target_size"]

CONTENT_TYPES = encoding.CONTENT_TYPES
PILLOW_FORMATS = formats.PILLOW_FORMATS
_EXIF_ORIENTATION = 0x0112
_GPS_IFD = 0x8825
_SWAPS_AXES = {5, 6, 7, 8}
# EXIF orientation -> the transpose that shows the picture upright (ImageOps' table).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# IndexError too: Pillow's GIF reader indexes past the end of a truncated frame header.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)


class ImageRejected(Exception):
    """The bytes are not an image we can process. A retry cannot help."""


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # L, RGB or RGBA, sRGB, upright; possibly DCT-scaled
    input_format: str  # profile name of the format: "jpeg", "png", "heic", ...
    original_size: tuple[int, int]  # after EXIF orientation, at full resolution
    original_mode: str
    orientation: int  # the EXIF orientation applied (1 when none or 0)
    has_alpha: bool
    has_icc: bool = False
    had_gps: bool = False
    frame_count: int = 1
    animation: animation.Frames | None = None  # when the profile keeps the animation
    exif: bytes | None = None  # orientation reset to 1; only used with keep_metadata
    xmp: bytes | None = None
    blurhash: str = ""  # from the smallest rendition, filled in by process()
    dominant_color: str = ""  # '#rrggbb'


@dataclass(frozen=True)
class Output:
    rendition: Rendition
    data: bytes
    width: int
    height: int
    format: str  # concrete: jpeg, png, webp, avif (or gif for an animated `same`)
    animated: bool = False

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.format) or encoding.OUTPUT_EXTENSIONS[self.format]


@contextmanager
def _bombs_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def process(data: bytes, profile: Profile) -> tuple[Decoded, list[Output]]:
    """Decode once and produce every rendition of the profile, in profile order."""
    with _bombs_are_errors():
        decoded = decode(data, profile)
        pending, smallest = render_all(decoded, profile)
        # Placeholders are Python work: done while the pool's encoders (GIL released) run.
        blurhash, colour = placeholders.placeholders(smallest, profile.background)
        outputs = [output() for output in pending]
    return dataclasses.replace(decoded, blurhash=blurhash, dominant_color=colour), outputs


# -- decode -------------------------------------------------------------------------------


def decode(data: bytes, profile: Profile) -> Decoded:
    """Open, check the size, then decode once. Every error a decode raises rejects the image:
    a decoder that stopped part-way leaves a half-drawn picture that must never be rendered.
    What it would cost is checked from the headers first (costs.py), in three steps, each as
    soon as what it needs is known and before anything that costs more."""
    with _too_costly():  # before Pillow opens the bytes: opening walks them too
        counted = costs.check_container(data, profile.input_formats)
    image = _open(data, profile)
    input_format = formats.profile_format(image.format)
    if input_format is None:
        raise ImageRejected(f"unsupported image format {image.format!r}")
    damage = formats.png_damage(data) if input_format == "png" else None
    if damage:
        raise ImageRejected(f"corrupt or truncated image: {damage}")
    _check_pixels(image.size, profile)
    with _too_costly():  # before Pillow walks the frames to count them
        costs.check_decode(image.size, counted, profile)
    frame_count = _frame_count(image) if input_format != "jpeg" else 1
    keep = 0
    if profile.keep_animation and frame_count > 1:
        with _decode_errors():
            keep = animation.frames_to_keep(frame_count, image.size, profile)
    exif = _exif(image)
    orientation = _orientation(exif)
    applied_by_decoder = _applied_by_decoder(image)  # read before the info is cleared
    width, height = image.size
    if orientation in _SWAPS_AXES:
        width, height = height, width
    with _too_costly():  # before any pixel is decoded (a PNG's getexif may have, above)
        costs.check_renditions((width, height), input_format, _has_alpha(image), keep, profile)
    original_mode = image.mode
    icc = image.info.get("icc_profile") or None
    xmp = _xmp(image)
    if input_format == "jpeg" or (input_format == "heic" and frame_count == 1):
        # JPEG: libjpeg's DCT-scaled decode. HEIC: pillow-heif decodes an embedded thumbnail
        # instead of the photo when one is big enough and a scaled copy of it (same crop,
        # orientation and colour profile): iPhones store a 320x240 one next to 12 MP.
        _draft_for(image, _largest_need((width, height), profile), orientation)
    prepare = _upright_and_srgb(icc, orientation)
    with _decode_errors():
        frames = animation.read(image, keep, prepare) if keep else None
        if frames is None:
            image.load()
        picture = frames.images[0] if frames is not None else prepare(image)
        alpha = _has_alpha(image) or picture.mode == "RGBA"
    return Decoded(
        image=picture,
        input_format=input_format,
        original_size=(width, height),
        original_mode=original_mode,
        orientation=applied_by_decoder or orientation,
        has_alpha=alpha,
        has_icc=icc is not None,
        had_gps=_has_gps(exif),
        frame_count=frame_count,
        animation=frames,
        exif=_upright_exif(exif) if profile.keep_metadata else None,
        xmp=_upright_xmp(xmp) if profile.keep_metadata else None,
    )


def _open(data: bytes, profile: Profile) -> Image.Image:
    if not data:
        raise ImageRejected("the object is empty (0 bytes)")
    try:
        return formats.open_image(data, profile.input_formats)
    except UnidentifiedImageError:
        raise ImageRejected(_unidentified(data, profile.input_formats)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning band (1-2x MAX_IMAGE_PIXELS) is raised as an error by _bombs_are_errors.
        raise ImageRejected(f"decompression bomb: {exc}") from None
    except _DECODE_ERRORS as exc:
        raise ImageRejected(
            f"corrupt or truncated image: cannot open it: {type(exc).__name__}: {exc}"
        ) from None


def _unidentified(data: bytes, input_formats: tuple[str, ...]) -> str:
    allowed = ", ".join(input_formats)
    claimed = formats.starts_like(data, input_formats)
    if claimed is None:
        return f"not a recognised image (allowed formats: {allowed})"
    return (
        f"not a recognised image: it starts like {claimed.upper()} but does not open (corrupt, "
        f"truncated or an unsupported variant; allowed formats: {allowed})"
    )


def _check_pixels(size: tuple[int, int], profile: Profile) -> None:
    """Before anything is decoded: the header's size alone decides."""
    width, height = size
    if width * height > profile.max_pixels:
        raise ImageRejected(
            f"image is {width}x{height} = {width * height:,} pixels, over the profile's "
            f"max_pixels of {profile.max_pixels:,}"
        )


def _frame_count(image: Image.Image) -> int:
    """Counting reads every frame's header (GIF, TIFF): a truncated animation fails here.
    Pillow's walk is bounded: costs.check_container counted the same frames first, capped."""
    # Not getattr(image, "n_frames", 1): an AttributeError raised while counting would
    # come out as "one frame". TypeError: TIFF's "Missing dimensions" in a later IFD.
    if not (hasattr(type(image), "n_frames") or "n_frames" in vars(image)):
        return 1
    try:
        return image.n_frames
    except (*_DECODE_ERRORS, TypeError, AttributeError) as exc:
        raise ImageRejected(f"corrupt or truncated image: {type(exc).__name__}: {exc}") from None


@contextmanager
def _too_costly() -> Iterator[None]:
    try:
        yield
    except costs.TooCostly as exc:
        raise ImageRejected(f"too costly to process: {exc}") from None


@contextmanager
def _decode_errors() -> Iterator[None]:
    """Whatever a decode raises rejects the image, with the reason."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb: {exc}") from None
    except animation.TooManyPixels as exc:
        raise ImageRejected(str(exc)) from None
    except _DECODE_ERRORS as exc:
        raise ImageRejected(f"corrupt or truncated image: {type(exc).__name__}: {exc}") from None


def _upright_and_srgb(icc: bytes | None, orientation: int):
    """The per-picture steps after decoding: orient, convert to sRGB, normalise the mode."""

    def apply(image: Image.Image) -> Image.Image:
        method = _UPRIGHT.get(orientation)
        upright = image.transpose(method) if method is not None else image
        result = normalise_mode(to_srgb(upright, icc))
        # Outputs carry only what encoding.Carried allows. When no step copied the pixels,
        # this clears the info of our own freshly opened image: no full-size copy is made.
        result.info = {}
        return result

    return apply


def _exif(image: Image.Image) -> Image.Exif | None:
    """The EXIF, or None when the block does not parse: junk metadata must not lose a good
    picture. Tolerating it is safe only because no pixel decode can happen in the `try`."""
    if type(image).getexif is not Image.Image.getexif:
        # Pillow's own getexif() reads metadata alone (info, TIFF IFDs), so it may run before
        # the decode, where draft() needs the orientation. An override may decode: PNG's
        # loads the pixels to find an eXIf chunk stored after them. Decode them here, fatally.
        with _decode_errors():
            image.load()
    try:
        return image.getexif()
    except Exception:
        return None


def _orientation(exif: Image.Exif | None) -> int:
    value = exif.get(_EXIF_ORIENTATION, 1) if exif is not None else 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1  # 0 and junk: upright


def _applied_by_decoder(image: Image.Image) -> int | None:
    """The orientation a decoder applied itself: libheif rotates HEIC pixels (irot/imir,
    which pillow-heif derives from EXIF too) and pillow-heif then resets EXIF to 1, keeping
    the original value here. The item must still say which orientation was applied."""
    value = image.info.get("original_orientation")
    return value if isinstance(value, int) and 2 <= value <= 8 else None


def _has_gps(exif: Image.Exif | None) -> bool:
    if exif is None or _GPS_IFD not in exif:
        return False
    # The Exif object holds only metadata (its own copy, or TIFF's IFDs): nothing to decode.
    try:
        return bool(exif.get_ifd(_GPS_IFD))
    except Exception:
        return True  # a GPS pointer that does not parse still says GPS was there


def _upright_exif(exif: Image.Exif | None) -> bytes | None:
    if exif is None or not len(exif):
        return None
    if _EXIF_ORIENTATION in exif:
        exif[_EXIF_ORIENTATION] = 1  # the pixels are upright now
    try:
        return exif.tobytes()
    except Exception:
        return None


# XMP may repeat the orientation (attribute or element form). Pillow's getexif() takes it
# from there when EXIF has none, so it may be what was applied: either way it must say 1.
_XMP_ORIENTATION = re.compile(
    rb"(tiff:Orientation\s*=\s*[\"'])[0-9]([\"'])|(<tiff:Orientation>)\s*[0-9]\s*(</tiff:Orientation>)"
)


def _upright_xmp(xmp: bytes | None) -> bytes | None:
    if not xmp:
        return xmp
    return _XMP_ORIENTATION.sub(lambda m: (m[1] or m[3]) + b"1" + (m[2] or m[4]), xmp)


def _xmp(image: Image.Image) -> bytes | None:
    value = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if isinstance(value, str):
        return value.encode()
    return value or None


def _largest_need(source: tuple[int, int], profile: Profile) -> tuple[int, int]:
    needs = [geometry.need(source, r.resize, geometry.DRAFT_GAP) for r in profile.renditions]
    return max(n[0] for n in needs), max(n[1] for n in needs)


def _draft_for(image: Image.Image, need: tuple[int, int], orientation: int) -> None:
    """Ask the decoder for a smaller picture when the largest rendition allows it: libjpeg
    at 1/2, 1/4 or 1/8 scale, pillow-heif an embedded thumbnail."""
    if orientation in _SWAPS_AXES:
        need = (need[1], need[0])  # draft works in the stored (unrotated) orientation
    requested_mode = "RGB" if image.mode in ("RGB", "YCbCr") else image.mode
    image.draft(requested_mode, need)


# -- renditions ---------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
INLINE_ENCODE_MAX_PIXELS = 120_000


def _executor() -> ThreadPoolExecutor:
    """One pool per container: Lambda gives 2+ vCPUs from 1769 MB; encoders release the GIL."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 1)))
    return _pool


def render_all(
    decoded: Decoded, profile: Profile
) -> tuple[list[Callable[[], Output]], Image.Image]:
    """Every rendition, in profile order, as calls that wait for its encode; plus the
    smallest picture (the placeholders' source)."""
    if decoded.animation is not None:
        return _render_animated(decoded, profile)
    original = decoded.original_size
    order = sorted(
        range(len(profile.renditions)),
        key=lambda i: -geometry.area(target_size(original, profile.renditions[i].resize)),
    )
    # Full-frame pictures, largest first, with the kernel that made them (None: the decode).
    # A rendition cascades only from its own kernel's pictures, so e.g. a `nearest` pixel-art
    # rendition never becomes the source of a `lanczos` one.
    sources: list[tuple[Image.Image, str | None]] = [(decoded.image, None)]
    meta = encoding.carried(profile, decoded.exif, decoded.xmp)
    pending: dict[int, Future[bytes]] = {}
    pictures: dict[int, Image.Image] = {}
    formats: dict[int, str] = {}
    # Renditions that differ only in how they are encoded (a WebP and its JPEG fallback)
    # share one picture: same source, same resize rule, same sharpen -> same pixels.
    made: dict[tuple[int, Resize, int], Image.Image] = {}
    for index in order:
        rendition = profile.renditions[index]
        resize = rendition.resize
        source = _smallest_sufficient(sources, original, rendition)
        key = (id(source), resize, rendition.sharpen)
        picture = made.get(key)
        if picture is None:
            picture = transforms.apply(source, original, resize, profile.background)
            if rendition.sharpen and picture.width < source.width:
                picture = transforms.sharpen(picture, rendition.sharpen)
            elif resize.mode in ("fit", "width", "height") and picture is not source:
                sources.append((picture, resize.kernel))
            made[key] = picture
        fmt = formats[index] = encoding.output_format(
            rendition.format, decoded.input_format, decoded.has_alpha
        )
        pictures[index] = picture
        if geometry.area(picture.size) <= INLINE_ENCODE_MAX_PIXELS:
            # A thumbnail encodes in well under a millisecond: handing it to a pool thread
            # (and waking that thread) costs more than it can overlap.
            done: Future[bytes] = Future()
            done.set_result(encoding.encode(picture, fmt, rendition, meta, profile.background))
            pending[index] = done
        else:
            pending[index] = _executor().submit(
                encoding.encode, picture, fmt, rendition, meta, profile.background
            )

    def output(index: int) -> Callable[[], Output]:
        rendition, picture, fmt = profile.renditions[index], pictures[index], formats[index]
        return lambda: Output(
            rendition, pending[index].result(), picture.width, picture.height, fmt
        )

    return [output(i) for i in range(len(profile.renditions))], pictures[order[-1]]


def _smallest_sufficient(
    sources: list[tuple[Image.Image, str | None]],
    original: tuple[int, int],
    rendition: Rendition,
) -> Image.Image:
    need = geometry.need(original, rendition.resize, geometry.CASCADE_GAP)
    best = sources[0][0]
    for candidate, kernel in sources[1:]:
        if (
            kernel == rendition.resize.kernel
            and candidate.width >= need[0]
            and candidate.height >= need[1]
        ):
            best = candidate
    return best


def _render_animated(
    decoded: Decoded, profile: Profile
) -> tuple[list[Callable[[], Output]], Image.Image]:
    assert decoded.animation is not None
    outputs: list[Callable[[], Output]] = []
    smallest: Image.Image | None = None
    for rendition in profile.renditions:
        fmt = encoding.output_format(rendition.format, decoded.input_format, True, animated=True)
        output, first = animation.render(decoded, decoded.animation, rendition, fmt, profile)
        done = Output(rendition, output, first.width, first.height, fmt, fmt in animation.FORMATS)
        outputs.append(lambda done=done: done)
        if smallest is None or geometry.area(first.size) < geometry.area(smallest.size):
            smallest = first
    assert smallest is not None
    return outputs, smallest
