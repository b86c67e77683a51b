"""decode -> orient -> colour -> plan -> every rendition -> encode, with Pillow.

The stages are fixed here; each step lives in its own small module:
decoding (open, check, decode once), formats (what the bytes are), colour (sRGB, 8-bit
modes), planning (every size, source, format, from numbers alone), steps (what is done to
each picture: resize, sharpen), transforms (resize rules), gravity (where a crop sits),
encoding (options, metadata), animation (frames), placeholders (BlurHash, dominant colour).

Speed comes from doing less decoding: JPEG is decoded DCT-scaled (`draft`) at the smallest
scale every rendition can still be made from, once; renditions cascade from the largest
down, each from the smallest earlier picture still big enough; encodes run on a thread
pool (Pillow's encoders release the GIL) while the next rendition is being resized.
Nothing here touches AWS; the handler feeds bytes in and gets encoded renditions out.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from lambda_pkg import decoding, encoding, formats, placeholders, planning, settings, steps
from lambda_pkg.colour import normalise_mode
from lambda_pkg.decoding import Decoded, ImageRejected, bombs_are_errors, decode
from lambda_pkg.geometry import target_size
from lambda_pkg.planning import INLINE_ENCODE_MAX_PIXELS, Job, Plan
from lambda_pkg.profiles import EXTENSIONS, Profile, Rendition
from lambda_pkg.timings import DECODE, RENDER, Timings

__all__ = ["Decoded", "ImageRejected", "Output", "decode", "normalise_mode", "process"]
__all__ += ["INLINE_ENCODE_MAX_PIXELS", "target_size"]

CONTENT_TYPES = encoding.CONTENT_TYPES
PILLOW_FORMATS = formats.PILLOW_FORMATS


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


def process(
    data: bytes, profile: Profile, timings: Timings | None = None
) -> tuple[Decoded, list[Output]]:
    """Decode once and produce every rendition of the profile, in profile order; `timings`
    gets the decode and the render (resizes and encodes overlap on the pool: one phase)."""
    timings = timings if timings is not None else Timings()
    with bombs_are_errors():
        with timings.phase(DECODE):
            decoded, sizes = decoding.decode_measured(data, profile)
        with timings.phase(RENDER):
            pending, smallest = render_all(decoded, plan_for(decoded, sizes, profile), profile)
            # Placeholders are Python work: done while the pool's encoders (GIL released) run.
            blurhash, colour = placeholders.placeholders(smallest, profile.background)
            outputs = [output() for output in pending]
    return dataclasses.replace(decoded, blurhash=blurhash, dominant_color=colour), outputs


def plan_for(decoded: Decoded, sizes: planning.Sizes, profile: Profile) -> Plan:
    """The plan for this decode: its sizes, format and alpha, and whether it animates."""
    return planning.plan(
        sizes,
        decoded.image.size,
        decoded.input_format,
        decoded.has_alpha,
        decoded.animation is not None,
        profile,
    )


# -- renditions ---------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    """In a forked child: the pool's threads stayed in the parent, so work handed to it
    would wait forever; the next `_executor()` makes the child its own."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> ThreadPoolExecutor:
    """One pool per container: Lambda gives 2+ vCPUs from 3538 MB; encoders release the GIL."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(2, min(4, settings.usable_cores())))
    return _pool


def render_all(
    decoded: Decoded, plan: Plan, profile: Profile
) -> tuple[list[Callable[[], Output]], Image.Image]:
    """Every rendition, in profile order, as calls that wait for its encode; plus the
    smallest picture (the placeholders' source). The plan decides; this only carries it out."""
    if decoded.animation is not None:
        return _render_animated(decoded, plan, profile)
    meta = encoding.carried(profile, decoded.exif, decoded.xmp)
    made: list[Image.Image] = []
    pending: dict[int, Future[bytes]] = {}
    for index in plan.order:
        job = plan.jobs[index]
        if job.picture == len(made):  # its first use: make it (the plan made it in this order)
            picture = plan.pictures[job.picture]
            if picture.source is None:
                made.append(steps.make(decoded.image, picture, profile.background, decoded.area))
            else:
                made.append(steps.make(made[picture.source], picture, profile.background))
        pending[index] = _encode(made[job.picture], job, meta, profile.background)

    def output(job: Job, done: Future[bytes]) -> Callable[[], Output]:
        width, height = plan.pictures[job.picture].size
        return lambda: Output(job.rendition, done.result(), width, height, job.format)

    outputs = [output(job, pending[i]) for i, job in enumerate(plan.jobs)]
    return outputs, made[plan.smallest]


def _encode(
    picture: Image.Image, job: Job, meta: encoding.Carried, background: str
) -> Future[bytes]:
    if job.inline or settings.usable_cores() < 2:  # with one core, a hand-off only costs
        done: Future[bytes] = Future()
        done.set_result(encoding.encode(picture, job.format, job.rendition, meta, background))
        return done
    return _executor().submit(encoding.encode, picture, job.format, job.rendition, meta, background)


def _render_animated(
    decoded: Decoded, plan: Plan, profile: Profile
) -> tuple[list[Callable[[], Output]], Image.Image]:
    """Rendition by rendition, each frame through the same steps as a still; a format that
    cannot animate gets the first frame."""
    assert decoded.animation is not None
    frames, background = decoded.animation, profile.background
    outputs: list[Callable[[], Output]] = []
    smallest: Image.Image | None = None
    made: dict[tuple[int, bool], list[Image.Image]] = {}  # a rendition's formats share it
    for job in plan.jobs:
        picture = plan.pictures[job.picture]
        pictures = made.get((job.picture, job.animated)) or made.get((job.picture, True))
        if pictures is None:
            sources = frames.images if job.animated else frames.images[:1]
            pictures = [steps.make(frame, picture, background) for frame in sources]
            made[job.picture, job.animated] = pictures
        if job.animated:
            durations, loop = list(frames.durations), frames.loop
            data = encoding.encode_animation(
                pictures, durations, loop, job.format, job.rendition, background
            )
        else:
            meta = encoding.carried(profile, decoded.exif, decoded.xmp)
            data = encoding.encode(pictures[0], job.format, job.rendition, meta, background)
        done = Output(job.rendition, data, *picture.size, job.format, job.animated)
        outputs.append(lambda done=done: done)
        if job.picture == plan.smallest:
            smallest = pictures[0]
    assert smallest is not None
    return outputs, smallest
