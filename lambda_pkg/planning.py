"""The plan: what every rendition is made from, at what size and in what format.

Numbers only, no picture and no pixel: the plan is worked out from the original's size, the
decode's size, the input format, alpha and the profile, so it is tested without images, and
rendering (imaging.py) carries it out step by step without deciding anything itself.

Two stages, because one number is needed before the decode and the rest after it:
- `measure`: every rendition's sizes, from the original's size; and from them the draft
  size, what the decoder may scale a JPEG (or pick a HEIC thumbnail) down to.
- `plan`: per picture, its source and sizes; per rendition, its picture, format and where it
  is encoded. It needs the decode's size (only libjpeg and pillow-heif know what a draft
  gives), which decides whether a picture shrinks (and is sharpened) or *is* its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambda_pkg import encoding, geometry
from lambda_pkg.animation import FORMATS as ANIMATED_FORMATS
from lambda_pkg.geometry import Size, Sizing
from lambda_pkg.profiles import Profile, Rendition, Resize

# A thumbnail encodes in well under a millisecond: handing it to a pool thread (and waking
# that thread) costs more than it can overlap.
INLINE_ENCODE_MAX_PIXELS = 120_000
# Resize rules whose picture is the whole frame, scaled: the only ones later renditions may
# be made from (a crop or a letterbox is not the frame any more).
_FULL_FRAME = ("fit", "width", "height")


@dataclass(frozen=True, slots=True)
class PixelKey:
    """The rendition fields that change its pixels, declared once: renditions with equal
    keys and the same source (a WebP and its JPEG fallback) share one picture. Every other
    rendition field only changes how that picture is encoded. A new field that changes
    pixels (a watermark) is added here, beside its step in steps.py."""

    resize: Resize
    sharpen: int

    @classmethod
    def of(cls, rendition: Rendition) -> PixelKey:
        return cls(rendition.resize, rendition.sharpen)


@dataclass(frozen=True, slots=True)
class Picture:
    """One picture to make: its source put through the per-picture steps (steps.py)."""

    key: PixelKey
    source: int | None  # an earlier picture of the plan (its index); None: the decode
    size: Size  # the final size
    content: Size  # the resized picture inside `size` (smaller only for pad)
    sharpen: int  # the rendition's sharpen when the picture is smaller than its source, else 0


@dataclass(frozen=True, slots=True)
class Job:
    """One rendition in one of its formats: which picture, encoded how."""

    rendition: Rendition
    picture: int  # index into Plan.pictures
    format: str  # concrete: jpeg, png, webp, avif (or gif for an animated `same`)
    inline: bool  # encoded on the calling thread rather than on the pool
    animated: bool = False  # every frame is encoded, not just the first


@dataclass(frozen=True, slots=True)
class Plan:
    # In the order they are made, which is the order `order` first uses them: a source
    # always comes before the pictures made from it.
    pictures: tuple[Picture, ...]
    # In profile order, a rendition's formats in its order: one job per object written.
    jobs: tuple[Job, ...]
    order: tuple[int, ...]  # job indices in the order they run: largest picture first
    smallest: int  # the picture the placeholders (BlurHash, colour) are computed from


@dataclass(frozen=True, slots=True)
class Sizes:
    """Every rendition's sizes for one original, each worked out once, from the original's
    size alone: known before the decode, so the draft size comes from them too."""

    original: Size  # after orientation, at full resolution
    renditions: tuple[Sizing, ...]  # in profile order

    @property
    def draft(self) -> Size:
        """The smallest decode every rendition can still be made from, margin included:
        libjpeg scales a JPEG down to it."""
        return self._largest_need(geometry.DRAFT_GAP)

    @property
    def embedded_draft(self) -> Size:
        """The smallest embedded thumbnail (HEIC) every rendition can be made from: a picture
        the camera scaled down as a whole, not block by block, so a smaller margin holds."""
        return self._largest_need(geometry.EMBEDDED_THUMBNAIL_GAP)

    def _largest_need(self, gap: float) -> Size:
        needs = [sizing.need(gap) for sizing in self.renditions]
        return max(n[0] for n in needs), max(n[1] for n in needs)


def measure(original: Size, profile: Profile) -> Sizes:
    return Sizes(original, tuple(geometry.sizing(original, r.resize) for r in profile.renditions))


def plan(
    sizes: Sizes,
    decoded: Size,
    input_format: str,
    has_alpha: bool,
    animated: bool,
    profile: Profile,
) -> Plan:
    """`decoded`: the size of the decoded picture (smaller than the original after a
    draft), or of each frame of a kept animation."""
    sizings = sizes.renditions
    if animated:
        return _animated(sizings, decoded, input_format, profile)
    order = sorted(range(len(sizings)), key=lambda i: -geometry.area(sizings[i].target))
    pictures, picture_of = _cascade(order, sizings, decoded, profile)
    jobs: list[Job] = []
    jobs_of: list[list[int]] = []  # per rendition, its jobs: one per format
    for rendition, index in zip(profile.renditions, picture_of, strict=True):
        inline = geometry.area(pictures[index].size) <= INLINE_ENCODE_MAX_PIXELS
        jobs_of.append([])
        for fmt in rendition.formats:  # one picture, encoded once per format
            jobs_of[-1].append(len(jobs))
            concrete = encoding.output_format(fmt, input_format, has_alpha)
            jobs.append(Job(rendition, index, concrete, inline))
    runs = tuple(job for index in order for job in jobs_of[index])
    # The last of the smallest in profile order (a stable sort puts it last).
    return Plan(tuple(pictures), tuple(jobs), runs, picture_of[order[-1]])


def _cascade(
    order: list[int], sizings: tuple[Sizing, ...], decoded: Size, profile: Profile
) -> tuple[list[Picture], list[int]]:
    """The pictures, largest first, each from the smallest earlier one still big enough
    (geometry.CASCADE_GAP) and made with the same kernel, else from the decode; and each
    rendition's picture. A `nearest` pixel-art picture never becomes a `lanczos` one's source."""
    pictures: list[Picture] = []
    sources: list[int] = []  # pictures later ones may be made from, largest first
    made: dict[tuple[int | None, PixelKey], int] = {}
    picture_of = [0] * len(sizings)
    for index in order:
        rendition, sizing = profile.renditions[index], sizings[index]
        source = _smallest_sufficient(pictures, sources, sizing, rendition.resize.kernel)
        key = PixelKey.of(rendition)
        shared = made.get((source, key))
        if shared is None:
            source_size = decoded if source is None else pictures[source].size
            shrinks = sizing.target[0] < source_size[0]
            picture = Picture(
                key, source, sizing.target, sizing.content, key.sharpen if shrinks else 0
            )
            shared = made[source, key] = len(pictures)
            pictures.append(picture)
            # A sharpened picture is not the frame as the kernel made it; an unchanged one is
            # its source itself (the resize hands it through).
            full_frame = not picture.sharpen and key.resize.mode in _FULL_FRAME
            if full_frame and picture.size != source_size:
                sources.append(shared)
        picture_of[index] = shared
    return pictures, picture_of


def _smallest_sufficient(
    pictures: list[Picture], sources: list[int], sizing: Sizing, kernel: str
) -> int | None:
    need = sizing.need(geometry.CASCADE_GAP)
    best = None
    for index in sources:
        candidate = pictures[index]
        if (
            candidate.key.resize.kernel == kernel
            and candidate.size[0] >= need[0]
            and candidate.size[1] >= need[1]
        ):
            best = index
    return best


def _animated(
    sizings: tuple[Sizing, ...], frame: Size, input_format: str, profile: Profile
) -> Plan:
    """Each rendition its own picture, made from every frame: no cascade and no sharing.
    Animations render as if with alpha (their frames are RGBA)."""
    pictures, jobs = [], []
    for index, (rendition, sizing) in enumerate(zip(profile.renditions, sizings, strict=True)):
        key = PixelKey.of(rendition)
        shrinks = sizing.target[0] < frame[0]
        pictures.append(
            Picture(key, None, sizing.target, sizing.content, key.sharpen if shrinks else 0)
        )
        for fmt in rendition.formats:
            fmt = encoding.output_format(fmt, input_format, True, animated=True)
            jobs.append(Job(rendition, index, fmt, True, fmt in ANIMATED_FORMATS))
    areas = [geometry.area(s.target) for s in sizings]
    # The first of the smallest in profile order.
    smallest = areas.index(min(areas))
    return Plan(tuple(pictures), tuple(jobs), tuple(range(len(jobs))), smallest)
