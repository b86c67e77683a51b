"""profiles/schema.json: a JSON Schema of the profile format, for editors.

Generated from the field declarations of the one schema module (lambda_pkg/profiles.py,
lambda_pkg/profile_fields.py): every pattern, limit, choice and default comes from there,
so the two cannot drift (a test compares the committed file with this output). It helps
an editor complete and flag keys; the Python validator stays the authority: rules a JSON
Schema cannot say (key templates that could collide, options that do not apply to a
format, the formats a value-per-format mapping must name) are only checked there.

Regenerate with `python -m pipeline.profile_schema > profiles/schema.json`.
"""

from __future__ import annotations

import json
from typing import Any

from lambda_pkg import profiles as p
from lambda_pkg.profile_fields import (
    COLOUR_PATTERN,
    HEADER_PATTERN,
    NAME_PATTERN,
    Spec,
    defaults,
    specs,
)

_STRINGS = {
    "name": NAME_PATTERN,
    "colour": COLOUR_PATTERN,
    "header": HEADER_PATTERN,
    "template": f"^{p.OUTPUT_PREFIX}",
}


def _value(spec: Spec) -> dict[str, Any]:
    """The part of a property that says what a value may be."""
    if spec.kind == "int":
        bounds = {"minimum": spec.low, "maximum": spec.high}
        return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}
    if spec.kind in _STRINGS:
        return {"type": "string", "pattern": _STRINGS[spec.kind]}
    if spec.kind == "choice":
        return {"enum": list(spec.choices)}
    if spec.kind == "formats":  # one of the choices, or a list of the concrete ones
        several = {"type": "array", "minItems": 1, "uniqueItems": True}
        return {
            "anyOf": [
                {"enum": list(spec.choices)},
                {**several, "items": {"enum": list(p.EXTENSIONS)}},
            ]
        }
    if spec.kind == "choices":
        return {"type": "array", "minItems": 1, "items": {"enum": list(spec.choices)}}
    if spec.kind == "object":
        return _object(spec.of)
    if spec.kind == "objects":
        return {"type": "array", "minItems": 1, "items": _object(spec.of)}
    return {"type": {"bool": "boolean", "str": "string"}[spec.kind]}


def _per_format(spec: Spec) -> dict[str, Any]:
    """One value, or (an option of several formats) a value per format: which formats a
    rendition lists, and so which keys it must give, only the validator knows."""
    value = _value(spec)
    if not spec.per_format:
        return value
    by_format = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {fmt: value for fmt in spec.formats},
    }
    return {"anyOf": [value, by_format]}


def _property(spec: Spec, default: Any) -> dict[str, Any]:
    schema = _per_format(spec)
    # Defaults worth showing an editor: a scalar (not unset, not an empty string).
    if isinstance(default, bool | int | str) and default != "":
        schema["default"] = default
    description = spec.description or (f"for {', '.join(spec.formats)}" if spec.formats else "")
    if spec.per_format:
        description += "; in a rendition of several formats, one value or a value per format"
    if description:
        schema["description"] = description
    return schema


def _shown_order(item: tuple[str, Spec]) -> tuple[bool, bool]:
    # As profiles are written: options for some formats after the common fields, and the
    # list of renditions last.
    return bool(item[1].formats), item[1].kind == "objects"


def _object(cls: type) -> dict[str, Any]:
    declared, default = specs(cls), defaults(cls)
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name, spec in declared.items() if spec.required],
        "properties": {
            name: _property(spec, default[name])
            for name, spec in sorted(declared.items(), key=_shown_order)
        },
    }
    if "mode" in declared:
        schema["allOf"] = _mode_sizes()
    return schema


def _mode_sizes() -> list[dict[str, Any]]:
    """Each resize mode requires its sizes and, when it takes one, refuses the other."""
    sizes = tuple(dict.fromkeys(size for needs in p.MODE_SIZES.values() for size in needs))
    rules = []
    for mode, needs in sorted(p.MODE_SIZES.items(), key=lambda item: len(item[1]) < len(sizes)):
        then: dict[str, Any] = {"required": list(needs)}
        others = [size for size in sizes if size not in needs]
        if others:
            then["not"] = {"required": others}
        rules.append({"if": {"properties": {"mode": {"const": mode}}}, "then": then})
    return rules


def schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "imgpipe processing profile",
        **_object(p.Profile),
    }


def render() -> str:
    return json.dumps(schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
