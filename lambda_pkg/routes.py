"""A route (which keys go to which profile) and the one validator of a route entry.

The stack config (`imgpipe:routes`, via pipeline/program/routing.py), the function's
PROFILE_CONFIG (`PipelineConfig.from_json`) and the component (a `PipelineConfig` built
in Python) all check their routes with `route_from_dict`, each wrapping its
`ProfileError` in its own error type. The rules for a *set* of routes (order, overlap,
outputs triggering the function) are S3's and live in pipeline/program/routing.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from lambda_pkg.profile_fields import PROFILE_NAME_ALLOWED, ProfileError, is_name, join

ROUTE_KEYS = ("profile", "prefix", "suffix")
# S3 filter values are literal, but IAM resource patterns treat these as wildcards: a route
# prefix containing one would widen the function's read grant beyond what triggers it.
WILDCARDS = ("*", "?")
MAX_FILTER_LENGTH = 1024  # S3's key length limit; a longer filter can never match


@dataclass(frozen=True)
class Route:
    """Keys starting with `prefix` and ending with `suffix` go to profile `profile`."""

    profile: str
    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)


def route_from_dict(
    entry: Any, source: str, path: str, profiles: Collection[str] | None = None
) -> Route:
    """One route entry, checked: its keys, a profile name (one of `profiles` when they are
    known), and literal prefix/suffix filters S3 can match."""
    if not isinstance(entry, Mapping):
        raise ProfileError(source, path, entry, "an object with profile/prefix/suffix")
    for key in entry:
        if key not in ROUTE_KEYS:
            keys = ", ".join(sorted(ROUTE_KEYS))
            allowed = f"one of the keys {keys} (an unknown key is an error)"
            raise ProfileError(source, join(path, str(key)), key, allowed)
    profile = entry.get("profile")
    if profiles is not None and profile not in profiles:
        raise ProfileError(source, join(path, "profile"), profile, f"one of {', '.join(profiles)}")
    if not is_name(profile):
        raise ProfileError(source, join(path, "profile"), profile, PROFILE_NAME_ALLOWED)
    return Route(profile, *(_filter(entry, name, source, path) for name in ("prefix", "suffix")))


def _filter(entry: Mapping[str, Any], name: str, source: str, path: str) -> str:
    value = entry.get(name, "")
    where = join(path, name)
    if not isinstance(value, str):
        raise ProfileError(source, where, value, "a string")
    if any(c in value for c in WILDCARDS):
        raise ProfileError(
            source,
            where,
            value,
            "literal text (S3 filters do not support wildcards: write the prefix and suffix "
            "as separate fields)",
        )
    if len(value) > MAX_FILTER_LENGTH:
        shown = f"{value[:40]}... ({len(value)} characters)"
        raise ProfileError(source, where, shown, f"at most {MAX_FILTER_LENGTH} characters")
    return value
