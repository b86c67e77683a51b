"""`imaging.process` under the per-image budget: decoded and rendered in a forked child.

`start` forks the child before the image is downloaded (lambda_pkg/budget.py says why);
it is kept from image to image while they end normally. The child sends back only what
the parent stores, uploads and logs: the decoded image's facts, the encoded renditions and
the milliseconds of its decode and render (lambda_pkg/timings.py). The decoded picture
stays in the child: pickling it (36 MB for a 12 MP photo) would cost more than the render.
"""

from __future__ import annotations

import dataclasses
import time

from PIL import Image

from lambda_pkg import budget, fastpng, imaging
from lambda_pkg.profiles import Profile
from lambda_pkg.timings import HANDOFF, Timings, attach, attached

# What `Decoded.image` holds in the parent: no pixels (nothing there reads them).
_NO_PIXELS = Image.new("L", (0, 0))


def start(memory_mb: int | None) -> None:
    """Have the child ready (forked now, while no image is in memory)."""
    _WORKER.start(memory_mb)


def stop() -> None:
    """End the child: the next image gets a new one, a copy of the process as it is then."""
    _WORKER.stop()


def process(
    data: bytes,
    profile: Profile,
    limits: budget.Budget,
    worker: budget.Worker | None = None,
    timings: Timings | None = None,
) -> tuple[imaging.Decoded, list[imaging.Output]]:
    """`imaging.process(data, profile)` within `limits`: raises BudgetExceeded when it needs
    more memory or time, ChildCrashed when the decoder crashes, and whatever it raises.
    `timings` gets the child's decode and render, and the rest of the call as the handoff
    (all of it when the child died without a word)."""
    timings = timings if timings is not None else Timings()
    started = time.perf_counter()
    try:
        decoded, outputs, measured = (worker or _WORKER).call(
            limits, _process_in_child, data, profile
        )
    except BaseException as exc:
        _handoff(timings, started, attached(exc))
        raise
    _handoff(timings, started, measured)
    return decoded, outputs


def new_worker() -> budget.Worker:
    """A worker of its own (the module keeps one for the function). Its child loads PNG's
    decoder as it starts, while the parent downloads: see fastpng.preload."""
    return budget.Worker(warm=fastpng.preload)


def _process_in_child(data: bytes, profile: Profile) -> tuple[imaging.Decoded, list, dict]:
    timings = Timings()
    try:
        decoded, outputs = imaging.process(data, profile, timings)
    except BaseException as exc:
        attach(exc, timings)  # a failed image's log line still says where its time went
        raise
    return dataclasses.replace(decoded, image=_NO_PIXELS, animation=None), outputs, timings.ms


def _handoff(timings: Timings, started: float, measured: dict[str, float]) -> None:
    elapsed = (time.perf_counter() - started) * 1000
    timings.add(HANDOFF, max(elapsed - timings.merge(measured), 0.0))


_WORKER = new_worker()
