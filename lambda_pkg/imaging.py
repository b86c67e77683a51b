"""decode -> orient -> normalise mode -> every rendition -> encode, with Pillow.

One decode per image: JPEG is decoded DCT-scaled (`draft`) at the smallest scale that
still leaves every rendition a 2x margin, and renditions cascade from the largest down.
Nothing here touches AWS; the handler feeds bytes in and gets encoded renditions out.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import (
    AvifImagePlugin,  # noqa: F401  (registers the decoders the allow-list names)
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    MpoImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from lambda_pkg.profiles import EXTENSIONS, Profile, Rendition, Resize

# Profile names -> Pillow's format identifiers, for the open() allow-list.
PILLOW_FORMATS = {
    "jpeg": ("JPEG", "MPO"),
    "png": ("PNG",),
    "gif": ("GIF",),
    "webp": ("WEBP",),
    "tiff": ("TIFF",),
    "bmp": ("BMP",),
    "avif": ("AVIF",),
}
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
}
# Keep at least this much more source than target, so the final LANCZOS pass has pixels to
# average (Pillow's own thumbnail() uses the same margin for draft).
REDUCING_GAP = 2.0
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}


class ImageRejected(Exception):
    """The bytes are not an image we can process. A retry cannot help."""


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    input_format: str  # profile name of the format: "jpeg", "png", ...
    original_size: tuple[int, int]  # after EXIF orientation, at full resolution
    original_mode: str
    orientation: int
    has_alpha: bool


@dataclass(frozen=True)
class Output:
    rendition: Rendition
    data: bytes
    width: int
    height: int
    format: str  # concrete: jpeg, png, webp or avif

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


@contextmanager
def _bombs_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def process(data: bytes, profile: Profile) -> tuple[Decoded, list[Output]]:
    """Decode once and produce every rendition of the profile, in profile order."""
    with _bombs_are_errors():
        decoded = decode(data, profile)
        outputs = render_all(decoded, profile)
    return decoded, outputs


def decode(data: bytes, profile: Profile) -> Decoded:
    if not data:
        raise ImageRejected("the object is empty (0 bytes)")
    # MPO (phone photos) is opened by the JPEG plugin, so only registered openers are named.
    allowed = [n for fmt in profile.input_formats for n in PILLOW_FORMATS[fmt] if n in Image.OPEN]
    try:
        image = Image.open(io.BytesIO(data), formats=allowed)
    except UnidentifiedImageError:
        raise ImageRejected(
            f"not a recognised image (allowed formats: {', '.join(profile.input_formats)})"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb: {exc}") from None
    except (Image.DecompressionBombWarning, OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(f"cannot read image header: {type(exc).__name__}: {exc}") from None

    input_format = _profile_format(image.format)
    orientation = _orientation(image)
    width, height = image.size
    if orientation in _SWAPS_AXES:
        width, height = height, width
    if width * height > profile.max_pixels:
        raise ImageRejected(
            f"image is {width}x{height} = {width * height:,} pixels, over the profile's "
            f"max_pixels of {profile.max_pixels:,}"
        )
    original_mode = image.mode

    if input_format == "jpeg":
        _draft_for(image, _largest_need((width, height), profile), orientation)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        has_alpha = _has_alpha(image)
        image = normalise_mode(image)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRejected(f"corrupt or truncated image: {type(exc).__name__}: {exc}") from None
    return Decoded(
        image=image,
        input_format=input_format,
        original_size=(width, height),
        original_mode=original_mode,
        orientation=orientation,
        has_alpha=has_alpha,
    )


def _profile_format(pillow_format: str | None) -> str:
    for name, pillow_names in PILLOW_FORMATS.items():
        if pillow_format in pillow_names:
            return name
    raise ImageRejected(f"unsupported image format {pillow_format!r}")


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # corrupt EXIF must not lose an otherwise good image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def normalise_mode(image: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, RGB or RGBA, which every output format can take."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L"):
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit samples span 0..65535: scale to 8 bits, never clip.
        return image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if mode == "F":
        return image.point(lambda v: v * 255).convert("L")
    if mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, P without transparency


# -- geometry -----------------------------------------------------------------------------


def target_size(source: tuple[int, int], resize: Resize) -> tuple[int, int]:
    """The rendition's final size for a source of this size (after orientation)."""
    width, height = source
    if resize.mode == "cover":
        assert resize.width and resize.height
        target = (resize.width, resize.height)
        if not resize.upscale and (target[0] > width or target[1] > height):
            # Never upscale: keep the requested aspect ratio inside the source.
            scale = min(width / target[0], height / target[1])
            target = (max(1, _round(target[0] * scale)), max(1, _round(target[1] * scale)))
        return target
    if resize.mode == "width":
        assert resize.width
        scale = resize.width / width
    elif resize.mode == "height":
        assert resize.height
        scale = resize.height / height
    else:
        assert resize.width and resize.height
        scale = min(resize.width / width, resize.height / height)
    if scale > 1 and not resize.upscale:
        scale = 1.0
    return max(1, _round(width * scale)), max(1, _round(height * scale))


