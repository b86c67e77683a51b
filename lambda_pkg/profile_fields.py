"""How a profile field is declared, once: type, limits, choices, default, formats.

Every field of `Profile`, `Rendition` and `Resize` (lambda_pkg/profiles.py) is a dataclass
field made by `declare`: its default is the dataclass default, the rest a `Spec` in the
field's metadata. The validator (`read_fields`), the serialised form (`plain`) and
profiles/schema.json (pipeline/profile_schema.py) all read these declarations, so a
limit, a choice or a default is written in one place. An encoder option declared for
several formats (`Spec.per_format`) may be given per format in a rendition that lists
several (`quality: {webp: 80, jpeg: 82}`): each value read by the same declaration.

Pure standard library: the Pulumi program imports it, and it must never load Pillow.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Profile and rendition names: they become parts of S3 keys and stack config values.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
NAME_ALLOWED = "lower-case letters, digits, '-' and '_'"
PROFILE_NAME_ALLOWED = "a profile name like 'thumbnail'"  # where a profile is named
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
COLOUR_ALLOWED = "a colour like '#ffffff'"
# An HTTP header value written as given (Cache-Control): printable ASCII, so a line break
# can never smuggle in a header of its own.
HEADER_PATTERN = r"^[ -~]{1,256}$"
HEADER_ALLOWED = "a header value: 1 to 256 printable ASCII characters, no line breaks"
_NAME_RE = re.compile(NAME_PATTERN)
_COLOUR_RE = re.compile(COLOUR_PATTERN)
_HEADER_RE = re.compile(HEADER_PATTERN)
_SPEC = "spec"


class ProfileError(ValueError):
    """A profile is invalid. The message names file, field path, bad value, what is allowed."""

    def __init__(self, source: str, path: str, value: Any, allowed: str) -> None:
        self.source, self.path, self.value, self.allowed = source, path, value, allowed
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: got {value!r}; allowed: {allowed}")


@dataclass(frozen=True)
class Spec:
    """What one field accepts. `kind` is one of READERS, or `object`/`objects`/`template`/
    `formats`, which the validator reads itself (a nested mapping, a list of them, a key
    template, one output format or a list of them)."""

    kind: str
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    of: type | None = None  # object(s): the nested dataclass
    formats: tuple[str, ...] = ()  # an encoder option: the concrete formats it applies to
    modes: tuple[str, ...] = ()  # a resize option: the modes it applies to
    required: bool = False  # a profile must give it
    nullable: bool = False  # null in a profile means unset
    # Left out of the serialised form while at its default: options added after the seed,
    # so PROFILE_CONFIG stays small (Lambda's 4 KB environment) and old hashes stay.
    omit_default: bool = False
    description: str = ""

    @property
    def per_format(self) -> bool:
        """An encoder option of several formats: a rendition in several formats may give it
        one value per format."""
        return len(self.formats) > 1


@dataclass(frozen=True)
class PerFormat:
    """An encoder option's values format by format, in the rendition's order: frozen and
    hashable like the rest of a profile. Only ever holds values that differ; equal ones are
    read as the one value, so two spellings of one result serialise and hash alike."""

    values: tuple[tuple[str, Any], ...]

    def of(self, fmt: str) -> Any:
        return dict(self.values)[fmt]


def declare(default: Any = dataclasses.MISSING, **spec: Any) -> Any:
    """A dataclass field with its declaration; `default` as for `dataclasses.field`."""
    return dataclasses.field(default=default, metadata={_SPEC: Spec(**spec)})


def specs(cls: type) -> dict[str, Spec]:
    """The declared fields of a profile dataclass, in declaration order."""
    return {f.name: f.metadata[_SPEC] for f in dataclasses.fields(cls)}


def defaults(cls: type) -> dict[str, Any]:
    """Each field's default; `dataclasses.MISSING` where there is none."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def applies(spec: Spec, fmt: str | tuple[str, ...]) -> bool:
    """Whether an option applies to a rendition format, or to one of a rendition's formats;
    `same` may become any format."""
    if not isinstance(fmt, str):
        return any(applies(spec, one) for one in fmt)
    return not spec.formats or fmt == "same" or fmt in spec.formats


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def read_fields(
    cls: type,
    raw: Mapping[str, Any],
    source: str,
    path: str,
    known: Mapping[str, Any],
    formats: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`known` plus every other field `raw` gives, read by its declaration; encoder options
    against the rendition's `formats`. Fields left out take the dataclass default."""
    values = dict(known)
    for name, spec in specs(cls).items():
        if name in values or name not in raw or (spec.nullable and raw[name] is None):
            continue
        where = join(path, name)
        if spec.formats:
            values[name] = read_encoder_option(spec, raw[name], formats, source, where)
        else:
            values[name] = read(spec, raw[name], source, where)
    return values


def read(spec: Spec, value: Any, source: str, path: str) -> Any:
    return READERS[spec.kind](spec, value, source, path)


def read_encoder_option(
    spec: Spec, value: Any, formats: tuple[str, ...], source: str, path: str
) -> Any:
    """One value for every format the option applies to or, for an option of several formats
    in a rendition of several, a mapping from each of the rendition's formats it applies to
    onto that format's value. All of them: a format left out would quietly get the default,
    the very mismatch a mapping is written to avoid."""
    if not isinstance(value, Mapping):
        return read(spec, value, source, path)
    targets = tuple(fmt for fmt in formats if fmt in spec.formats)
    if not spec.per_format or len(formats) < 2:
        allowed = (
            "one value (a value per format is for an option of several formats, in a "
            "rendition whose format is a list)"
        )
        raise ProfileError(source, path, dict(value), allowed)
    require_mapping(value, source, path, frozenset(targets))
    for fmt in targets:
        if fmt not in value:
            allowed = f"a value (a value per format names each of {', '.join(targets)})"
            raise ProfileError(source, join(path, fmt), None, allowed)
    read_values = tuple((fmt, read(spec, value[fmt], source, join(path, fmt))) for fmt in targets)
    if len({one for _, one in read_values}) == 1:
        return read_values[0][1]
    return PerFormat(read_values)


def plain(record: Any) -> dict[str, Any]:
    """A profile dataclass as a profile would spell it: unset (None) fields, options at their
    default (`omit_default`) and options for another format left out."""
    data: dict[str, Any] = {}
    fmt = getattr(record, "format", "same")
    for f in dataclasses.fields(record):
        spec, value = f.metadata[_SPEC], getattr(record, f.name)
        if value is None or (spec.omit_default and value == f.default):
            continue
        if applies(spec, fmt):
            data[f.name] = _plain_value(value)
    return data


def _plain_value(value: Any) -> Any:
    if isinstance(value, PerFormat):
        return dict(value.values)
    if dataclasses.is_dataclass(value):
        return plain(value)
    if isinstance(value, tuple):
        return [_plain_value(item) for item in value]
    return value


# -- readers: one per kind ----------------------------------------------------------------


def require_mapping(value: Any, source: str, path: str, allowed_keys: frozenset[str]) -> None:
    if not isinstance(value, Mapping):
        raise ProfileError(source, path or "(top level)", value, "a mapping of keys to values")
    for key in value:
        if key not in allowed_keys:
            allowed = f"one of the keys {', '.join(sorted(allowed_keys))}"
            raise ProfileError(source, join(path, str(key)), key, allowed)


def require_list(value: Any, source: str, path: str, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list) or (non_empty and not value):
        raise ProfileError(source, path, value, "a non-empty list" if non_empty else "a list")
    return value


def read_bool(value: Any, source: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(source, path, value, "true or false")
    return value


def read_choice(
    value: Any, choices: tuple[str, ...], source: str, path: str, allowed: str = ""
) -> str:
    if value not in choices:
        raise ProfileError(source, path, value, allowed or f"one of {', '.join(choices)}")
    return value


def read_str(value: Any, source: str, path: str) -> str:
    if not isinstance(value, str):
        raise ProfileError(source, path, value, "a string")
    return value


def read_int(value: Any, source: str, path: str, low: int, high: int | None = None) -> int:
    # bool is an int in Python; `width: true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        limit = f"a whole number >= {low}" + (f" and <= {high}" if high else "")
        raise ProfileError(source, path, value, limit)
    if high is not None and value > high:
        raise ProfileError(source, path, value, f"a whole number from {low} to {high}")
    return value


def is_name(value: Any) -> bool:
    """A valid profile or rendition name."""
    return isinstance(value, str) and bool(_NAME_RE.match(value))


def _name(spec: Spec, value: Any, source: str, path: str) -> str:
    if not is_name(value):
        raise ProfileError(source, path, value, NAME_ALLOWED)
    return value


def _colour(spec: Spec, value: Any, source: str, path: str) -> str:
    if not isinstance(value, str) or not _COLOUR_RE.match(value):
        raise ProfileError(source, path, value, COLOUR_ALLOWED)
    return value.lower()


def _header(spec: Spec, value: Any, source: str, path: str) -> str:
    if not isinstance(value, str) or not _HEADER_RE.match(value) or not value.strip():
        raise ProfileError(source, path, value, HEADER_ALLOWED)
    return value


def _choices(spec: Spec, value: Any, source: str, path: str) -> tuple[str, ...]:
    for i, item in enumerate(require_list(value, source, path, non_empty=True)):
        read_choice(item, spec.choices, source, f"{path}[{i}]")
    return tuple(dict.fromkeys(value))


READERS: dict[str, Callable[[Spec, Any, str, str], Any]] = {
    "int": lambda spec, value, source, path: read_int(value, source, path, spec.low, spec.high),
    "bool": lambda spec, value, source, path: read_bool(value, source, path),
    "str": lambda spec, value, source, path: read_str(value, source, path),
    "choice": lambda spec, value, source, path: read_choice(value, spec.choices, source, path),
    "choices": _choices,
    "name": _name,
    "colour": _colour,
    "header": _header,
}
