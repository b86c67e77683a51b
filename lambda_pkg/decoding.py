"""Decode once: small steps, each returning as early as it can, each checking what it can
before anything that costs more.

Every error a decode raises rejects the image: a decoder that stopped part-way leaves a
half-drawn picture that must never be rendered. What an image would cost is checked from
its headers first (costs.py), in three steps, each as soon as what it needs is known: the
container (before Pillow opens the bytes), the stored picture (before Pillow walks the
frames), every rendition (before any pixel is decoded).
"""

from __future__ import annotations

import re
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from lambda_pkg import animation, costs, fastpng, formats, geometry, planning
from lambda_pkg.colour import has_alpha as _has_alpha
from lambda_pkg.colour import normalise_mode, to_srgb
from lambda_pkg.geometry import Size
from lambda_pkg.profiles import Profile

_EXIF_ORIENTATION = 0x0112
_GPS_IFD = 0x8825
_JPEG_SCALES = (8, 4, 2)  # libjpeg's DCT scaling, as draft() offers it
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
    # The part of `image` that is picture, when a DCT-scaled decode ends in a fraction of a
    # pixel (2000x1500 at 1/8: 250x187.5 in a 250x188 image); None: all of it.
    area: geometry.Box | None
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


@contextmanager
def bombs_are_errors() -> Iterator[None]:
    """Pillow's DecompressionBombWarning (1-2x MAX_IMAGE_PIXELS) raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


@dataclass(frozen=True)
class Header:
    """What the container says, read and checked before any pixel is decoded."""

    image: Image.Image  # opened, not decoded (a PNG's getexif may have decoded it)
    input_format: str
    frame_count: int
    keep: int  # the frames a kept animation decodes; 0: decoded as a still
    exif: Image.Exif | None
    orientation: int  # from the EXIF: the transpose still to apply
    applied_by_decoder: int | None  # the orientation the decoder applied itself
    sizes: planning.Sizes  # every rendition's, from the size after the orientation
    fast_png: fastpng.Pixels | None = None  # libspng decodes the pixels instead of Pillow

    @property
    def size(self) -> Size:
        """After the orientation, at full resolution."""
        return self.sizes.original


def decode(data: bytes, profile: Profile) -> Decoded:
    """Open, check the size, then decode once."""
    return decode_measured(data, profile)[0]


def decode_measured(data: bytes, profile: Profile) -> tuple[Decoded, planning.Sizes]:
    """The decode and the renditions' sizes (measured once, for the cost check and the
    draft; imaging.process plans with them). Its own function so the header dies here: its
    image holds the picture as stored, before orientation and colour conversion made the
    copy that is rendered (193 MB more at the peak for a 7071x7071 RGBA PNG)."""
    header = read_header(data, profile)
    return decode_pixels(header, profile, header.sizes.draft), header.sizes


def read_header(data: bytes, profile: Profile) -> Header:
    """Open and check everything the headers tell, before any pixel is decoded."""
    with _too_costly():  # before Pillow opens the bytes: opening walks them too
        counted = costs.check_container(data, profile.input_formats)
    image = _open(data, profile)
    input_format = _input_format(image, data)
    _check_pixels(image.size, profile)
    with _too_costly():  # before Pillow walks the frames to count them
        costs.check_decode(image.size, counted, profile)
    frame_count = _frame_count(image) if input_format != "jpeg" else 1
    keep = _frames_to_keep(frame_count, image.size, profile)
    fast_png = fastpng.pixels(data) if input_format == "png" and frame_count == 1 else None
    exif = _exif(image, metadata_complete=fast_png is not None)
    orientation = _orientation(exif)
    applied_by_decoder = _applied_by_decoder(image)  # read before the info is cleared
    width, height = image.size
    size = (height, width) if orientation in _SWAPS_AXES else (width, height)
    sizes = planning.measure(size, profile)
    with _too_costly():  # before any pixel is decoded (a PNG's getexif may have, above)
        costs.check_renditions(sizes, input_format, _has_alpha(image), keep, profile)
    return Header(
        image,
        input_format,
        frame_count,
        keep,
        exif,
        orientation,
        applied_by_decoder,
        sizes,
        fast_png,
    )


def decode_pixels(header: Header, profile: Profile, draft: Size) -> Decoded:
    """Decode once, at the `draft` size when the decoder can scale (planning.Sizes.draft)."""
    image = header.image
    original_mode = image.mode
    icc = image.info.get("icc_profile") or None
    xmp = _xmp(image)
    area = _draft(header, draft)
    frames, picture, alpha = _load(header, _upright_and_srgb(icc, header.orientation))
    return Decoded(
        image=picture,
        area=area,
        input_format=header.input_format,
        original_size=header.size,
        original_mode=original_mode,
        orientation=header.applied_by_decoder or header.orientation,
        has_alpha=alpha,
        has_icc=icc is not None,
        had_gps=_has_gps(header.exif),
        frame_count=header.frame_count,
        animation=frames,
        exif=_upright_exif(header.exif) if profile.keep_metadata else None,
        xmp=_upright_xmp(xmp) if profile.keep_metadata else None,
    )


def _input_format(image: Image.Image, data: bytes) -> str:
    input_format = formats.profile_format(image.format)
    if input_format is None:
        raise ImageRejected(f"unsupported image format {image.format!r}")
    damage = formats.png_damage(data) if input_format == "png" else None
    if damage:
        raise ImageRejected(f"corrupt or truncated image: {damage}")
    return input_format


def _frames_to_keep(frame_count: int, size: Size, profile: Profile) -> int:
    if not profile.keep_animation or frame_count <= 1:
        return 0
    with _decode_errors():
        return animation.frames_to_keep(frame_count, size, profile)


def _draft(header: Header, need: Size) -> geometry.Box | None:
    """JPEG: libjpeg's DCT-scaled decode. HEIC: pillow-heif decodes an embedded thumbnail
    instead of the photo when one is big enough and a scaled copy of it (same crop,
    orientation and colour profile): iPhones store a 320x240 one next to 12 MP. Returns the
    part of the upright decode that is picture, when it is not all of it."""
    if header.input_format == "jpeg":
        return _draft_for(header.image, need, header.orientation)
    if header.input_format == "heic" and header.frame_count == 1:
        return _draft_for(header.image, header.sizes.embedded_draft, header.orientation)
    return None


def _load(
    header: Header, prepare: Callable[[Image.Image], Image.Image]
) -> tuple[animation.Frames | None, Image.Image, bool]:
    """The decode itself: the kept frames, or the one picture; prepared, and its alpha."""
    image = header.image
    with _decode_errors():
        frames = animation.read(image, header.keep, prepare) if header.keep else None
        picture = frames.images[0] if frames is not None else prepare(_still(header))
        alpha = _has_alpha(image) or picture.mode == "RGBA"
    return frames, picture, alpha


def _still(header: Header) -> Image.Image:
    """The one picture, decoded: by libspng when it can stand in for Pillow (fastpng.py)."""
    if header.fast_png is not None and (picture := header.fast_png.decode()) is not None:
        return picture
    header.image.load()
    return header.image


def _open(data: bytes, profile: Profile) -> Image.Image:
    if not data:
        raise ImageRejected("the object is empty (0 bytes)")
    try:
        return formats.open_image(data, profile.input_formats)
    except UnidentifiedImageError:
        raise ImageRejected(_unidentified(data, profile.input_formats)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning band (1-2x MAX_IMAGE_PIXELS) is raised as an error by bombs_are_errors.
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


def _upright_and_srgb(icc: bytes | None, orientation: int) -> Callable[[Image.Image], Image.Image]:
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


def _exif(image: Image.Image, metadata_complete: bool = False) -> Image.Exif | None:
    """The EXIF, or None when the block does not parse: junk metadata must not lose a good
    picture. Tolerating it is safe only because no pixel decode can happen in the `try`.
    `metadata_complete`: the info already holds every chunk Pillow would read (fastpng.pixels
    said so), so Pillow's own getexif() reads it and the pixels wait for libspng."""
    getexif = type(image).getexif if not metadata_complete else Image.Image.getexif
    if getexif is not Image.Image.getexif:
        # Pillow's own getexif() reads metadata alone (info, TIFF IFDs), so it may run before
        # the decode, where draft() needs the orientation. An override may decode: PNG's
        # loads the pixels to find an eXIf chunk stored after them. Decode them here, fatally.
        with _decode_errors():
            image.load()
    try:
        return getexif(image)
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


