"""profiles/schema.json: a JSON Schema of the profile format, for editors.

Generated from the constants of the one schema module (lambda_pkg/profiles.py), so the
two cannot drift (a test compares the committed file with this output). It helps an
editor complete and flag keys; the Python validator stays the authority: rules a JSON
Schema cannot say (key templates that could collide, options that do not apply to a
format) are only checked there.

Regenerate with `python -m pipeline.profile_schema > profiles/schema.json`.
"""

from __future__ import annotations

import json
from typing import Any

from lambda_pkg import profiles as p

NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,62}$"
COLOUR_PATTERN = "^#[0-9a-fA-F]{6}$"


def _size() -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": p.MAX_DIMENSION}


def _resize() -> dict[str, Any]:
    boxed = [
        {"if": {"properties": {"mode": {"const": m}}}, "then": {"required": ["width", "height"]}}
        for m in ("fit", "cover", "pad")
    ]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["mode"],
        "properties": {
            "mode": {
                "enum": list(p.RESIZE_MODES),
                "description": (
                    "fit: inside a box; width/height: one side; cover: exact size, cropped; "
                    "pad: exact size, letterboxed"
                ),
            },
            "width": _size(),
            "height": _size(),
            "upscale": {"type": "boolean", "default": False},
            "gravity": {
                "enum": list(p.GRAVITIES),
                "default": "center",
                "description": "cover only",
            },
            "background": {"type": "string", "pattern": COLOUR_PATTERN, "description": "pad only"},
            "kernel": {
                "enum": list(p.KERNELS),
                "default": "lanczos",
                "description": "resampling kernel of the final resize pass",
            },
        },
        "allOf": [
            *boxed,
            {
                "if": {"properties": {"mode": {"const": "width"}}},
                "then": {"required": ["width"], "not": {"required": ["height"]}},
            },
            {
                "if": {"properties": {"mode": {"const": "height"}}},
                "then": {"required": ["height"], "not": {"required": ["width"]}},
            },
        ],
    }


def _rendition() -> dict[str, Any]:
    defaults = p.Rendition(name="x", resize=p.Resize("fit"), format="jpeg", key="")
    limits = {
        "quality": (1, 100),
        "compress_level": (0, 9),
        "method": (0, 6),
        "speed": (0, 10),
    }
    options: dict[str, Any] = {}
    for option, formats in p.FORMAT_OPTIONS.items():
        default = getattr(defaults, option)
        if isinstance(default, bool):
            schema: dict[str, Any] = {"type": "boolean"}
        elif option == "subsampling":
            schema = {"enum": list(p.SUBSAMPLINGS)}
        else:
            low, high = limits[option]
            schema = {"type": "integer", "minimum": low, "maximum": high}
        schema.update(default=default, description=f"for {', '.join(formats)}")
        options[option] = schema
    placeholders = ", ".join("{" + f + "}" for f in p.KEY_FIELDS)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "resize", "format", "key"],
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN},
            "resize": _resize(),
            "format": {"enum": list(p.OUTPUT_FORMATS)},
            "key": {
                "type": "string",
                "pattern": f"^{p.OUTPUT_PREFIX}",
                "description": f"output key template; placeholders: {placeholders}",
            },
            "sharpen": {"type": "integer", "minimum": 0, "maximum": p.MAX_SHARPEN, "default": 0},
            **options,
        },
    }


def schema() -> dict[str, Any]:
    defaults = p.Profile(name="x", renditions=())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "imgpipe processing profile",
        "type": "object",
        "additionalProperties": False,
        "required": ["renditions"],
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN},
            "description": {"type": "string"},
            "max_pixels": {"type": "integer", "minimum": 1, "default": defaults.max_pixels},
            "max_bytes": {"type": "integer", "minimum": 1, "default": defaults.max_bytes},
            "input_formats": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": list(p.INPUT_FORMATS)},
            },
            "background": {"type": "string", "pattern": COLOUR_PATTERN, "default": "#ffffff"},
            "flatten_folders": {"type": "boolean", "default": False},
            "keep_metadata": {"type": "boolean", "default": False},
            "icc": {"enum": list(p.ICC_MODES), "default": defaults.icc},
            "keep_animation": {"type": "boolean", "default": False},
            "max_frames": {
                "type": "integer",
                "minimum": 1,
                "maximum": p.MAX_FRAMES,
                "default": defaults.max_frames,
            },
            "renditions": {"type": "array", "minItems": 1, "items": _rendition()},
        },
    }


def render() -> str:
    return json.dumps(schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
