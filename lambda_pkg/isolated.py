"""`imaging.process` under the per-image budget: decoded and rendered in a forked child.

`start` forks the child before the image is downloaded (lambda_pkg/budget.py says why);
it is kept from image to image while they end normally. The child sends back only what
the parent stores and uploads: the decoded image's facts and the encoded renditions. The
decoded picture stays in the child: pickling it (36 MB for a 12 MP photo) would cost more
than the render.
"""

from __future__ import annotations

import dataclasses

from PIL import Image

from lambda_pkg import budget, fastpng, imaging
from lambda_pkg.profiles import Profile

# What `Decoded.image` holds in the parent: no pixels (nothing there reads them).
_NO_PIXELS = Image.new("L", (0, 0))


def start(memory_mb: int | None) -> None:
    """Have the child ready (forked now, while no image is in memory)."""
    _WORKER.start(memory_mb)


def stop() -> None:
    """End the child: the next image gets a new one, a copy of the process as it is then."""
    _WORKER.stop()


def process(
    data: bytes, profile: Profile, limits: budget.Budget, worker: budget.Worker | None = None
) -> tuple[imaging.Decoded, list[imaging.Output]]:
    """`imaging.process(data, profile)` within `limits`: raises BudgetExceeded when it needs
    more memory or time, ChildCrashed when the decoder crashes, and whatever it raises."""
    return (worker or _WORKER).call(limits, _process_in_child, data, profile)


def new_worker() -> budget.Worker:
    """A worker of its own (the module keeps one for the function). Its child loads PNG's
    decoder as it starts, while the parent downloads: see fastpng.preload."""
    return budget.Worker(warm=fastpng.preload)


def _process_in_child(data: bytes, profile: Profile) -> tuple[imaging.Decoded, list]:
    decoded, outputs = imaging.process(data, profile)
    return dataclasses.replace(decoded, image=_NO_PIXELS, animation=None), outputs


_WORKER = new_worker()