def _round(value: float) -> int:
    # Round half up: 1080 * 200 / 1920 = 112.5 must give the seed's 113, not banker's 112.
    return math.floor(value + 0.5)


def _cover_box(source: tuple[int, int], target: tuple[int, int]) -> tuple[float, ...]:
    """The centred region of the source with the target's aspect ratio."""
    width, height = source
    scale = max(target[0] / width, target[1] / height)
    crop_w, crop_h = target[0] / scale, target[1] / scale
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    return (left, top, left + crop_w, top + crop_h)


def _source_need(source: tuple[int, int], resize: Resize) -> tuple[int, int]:
    """How big the full-frame source must stay for this rendition, margin included."""
    target = target_size(source, resize)
    if resize.mode == "cover":
        scale = max(target[0] / source[0], target[1] / source[1])
    else:
        scale = target[0] / source[0]
    return (
        math.ceil(source[0] * scale * REDUCING_GAP),
        math.ceil(source[1] * scale * REDUCING_GAP),
    )


def _largest_need(source: tuple[int, int], profile: Profile) -> tuple[int, int]:
    needs = [_source_need(source, r.resize) for r in profile.renditions]
    return max(n[0] for n in needs), max(n[1] for n in needs)


def _draft_for(image: Image.Image, need: tuple[int, int], orientation: int) -> None:
    """Ask libjpeg to decode at 1/2, 1/4 or 1/8 scale when the largest rendition allows it."""
    if orientation in _SWAPS_AXES:
        need = (need[1], need[0])  # draft works in the stored (unrotated) orientation
    requested_mode = "RGB" if image.mode in ("RGB", "YCbCr") else image.mode
    image.draft(requested_mode, need)


# -- renditions ---------------------------------------------------------------------------


def render_all(decoded: Decoded, profile: Profile) -> list[Output]:
    """Largest rendition first, each from the smallest full-frame image still big enough."""
    order = sorted(
        range(len(profile.renditions)),
        key=lambda i: -_area(target_size(decoded.original_size, profile.renditions[i].resize)),
    )
    sources = [decoded.image]  # full-frame images, largest first
    results: dict[int, Output] = {}
    for index in order:
        rendition = profile.renditions[index]
        target = target_size(decoded.original_size, rendition.resize)
        source = _smallest_sufficient(sources, decoded.original_size, rendition.resize)
        resized = _resize(source, decoded.original_size, target, rendition.resize)
        if rendition.resize.mode != "cover" and resized is not source:
            sources.append(resized)
        results[index] = encode(resized, rendition, decoded, profile)
    return [results[i] for i in range(len(profile.renditions))]


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _smallest_sufficient(
    sources: list[Image.Image], original: tuple[int, int], resize: Resize
) -> Image.Image:
    need = _source_need(original, resize)
    best = sources[0]
    for candidate in sources[1:]:
        if candidate.width >= need[0] and candidate.height >= need[1]:
            best = candidate
    return best


def _resize(
    source: Image.Image, original: tuple[int, int], target: tuple[int, int], resize: Resize
) -> Image.Image:
    if resize.mode == "cover":
        box = _cover_box(source.size, target)
        full_frame = box == (0, 0, source.width, source.height)
        if source.size == target and full_frame:
            return source
        return source.resize(target, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    if source.size == target:
        return source
    return source.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


# -- encoding -----------------------------------------------------------------------------


def output_format(rendition: Rendition, decoded: Decoded) -> str:
    if rendition.format != "same":
        return rendition.format
    if decoded.input_format in ("jpeg", "png", "webp", "avif"):
        return decoded.input_format
    # GIFs are graphics (flat colours, sharp edges): PNG keeps them crisp; TIFF, BMP are
    # photos unless they carry alpha.
    return "png" if decoded.has_alpha or decoded.input_format == "gif" else "jpeg"


def encode(image: Image.Image, rendition: Rendition, decoded: Decoded, profile: Profile) -> Output:
    fmt = output_format(rendition, decoded)
    if fmt == "jpeg" and image.mode == "RGBA":
        image = _flatten(image, profile.background)
    elif fmt == "avif" and image.mode == "L":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, "JPEG", quality=rendition.quality, optimize=True)
    elif fmt == "png":
        image.save(buffer, "PNG", optimize=True)
    elif fmt == "webp":
        image.save(buffer, "WEBP", quality=rendition.quality, method=4)
    else:
        image.save(buffer, "AVIF", quality=rendition.quality, speed=8)
    return Output(
        rendition=rendition,
        data=buffer.getvalue(),
        width=image.width,
        height=image.height,
        format=fmt,
    )


def _flatten(image: Image.Image, background: str) -> Image.Image:
    """JPEG has no alpha: composite onto the profile's background colour."""
    base = Image.new("RGB", image.size, background)
    base.paste(image, mask=image.getchannel("A"))
    return base
