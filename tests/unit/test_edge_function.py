"""The CloudFront Function (pipeline/delivery/negotiate.js) under node, with real Accept headers.

node is a test requirement (`.ci/run` installs it): these tests fail, not skip, without it.
Each runs the code as deployed (`edge.code_with_table` / `edge.function_code`: the table
injected, comment lines gone) in host.js, which gives it none of node's globals. The
browsers' Accept headers, and where they come from: tests/support/delivery.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambda_pkg.profiles import PipelineConfig, profile_from_dict
from lambda_pkg.routes import Route
from pipeline.delivery import edge
from pipeline.delivery.node import EdgeFunctionFailed, NodeFunction, viewer_request
from pipeline.local.cdn import LocalCdn
from tests.support import delivery
from tests.support.delivery import CHROME, CURL, FIREFOX, FIREFOX_92, SAFARI

# A hand-written table, as edge.negotiation_table would compile it for two renditions.
TABLE: dict[str, Any] = {
    "formats": {
        "avif": ["image/avif", "avif"],
        "jpeg": ["image/jpeg", "jpg"],
        "png": ["image/png", "png"],
        "webp": ["image/webp", "webp"],
    },
    "rules": [
        ["^/processed/.+/w800$", ["avif", "webp", "jpeg"]],
        ["^/processed/.+/logo$", ["webp", "png"]],
        ["^/processed/flat/[^/]+$", ["webp", "jpeg"]],
    ],
}


@pytest.fixture(scope="module")
def negotiate() -> Iterator[NodeFunction]:
    with NodeFunction(edge.code_with_table(TABLE)) as function:
        yield function


def served(function: NodeFunction, uri: str, accept: str | None) -> str:
    return function(viewer_request(uri, accept))["uri"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (CHROME, "avif"),
        (FIREFOX, "avif"),
        (FIREFOX_92, "avif"),
        (SAFARI, "avif"),  # listed second, same q: the server's order (AVIF first) decides
        (CURL, "jpg"),  # */* promises nothing about AVIF or WebP
        (None, "jpg"),  # no Accept at all
        ("image/webp,*/*", "webp"),  # Firefox 65-91, Safari 14-15: WebP, no AVIF
        ("image/*", "jpg"),
        ("image/avif;q=0,image/webp", "webp"),  # refused explicitly
        ("image/avif;q=0.5,image/webp;q=0.9,*/*;q=0.1", "webp"),  # the client's q wins
        ("image/jpeg,image/avif;q=0.5", "jpg"),  # the client prefers the fallback
        ("IMAGE/AVIF ; Q=1", "avif"),  # case and spaces
        ("image/avif;q=junk,*/*", "jpg"),  # an unreadable q counts as 0
        ("text/html", "jpg"),  # nothing acceptable: still the fallback, never a 406
    ],
)
def test_a_canonical_url_becomes_the_best_format_the_accept_header_takes(
    negotiate: NodeFunction, accept: str | None, expected: str
) -> None:
    assert served(negotiate, "/processed/input/photo.jpg/w800", accept) == (
        f"/processed/input/photo.jpg/w800.{expected}"
    )


def test_only_formats_the_rendition_has_are_chosen(negotiate: NodeFunction) -> None:
    # logo is WebP with a PNG fallback: an AVIF-first browser gets WebP, curl the PNG
    assert (
        served(negotiate, "/processed/a/logo.png/logo", CHROME) == "/processed/a/logo.png/logo.webp"
    )
    assert served(negotiate, "/processed/a/logo.png/logo", CURL) == "/processed/a/logo.png/logo.png"


@pytest.mark.parametrize(
    "uri",
    [
        "/processed/input/photo.jpg/w800.jpg",  # names a format
        "/processed/input/photo.jpg/w800.webp",
        "/processed/input/photo.jpg/w800.avif",
        "/processed/input/photo.jpg/thumb",  # not a multi-format rendition
        "/processed/thumb_photo.jpg",
        "/input/photo.jpg",
        "/",
    ],
)
def test_other_uris_pass_through_untouched(negotiate: NodeFunction, uri: str) -> None:
    request = viewer_request(uri, CHROME)["request"]
    assert negotiate(viewer_request(uri, CHROME)) == request


def test_a_uri_naming_a_format_passes_even_where_the_canonical_pattern_takes_it(
    negotiate: NodeFunction,
) -> None:
    # processed/flat/{stem}: "photo.webp" fits {stem} too, but it is a key of the rendition
    assert served(negotiate, "/processed/flat/photo.webp", CHROME) == "/processed/flat/photo.webp"
    assert served(negotiate, "/processed/flat/photo.jpg", CHROME) == "/processed/flat/photo.jpg"
    assert served(negotiate, "/processed/flat/photo", CHROME) == "/processed/flat/photo.webp"
    # .png is no format of this rendition: "photo.png" is a stem, so a canonical URL
    assert served(negotiate, "/processed/flat/photo.png", CURL) == "/processed/flat/photo.png.jpg"


def test_an_accept_header_sent_twice_counts_with_all_its_values(negotiate: NodeFunction) -> None:
    event = viewer_request("/processed/x.jpg/w800", "image/png")
    event["request"]["headers"]["accept"]["multiValue"] = [
        {"value": "image/png"},
        {"value": "image/webp"},
    ]
    assert negotiate(event)["uri"] == "/processed/x.jpg/w800.webp"


def test_headers_and_everything_else_of_the_request_are_kept(negotiate: NodeFunction) -> None:
    event = viewer_request("/processed/x.jpg/w800", FIREFOX)
    event["request"]["querystring"] = {"v": {"value": "2"}}
    result = negotiate(event)
    assert result["uri"] == "/processed/x.jpg/w800.avif"
    assert result["headers"] == {"accept": {"value": FIREFOX}}
    assert result["querystring"] == {"v": {"value": "2"}}


@pytest.fixture(scope="module")
def deployed() -> Iterator[NodeFunction]:
    with NodeFunction(edge.function_code(delivery.site())) as function:
        yield function


def test_the_table_compiled_from_a_profile_lists_its_multi_format_renditions() -> None:
    table = edge.negotiation_table(delivery.site())
    assert table == {
        "formats": TABLE["formats"],  # each format used, with its media type and extension
        "rules": [
            # the more literal characters, the earlier: card's template is more specific
            [r"^/processed\/cards\/(?:.+/)?[^/]+\-[0-9a-f]{12}$", ["webp", "png"]],
            [r"^/processed\/.+\/w800$", ["avif", "webp", "jpeg"]],
        ],
    }


@pytest.mark.parametrize(
    ("uri", "accept", "extension"),
    [
        ("/processed/input/photo.jpg/w800", SAFARI, ".avif"),
        ("/processed/input/photo.jpg/w800", CURL, ".jpg"),
        ("/processed/cards/a/photo.jpg-0123456789ab", CHROME, ".webp"),
        ("/processed/cards/photo.jpg-0123456789ab", CURL, ".png"),
        ("/processed/cards/photo.jpg-0123", CHROME, ""),  # not a {hash}: not canonical
        ("/processed/input/photo.jpg/thumb", CHROME, ""),  # a single-format rendition
        # a source key with a space arrives percent-encoded, and stays so
        ("/processed/in/beach%20day.jpg/w800", FIREFOX, ".avif"),
    ],
)
def test_the_deployed_code_negotiates_the_profile_it_was_compiled_from(
    deployed: NodeFunction, uri: str, accept: str, extension: str
) -> None:
    assert served(deployed, uri, accept) == uri + extension


def test_the_deployed_code_is_the_source_with_its_table_and_fits_cloudfront() -> None:
    code = edge.function_code(delivery.site())
    assert "const TABLE = {}" not in code and '"rules":[["^/processed' in code
    assert "//" not in code.replace("://", "")  # comment lines stripped
    assert len(code.encode()) <= edge.MAX_CODE_BYTES


def test_a_table_over_cloudfronts_10_kb_is_refused() -> None:
    rules = [[f"^/processed/.+/r{i:03d}-padding-padding$", ["avif", "jpeg"]] for i in range(200)]
    with pytest.raises(edge.EdgeFunctionError, match=r"CloudFront allows 10,240"):
        edge.code_with_table({"formats": TABLE["formats"], "rules": rules})


def test_a_canonical_url_ending_in_the_sources_extension_is_refused() -> None:
    flat = delivery.config(
        delivery.rendition("w800", ["webp", "jpeg"], "processed/w800/{key}.{ext}")
    )
    with pytest.raises(edge.EdgeFunctionError, match="ends in the source's extension"):
        edge.check_negotiable(flat)
    edge.check_negotiable(delivery.site())  # {rendition} / {hash} endings are fine


def test_a_function_that_raises_is_reported_not_hidden() -> None:
    code = "function handler(event) { return event.request.nothing.uri; }"
    with NodeFunction(code) as broken, pytest.raises(EdgeFunctionFailed, match="TypeError"):
        broken(viewer_request("/x"))


def test_the_code_sees_none_of_nodes_globals() -> None:
    # (console is there, as at the edge: console.log writes to the function's logs)
    probe = "function handler(e) { return [typeof require, typeof process, typeof setTimeout]; }"
    with NodeFunction(probe) as function:
        assert function(viewer_request("/")) == ["undefined", "undefined", "undefined"]


def _two_profiles(web: dict, art: dict) -> PipelineConfig:
    profiles = (
        profile_from_dict({"name": "web", "renditions": [web]}, "web.yaml"),
        profile_from_dict({"name": "art", "renditions": [art]}, "art.yaml"),
    )
    routes = (Route("web", "uploads/web/"), Route("art", "uploads/art/"))
    return PipelineConfig(profiles=profiles, routes=routes)


def test_two_profiles_whose_canonical_urls_one_pattern_takes_are_refused() -> None:
    # The shape every profile is told to use, one rendition name, other formats: the
    # function would send art's canonical URL to web's formats (.avif, .jpg), which art's
    # item never wrote, and every browser would get a 403.
    config = _two_profiles(
        delivery.rendition("w800", ["avif", "jpeg"]), delivery.rendition("w800", ["webp", "png"])
    )
    with NodeFunction(edge.code_with_table(edge.negotiation_table(config))) as function:
        uri = served(function, "/processed/uploads/art/x.jpg/w800", CURL)
    assert uri.endswith((".avif", ".jpg"))  # what deploying this would serve
    with pytest.raises(edge.EdgeFunctionError, match=r"profile art, rendition w800.*profile web"):
        edge.check_negotiable(config)


def test_another_profiles_object_that_a_canonical_pattern_takes_is_refused() -> None:
    # art writes processed/uploads/art/x.jpg/w800 itself: web's rule would rewrite it away.
    config = _two_profiles(
        delivery.rendition("w800", ["avif", "jpeg"]),
        delivery.rendition("w800", "png", "processed/{key}/{rendition}"),
    )
    with pytest.raises(edge.EdgeFunctionError, match=r"profile art, rendition w800.*profile web"):
        edge.check_negotiable(config)


def test_profiles_whose_canonical_urls_differ_or_agree_on_formats_pass() -> None:
    same = delivery.rendition("w800", ["webp", "jpeg"])
    edge.check_negotiable(_two_profiles(same, same))  # either rule negotiates it right
    art = delivery.rendition("w800", ["webp", "png"], "processed/art/{key}/{rendition}.{ext}")
    edge.check_negotiable(_two_profiles(delivery.rendition("w800", ["avif", "jpeg"]), art))


@pytest.mark.parametrize(
    "literal",
    [
        "[v2]",  # browsers send [ and ] as they are (not in the URL path percent-encode set)
        "%5Bv2%5D",  # others encode them
        "%5bv2%5d",  # in lower-case hex too
        "(v2)",  # sub-delimiters: browsers send them as they are
        "%28v2%29",  # encodeURIComponent and Python's quote() encode them
    ],
)
def test_a_literal_part_matches_however_the_client_encoded_it(literal: str) -> None:
    template = "processed/{key}/" + ("[v2]" if "5" in literal or "[" in literal else "(v2)")
    site = delivery.config(
        delivery.rendition("w8", ["webp", "jpeg"], template + "{rendition}.{ext}")
    )
    with NodeFunction(edge.function_code(site)) as function:
        uri = f"/processed/in/a.jpg/{literal}w8"
        assert served(function, uri, CHROME) == uri + ".webp"
        assert served(function, uri + ".jpg", CHROME) == uri + ".jpg"  # names a format


def test_a_non_ascii_literal_matches_its_utf8_percent_encoding_in_either_case() -> None:
    site = delivery.config(
        delivery.rendition("w8", ["webp", "jpeg"], "processed/{key}/é{rendition}.{ext}")
    )
    with NodeFunction(edge.function_code(site)) as function:
        for uri in ("/processed/in/a.jpg/%C3%A9w8", "/processed/in/a.jpg/%c3%a9w8"):
            assert served(function, uri, CHROME) == uri + ".webp"


def test_the_local_cdn_refuses_the_profiles_the_deploy_guard_refuses() -> None:
    # The local CDN runs function_code: it must not serve profiles `pulumi up` would refuse
    # (here, canonical URLs ending in the source's extension, which it never negotiates).
    flat = delivery.config(
        delivery.rendition("w800", ["webp", "jpeg"], "processed/w800/{key}.{ext}")
    )
    with pytest.raises(edge.EdgeFunctionError, match="ends in the source's extension"):
        edge.function_code(flat)
    with pytest.raises(edge.EdgeFunctionError, match="ends in the source's extension"):
        LocalCdn("http://127.0.0.1:9", "bucket", flat)
