"""Where one image's time goes: milliseconds per phase, logged with the image's outcome.

One `Timings` per record, made by the workflow and dropped with it, so nothing carries over
from one image or invocation to the next. The phases run in two processes: the parent
times S3 and DynamoDB, the render's child (lambda_pkg/isolated.py) times decode and render
and sends its figures back with its result, or attached to the exception it raises, so a
failed image logs what it measured too. A phase costs two perf_counter() calls (~0.1 us).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# The phases in the order an image meets them; what none of them covers is `other`.
GET, DECODE, RENDER, HANDOFF, CLAIM, PUT, ITEM, PUBLISH = (
    "get",  # S3 GetObject and reading the body
    "decode",  # header checks, open, orient, decode (in the render's child)
    "render",  # resize, encode, placeholders (in the render's child)
    "handoff",  # the child's round trip: the input in, the pickled renditions out
    "claim",  # DynamoDB: the owner record of every output key
    "put",  # S3 PutObject of every rendition
    "item",  # DynamoDB: the stored sequencer, the item's conditional write, clean-up
    "publish",  # EventBridge: the stored outcome's event
)
PHASES = (GET, DECODE, RENDER, HANDOFF, CLAIM, PUT, ITEM, PUBLISH)
OTHER, TOTAL = "other", "total"
ATTRIBUTE = "imgpipe_timings"  # on an exception from the child: the phases it measured


class Timings:
    """Milliseconds per phase since this object was made; a phase met twice adds up."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.ms: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as `name`, also when it raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - started) * 1000)

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + ms

    def merge(self, measured: Mapping[str, float]) -> float:
        """Add phases measured elsewhere (the child); return their sum."""
        for name, ms in measured.items():
            self.add(name, ms)
        return sum(measured.values())

    def summary(self) -> dict[str, float]:
        """Every phase met, then `other` (the rest of the record's time) and `total`,
        rounded to 0.1 ms: what the log line carries."""
        total = (time.perf_counter() - self._started) * 1000
        phases = {name: self.ms[name] for name in PHASES if name in self.ms}
        phases.update((name, ms) for name, ms in self.ms.items() if name not in phases)
        phases[OTHER] = max(total - sum(phases.values()), 0.0)
        phases[TOTAL] = total
        return {name: round(ms, 1) for name, ms in phases.items()}


def attach(exc: BaseException, timings: Timings) -> None:
    """Let `exc` carry what was measured before it was raised (it survives pickling)."""
    setattr(exc, ATTRIBUTE, dict(timings.ms))


def attached(exc: BaseException) -> dict[str, float]:
    return dict(getattr(exc, ATTRIBUTE, None) or {})
