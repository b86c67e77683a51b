"""Waiting for something to happen, without a fixed sleep: poll until it does or time out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout_s: float = 30.0, interval_s: float = 0.05, what: str = ""
) -> T:
    """The first truthy value `condition` returns; AssertionError once `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or condition}")
        time.sleep(interval_s)
