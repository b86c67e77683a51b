"""program.routing: routes -> S3 notification rules that S3 accepts and the handler agrees with."""

from __future__ import annotations

import json

import pytest

from lambda_pkg.profiles import PipelineConfig, ProfileError, Route, load_named
from pipeline.program.component import validate
from pipeline.program.guards import DeployGuardError
from pipeline.program.names import resource_names
from pipeline.program.routing import (
    RouteEntryError,
    RoutingError,
    check_no_self_trigger,
    notification_rules,
    order_routes,
    overlaps,
    parse_routes,
    read_patterns,
)
from pipeline.program.stack import TRIGGER_EVENTS, StackSettings

EVENTS = TRIGGER_EVENTS
AVATARS = Route("thumbnail", prefix="avatars/")
GRAPHICS_PNG = Route("web", prefix="graphics/", suffix=".png")
REST = Route("thumbnail")


def routes_json(*routes: Route) -> str:
    return json.dumps(
        [{"profile": r.profile, "prefix": r.prefix, "suffix": r.suffix} for r in routes]
    )


def test_unset_routes_are_one_catch_all_to_the_profile() -> None:
    assert parse_routes(None, "web") == (Route("web"),)
    assert parse_routes("  ", "web") == (Route("web"),)


def test_the_issue_example_orders_the_catch_all_last() -> None:
    # GIVEN the catch-all listed first
    routes = parse_routes(routes_json(REST, AVATARS, GRAPHICS_PNG), "ignored")
    # THEN specific routes keep their order and the catch-all goes last
    assert routes == (AVATARS, GRAPHICS_PNG, REST)


def test_with_a_catch_all_the_notification_is_one_unfiltered_rule() -> None:
    # S3 cannot say "everything else"; the function sees every key and routes it itself.
    assert notification_rules((AVATARS, GRAPHICS_PNG, REST), EVENTS) == [(EVENTS, "", "")]
    assert read_patterns((AVATARS, GRAPHICS_PNG, REST)) == [("", "")]


def test_without_a_catch_all_each_route_is_a_filtered_rule() -> None:
    assert notification_rules((AVATARS, GRAPHICS_PNG), EVENTS) == [
        (EVENTS, "avatars/", ""),
        (EVENTS, "graphics/", ".png"),
    ]
    assert read_patterns((AVATARS, GRAPHICS_PNG)) == [("avatars/", ""), ("graphics/", ".png")]


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (Route("x", "a/"), Route("y", "a/b/"), True),  # nested prefixes
        (Route("x", "a/"), Route("y", "b/"), False),
        (Route("x", "", ".png"), Route("y", "", ".jpg"), False),
        (Route("x", "", ".png"), Route("y", "", "a.png"), True),  # nested suffixes
        (Route("x", "a/", ".png"), Route("y", "a/", ".jpg"), False),  # same prefix, disjoint suffix
        (Route("x", "a/", ""), Route("y", "", ".png"), True),  # a/x.png matches both
    ],
)
def test_overlap_is_s3s_rule(a: Route, b: Route, overlap: bool) -> None:
    assert overlaps(a, b) is overlap
    assert overlaps(b, a) is overlap


def test_overlapping_routes_are_refused_naming_both() -> None:
    raw = routes_json(Route("web", "graphics/"), Route("thumbnail", "graphics/", ".png"))
    with pytest.raises(RoutingError) as caught:
        parse_routes(raw, "thumbnail")
    message = str(caught.value)
    assert "'graphics/*' -> web" in message and "'graphics/*.png' -> thumbnail" in message
    assert "S3 rejects overlapping" in message


def test_two_catch_alls_are_refused() -> None:
    with pytest.raises(RoutingError, match="more than one catch-all"):
        order_routes([Route("web"), Route("thumbnail")])


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("not json", "not valid JSON"),
        ("[]", "a non-empty JSON list"),
        ('{"prefix": "a/"}', "a non-empty JSON list"),
        ('[{"prefix": "a/"}]', r"routes\[0\]\.profile"),
        ('[{"profile": "web", "prefix": 3}]', r"routes\[0\]\.prefix: got 3"),
        ('[{"profile": "web", "prefix": "a/*"}]', "do not support wildcards"),
        ('[{"profile": "web", "suffix": "?.png"}]', "do not support wildcards"),
        ('[{"profile": "web", "sufix": ".png"}]', "unknown key"),
    ],
)
def test_bad_routes_say_what_is_wrong(raw: str, match: str) -> None:
    with pytest.raises(RoutingError, match=match):
        parse_routes(raw, "thumbnail")