def _draft_for(image: Image.Image, need: Size, orientation: int) -> geometry.Box | None:
    """Ask the decoder for a smaller picture when the largest rendition allows it: libjpeg
    at 1/2, 1/4 or 1/8 scale, pillow-heif an embedded thumbnail."""
    if orientation in _SWAPS_AXES:
        need = (need[1], need[0])  # draft works in the stored (unrotated) orientation
    if image.format in ("JPEG", "MPO"):
        need = jpeg_draft_request(image.size, need)
    requested_mode = "RGB" if image.mode in ("RGB", "YCbCr") else image.mode
    drafted = image.draft(requested_mode, need)
    if drafted is None:
        return None
    box = tuple(float(v) for v in drafted[1])
    if box == (0.0, 0.0, float(image.width), float(image.height)):
        return None
    return geometry.upright_box(box, image.size, orientation)  # type: ignore[arg-type]


def jpeg_draft_request(stored: Size, need: Size) -> Size:
    """What to ask JPEG's draft() for so that libjpeg decodes at the smallest scale whose
    picture is still at least `need` (rounded up, as libjpeg's picture and the need both
    are). draft() picks its scale by floor division (stored // asked): asking for `need`
    itself can cost a scale (2000x1500 needing 250x188: 1500 // 188 = 7, so 1/4 where 1/8
    gives 250x188)."""
    for scale in _JPEG_SCALES:
        if all(-(-side // scale) >= want for side, want in zip(stored, need, strict=True)):
            # stored // (stored // scale) lies in [scale, 2 * scale): draft() picks `scale`
            # (a side shorter than `scale` asks for 1 px, and draft() picks a finer scale).
            return max(1, stored[0] // scale), max(1, stored[1] // scale)
    return stored  # an upscale: full size
