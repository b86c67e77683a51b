"""Profile routing: which keys go to which profile, and the S3 notification rules for them.

Pure functions (no pulumi, no boto3): the Pulumi program, the local stack and the tests
derive the same rules from the same routes.

The model, chosen so the handler's `profile_for` (first match wins) can never disagree
with S3's filters:
- *specific* routes (a prefix, a suffix or both) never overlap one another, exactly the
  rule S3 applies to the filters of one event type;
- at most one *catch-all* route (no prefix, no suffix), always last: it takes whatever no
  specific route took. S3 cannot say "everything else", so when a catch-all exists the
  notification is one unfiltered rule and the handler does the routing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from lambda_pkg.profiles import OUTPUT_PREFIX, ProfileError, Route
from lambda_pkg.routes import route_from_dict

# Notification rule: (events, filter prefix, filter suffix); "" means no filter.
NotificationRule = tuple[tuple[str, ...], str, str]


class RoutingError(ValueError):
    """The routes cannot be deployed; the message says which routes and why."""


class RouteEntryError(RoutingError):
    """One entry of imgpipe:routes is malformed (lambda_pkg.routes says how)."""

    def __init__(self, problem: ProfileError) -> None:
        # path is relative to the imgpipe namespace: routes[0].prefix
        self.path, self.value, self.allowed = problem.path, problem.value, problem.allowed
        super().__init__(f"imgpipe:{self.path}: got {self.value!r}; allowed: {self.allowed}")


def parse_routes(raw: str | None, default_profile: str) -> tuple[Route, ...]:
    """`imgpipe:routes` (a JSON list of {prefix, suffix, profile}) -> validated, ordered routes.

    Unset or empty: one catch-all route to `default_profile` (the seed's behaviour).
    """
    if raw is None or not raw.strip():
        return (Route(profile=default_profile),)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RoutingError(
            f"imgpipe:routes: not valid JSON ({exc.msg}); expected a list like "
            '[{"prefix": "avatars/", "profile": "thumbnail"}]'
        ) from None
    if not isinstance(data, list) or not data:
        raise RoutingError(f"imgpipe:routes: got {data!r}; allowed: a non-empty JSON list")
    return order_routes([_route(entry, i) for i, entry in enumerate(data)])


def _route(entry: Any, index: int) -> Route:
    try:
        return route_from_dict(entry, "imgpipe", f"routes[{index}]")
    except ProfileError as problem:
        raise RouteEntryError(problem) from None


def is_catch_all(route: Route) -> bool:
    return not route.prefix and not route.suffix


def overlaps(a: Route, b: Route) -> bool:
    """S3's rule: two filters overlap when some key could match both of them."""
    prefixes = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    suffixes = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
    return prefixes and suffixes


def order_routes(routes: Iterable[Route]) -> tuple[Route, ...]:
    """Validate and order: specific routes (in the order given) first, the catch-all last."""
    routes = tuple(routes)
    if not routes:
        raise RoutingError("imgpipe:routes: at least one route is needed")
    catch_alls = [r for r in routes if is_catch_all(r)]
    if len(catch_alls) > 1:
        raise RoutingError(
            "imgpipe:routes: more than one catch-all route (no prefix and no suffix): "
            f"{', '.join(r.profile for r in catch_alls)}; keep one"
        )
    specific = [r for r in routes if not is_catch_all(r)]
    for i, a in enumerate(specific):
        for b in specific[i + 1 :]:
            if overlaps(a, b):
                raise RoutingError(
                    f"imgpipe:routes: {describe(a)} and {describe(b)} overlap (a key could "
                    "match both); S3 rejects overlapping notification filters for the same "
                    "event: make the prefixes or the suffixes disjoint"
                )
    return (*specific, *catch_alls)


def describe(route: Route) -> str:
    prefix = route.prefix or ""
    return f"'{prefix}*{route.suffix}' -> {route.profile}"


def notification_rules(routes: Sequence[Route], events: Sequence[str]) -> list[NotificationRule]:
    """The bucket notification's rules for ordered routes: one per route, or one unfiltered.

    With a catch-all the function must see every key, so the filters would be redundant
    (and S3 would reject them as overlapping the unfiltered rule).
    """
    ordered = order_routes(routes)
    if any(is_catch_all(r) for r in ordered):
        return [(tuple(events), "", "")]
    return [(tuple(events), r.prefix, r.suffix) for r in ordered]


def read_patterns(routes: Sequence[Route]) -> list[tuple[str, str]]:
    """(prefix, suffix) pairs the function may read: exactly what can trigger it."""
    ordered = order_routes(routes)
    if any(is_catch_all(r) for r in ordered):
        return [("", "")]
    return list(dict.fromkeys((r.prefix, r.suffix) for r in ordered))


def check_no_self_trigger(
    routes: Sequence[Route], same_bucket: bool, output_prefix: str = OUTPUT_PREFIX
) -> None:
    """Refuse routes that would let the function's own outputs trigger it again.

    Only prefixes count: an output key can end with any suffix (`.png`, `.jpg`, ...).
    """
    if not same_bucket:
        return  # the output bucket has no notification
    for route in order_routes(routes):
        if route.prefix.startswith(output_prefix) or output_prefix.startswith(route.prefix):
            raise RoutingError(
                f"imgpipe:routes: {describe(route)} would match the function's own outputs "
                f"under '{output_prefix}' in the same bucket (imgpipe:singleBucket is true), "
                "so every rendition would trigger the function again: give every route a "
                f"prefix disjoint from '{output_prefix}' (for example 'uploads/'), or set "
                "imgpipe:singleBucket to false"
            )
