"""The issue's targets as data: a speed ratio with its limit, gated on equal quality.

A speed target counts only where our quality is within EQUAL_QUALITY_DB of the peer's on
every rendition involved: being faster by making worse pictures is not a win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# PSNR within this many dB of the peer's counts as equal quality (the gate).
EQUAL_QUALITY_DB = 0.1


@dataclass(frozen=True)
class Target:
    label: str
    value: float  # the measured ratio (or share)
    limit: float  # passes when value <= limit
    # ours minus the peer's PSNR, rendition by rendition (dB); empty: no quality gate.
    psnr_gaps: Sequence[float] = ()
    peer: str = ""
    note: str = ""

    @property
    def fast_enough(self) -> bool:
        return self.value <= self.limit

    @property
    def worst_gap(self) -> float | None:
        return min(self.psnr_gaps) if self.psnr_gaps else None

    @property
    def equal_quality(self) -> bool:
        worst = self.worst_gap
        return worst is None or worst >= -EQUAL_QUALITY_DB

    @property
    def passed(self) -> bool:
        return self.fast_enough and self.equal_quality

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = f"[{verdict}] {self.label}: {self.value:.2f}x (limit {self.limit:.2f}x)"
        worst = self.worst_gap
        if worst is not None:
            if worst >= -EQUAL_QUALITY_DB:
                text += f", quality {worst:+.2f} dB vs {self.peer} (equal or better)"
            else:
                joint = "and" if not self.fast_enough else "but"
                text += f", {joint} quality {-worst:.2f} dB below {self.peer}"
        return text + (f"; {self.note}" if self.note else "")


def gaps(ours: Sequence[float], peer: Sequence[float]) -> list[float]:
    """Ours minus peer, rendition by rendition."""
    return [a - b for a, b in zip(ours, peer, strict=True)]


def report(targets: Sequence[Target]) -> tuple[list[str], bool]:
    """Each target's line, and whether every one passed."""
    return [t.line() for t in targets], all(t.passed for t in targets)