def test_self_trigger_is_refused_only_in_a_single_bucket() -> None:
    check_no_self_trigger((REST,), same_bucket=False)
    check_no_self_trigger((Route("web", "uploads/"),), same_bucket=True)
    for bad in (REST, Route("web", "processed/"), Route("web", "proc"), Route("web", "", ".png")):
        with pytest.raises(RoutingError, match="processed/"):
            check_no_self_trigger((bad,), same_bucket=True)


@pytest.mark.parametrize(
    "key",
    [
        "avatars/me.jpg",
        "avatars/deep/me.png",
        "graphics/logo.png",
        "graphics/photo.jpg",
        "other/a.png",
        "a.jpg",
    ],
)
def test_the_handler_and_s3_agree_on_every_key(key: str) -> None:
    # GIVEN routes without a catch-all (S3 filters decide what reaches the function)
    routes = order_routes([AVATARS, GRAPHICS_PNG])
    config = PipelineConfig(profiles=(load_named("thumbnail"), load_named("web")), routes=routes)
    # WHEN a key is matched by S3's rules (prefix AND suffix) and by the handler
    s3_matches = [
        r for r in notification_rules(routes, EVENTS) if key.startswith(r[1]) and key.endswith(r[2])
    ]
    profile = config.profile_for(key)
    # THEN S3 delivers it exactly when the handler has a profile for it
    assert len(s3_matches) <= 1  # no overlap: at most one rule
    assert bool(s3_matches) == (profile is not None)
    # AND with the catch-all added, every key is delivered and only unmatched ones fall through
    with_rest = PipelineConfig(config.profiles, order_routes([*routes, REST]))
    expected = profile.name if profile else "thumbnail"
    assert with_rest.profile_for(key).name == expected


# -- one validator for a route entry ----------------------------------------------------

BAD_ENTRIES = [
    "avatars/",
    {"profile": "web", "sufix": ".png"},
    {"profile": "web", "prefix": 3},
    {"profile": "web", "prefix": "a/*"},
    {"profile": "web", "suffix": "x" * 1025},
]


@pytest.mark.parametrize("entry", BAD_ENTRIES)
def test_stack_config_and_profile_config_refuse_a_route_alike(entry) -> None:
    # GIVEN the same bad entry in imgpipe:routes and in the function's PROFILE_CONFIG
    config = PipelineConfig.single(load_named("web"))
    text = json.dumps({"profiles": [config.profiles[0].to_dict()], "routes": [entry]})
    with pytest.raises(RouteEntryError) as from_stack:
        parse_routes(json.dumps([entry]), "web")
    with pytest.raises(ProfileError) as from_function:
        PipelineConfig.from_json(text)
    # THEN both name the same field, value and what is allowed
    assert str(from_stack.value) == "imgpipe:" + str(from_function.value).removeprefix(
        "PROFILE_CONFIG: "
    )


def test_route_profiles_are_profile_names() -> None:
    with pytest.raises(RoutingError, match=r"routes\[0\]\.profile: got '\.\./etc'; .*'thumbnail'"):
        parse_routes('[{"prefix": "a/", "profile": "../etc"}]', "thumbnail")


def test_the_component_refuses_a_route_to_a_profile_it_does_not_ship() -> None:
    # GIVEN a config built in Python whose route names a profile it does not carry
    config = PipelineConfig(profiles=(load_named("thumbnail"),), routes=(Route("web"),))
    names = resource_names("imgpipe", "dev")
    # THEN the component refuses it with the route validator's words
    with pytest.raises(DeployGuardError, match=r"routes\[0\]\.profile: got 'web'; allowed: one"):
        validate(config, StackSettings(), names)
