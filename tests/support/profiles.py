"""A valid profile, as a YAML file would hold it: the base the profile tests break."""

from __future__ import annotations

from typing import Any

VALID: dict[str, Any] = {
    "name": "sample",
    "renditions": [
        {
            "name": "small",
            "resize": {"mode": "fit", "width": 400, "height": 300},
            "format": "webp",
            "quality": 80,
            "key": "processed/{key}/{rendition}.{ext}",
        },
        {
            "name": "big",
            "resize": {"mode": "width", "width": 1200},
            "format": "jpeg",
            "key": "processed/{key}/{rendition}.{ext}",
        },
    ],
}
