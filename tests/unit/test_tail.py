"""`imgpipe events`: one line per outcome, in the words `imgpipe ls` uses."""

from __future__ import annotations

from typing import Any

from pipeline.cli import tail


def rendition(name: str, fmt: str, width: int, height: int) -> dict[str, Any]:
    return {"name": name, "format": fmt, "width": width, "height": height, "bytes": 1000}


def processed_event(renditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The shape the function publishes (lambda_pkg/outcomes.py): the item as detail."""
    return {
        "source": "imgpipe",
        "detail-type": "Image Processed",
        "time": "2026-12-02T05:26:43Z",
        "detail": {"image_name": "input/photo.jpg", "status": "ok", "renditions": renditions},
    }


def test_a_multi_format_rendition_is_one_size_in_the_line() -> None:
    # GIVEN web's renditions: w800 and w320 each in WebP and JPEG, a square in WebP only
    event = processed_event(
        [
            rendition("w800", "webp", 800, 450),
            rendition("w800", "jpeg", 800, 450),
            rendition("w320", "webp", 320, 180),
            rendition("w320", "jpeg", 320, 180),
            rendition("square", "webp", 200, 200),
        ]
    )
    # WHEN printed, THEN every object is counted and every size named once, in profile order
    printed = tail.line(event)
    assert printed.endswith("input/photo.jpg  5 rendition(s): 800x450, 320x180, 200x200")
