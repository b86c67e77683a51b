"""The format-negotiation function's table, compiled from the profiles, and its code.

CloudFront Functions cannot read S3, so which URIs are canonical URLs (a multi-format
rendition's key without its extension) and which formats each has is compiled here, at
deploy, from the stack's PipelineConfig into a table of JavaScript regular expressions,
and injected into negotiate.js. Pure Python (no pulumi): the Pulumi program deploys what
`function_code` returns, and the local CDN and the tests run exactly that under node.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lambda_pkg.profiles import (
    EXTENSIONS,
    HASH_DIGITS,
    MEDIA_TYPES,
    PipelineConfig,
    canonical_template,
    render_key,
)

SOURCE = Path(__file__).with_name("negotiate.js")
RUNTIME = "cloudfront-js-2.0"
# CloudFront's limit on a function's code (the table included), in bytes.
MAX_CODE_BYTES = 10 * 1024
_TABLE_LINE = re.compile(r"^const TABLE = \{.*\};$", re.M)
_COMMENT_LINE = re.compile(r"^\s*//.*\n", re.M)

# What each key placeholder may stand for in a URI: JavaScript regular expressions. The
# source's key and path may span folders, {dir} is empty or ends in "/", {hash} is hex.
WILDCARDS = {
    "key": ".+",
    "path": ".+",
    "dir": "(?:.+/)?",
    "name": "[^/]+",
    "stem": "[^/]+",
    "hash": f"[0-9a-f]{{{HASH_DIGITS}}}",
}
# Placeholders that end with the source's own extension (photo.jpg): a canonical URL ending
# in one reads as a URI naming a format, so it would never be negotiated.
_ENDS_WITH_EXTENSION = ("key", "name")
# Characters a browser leaves as they are in a URL path; the rest of a literal part of a
# template arrives percent-encoded, and the function sees the URI as it arrived.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"
# RFC 3986's unreserved characters (and the separator): never percent-encoded by a client.
# The rest of _PATH_SAFE (+, (, :, ...) arrives as it is from a browser, encoded from some
# clients (encodeURIComponent, Python's quote), and S3 reads both as the same key.
_UNRESERVED = "/-._~"
_JS_SPECIAL = re.compile(r"[\\^$.*+?()[\]{}|/-]")

# Sent with every response, by the distribution (its response-headers policy) and by the
# local CDN alike. Vary: the same canonical URL is a different body for another Accept.
VARY = "Accept"
HSTS_MAX_AGE_S = 365 * 24 * 3600
RESPONSE_HEADERS = {
    "Vary": VARY,
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": f"max-age={HSTS_MAX_AGE_S}",
}
# CORS: renditions are public through the CDN anyway; a `*` origin lets pages draw them on
# a canvas or fetch them. Sent to CORS requests (those with an Origin header).
CORS_ALLOW_ORIGIN = "*"
CORS_METHODS = ("GET", "HEAD")


class EdgeFunctionError(ValueError):
    """The profiles cannot be negotiated at the edge as they are (size, ambiguous URLs)."""


def uri_pattern(template: str, rendition: str) -> str:
    """The JavaScript regular expression matching the URIs (with their leading "/") of a
    canonical key template; {rendition} is the rendition's own name."""
    parts = ["^/"]
    for literal, field, _, _ in string.Formatter().parse(template):
        text = literal + (rendition if field == "rendition" else "")
        parts.extend(_literal_pattern(char) for char in text)
        if field is not None and field != "rendition":
            parts.append(WILDCARDS[field])
    return "".join(parts) + "$"


def _literal_pattern(char: str) -> str:
    """One literal character as clients may send it: as it is where nobody encodes it, else
    its UTF-8 percent-encoding in either hex case, or, for printable ASCII (browsers send
    `[` and `+` as they are, other clients encode them), either."""
    if char in _UNRESERVED or (char.isascii() and char.isalnum()):
        return _escape(char)
    encoded = re.sub("[A-F]", _either_case, quote(char, safe=""))
    if char.isascii() and char.isprintable() and char != " ":
        return f"(?:{_escape(char)}|{encoded})"
    return f"(?:{encoded})"


def _either_case(hex_digit: re.Match[str]) -> str:
    return f"[{hex_digit[0]}{hex_digit[0].lower()}]"


def _escape(text: str) -> str:
    return _JS_SPECIAL.sub(r"\\\g<0>", text)


def negotiation_table(config: PipelineConfig) -> dict[str, Any]:
    """{"formats": {format: [media type, extension]}, "rules": [[pattern, [formats]]]}: one
    rule per multi-format rendition, those with more literal characters (more specific)
    first, since the function takes the first rule a canonical URL matches."""
    rules: dict[tuple[str, tuple[str, ...]], int] = {}
    for profile in config.profiles:
        for rendition in profile.renditions:
            template = canonical_template(rendition)
            if template is None:
                continue
            literal = sum(len(text) for text, *_ in string.Formatter().parse(template))
            rules[(uri_pattern(template, rendition.name), rendition.formats)] = literal
    used = sorted({fmt for _, formats in rules for fmt in formats})
    ordered = sorted(rules, key=lambda rule: (-rules[rule], rule[0]))
    return {
        "formats": {fmt: [MEDIA_TYPES[fmt], EXTENSIONS[fmt]] for fmt in used},
        "rules": [[pattern, list(formats)] for pattern, formats in ordered],
    }


def function_code(config: PipelineConfig) -> str:
    """negotiate.js with the stack's table, without its comment lines (they count against
    the 10 KB); what CloudFront runs, the local CDN runs, and the tests run. Profiles the
    function would negotiate wrongly are refused here, so the local CDN refuses them too."""
    check_negotiable(config)
    return code_with_table(negotiation_table(config))


def code_with_table(table: dict[str, Any]) -> str:
    source = SOURCE.read_text(encoding="utf-8")
    line = f"const TABLE = {json.dumps(table, separators=(',', ':'))};"
    code, replaced = _TABLE_LINE.subn(lambda _: line, source)
    if replaced != 1:
        raise EdgeFunctionError(f"{SOURCE}: expected one `const TABLE = {{...}};` line")
    code = _COMMENT_LINE.sub("", code)
    size = len(code.encode("utf-8"))
    if size > MAX_CODE_BYTES:
        raise EdgeFunctionError(
            f"the format-negotiation function would be {size:,} bytes with this stack's "
            f"{len(table['rules'])} multi-format renditions; CloudFront allows "
            f"{MAX_CODE_BYTES:,}: fewer multi-format renditions, or shared key templates"
        )
    return code


def check_negotiable(config: PipelineConfig) -> None:
    """Refuse a multi-format rendition whose canonical URL ends in the source's extension
    (`processed/{key}.{ext}` gives processed/photo.jpg): that URL reads as naming a format
    and would never be negotiated."""
    for profile in config.profiles:
        for rendition in profile.renditions:
            template = canonical_template(rendition)
            if template is None:
                continue
            *_, (_, last, _, _) = string.Formatter().parse(template)
            if last in _ENDS_WITH_EXTENSION:
                raise EdgeFunctionError(
                    f"profile {profile.name}, rendition {rendition.name}: its canonical URL "
                    f"{template!r} ends in the source's extension (photo.jpg), which reads as "
                    "a URI naming a format; end the key in something of its own, as in "
                    "processed/{key}/{rendition}.{ext}"
                )
    _check_rules_take_their_own(config)


def _check_rules_take_their_own(config: PipelineConfig) -> None:
    """Patterns cannot tell profiles apart (`processed/{key}/w800` is one pattern whatever
    routes to it): refuse a rendition whose canonical URL the function would give another
    rendition's formats, or whose object it would rewrite, tried on sample keys per route."""
    rules = negotiation_table(config)["rules"]
    owners = _rule_owners(config)
    for profile in config.profiles:
        for rendition in profile.renditions:
            for uri, wanted in _sample_uris(config, profile.name, rendition):
                got = _negotiated_formats(uri, rules)
                if got == wanted:
                    continue
                raise EdgeFunctionError(
                    f"profile {profile.name}, rendition {rendition.name}: its URL {uri} is "
                    f"taken by the pattern of {_takers(uri, owners, rendition)} (the function "
                    f"would choose among {', '.join(got or ['none'])} for it, not "
                    f"{', '.join(wanted or ['none'])}); give one of them a key of its own, as "
                    f"in processed/{profile.name}/{{key}}/{{rendition}}.{{ext}}"
                )


def _rule_owners(config: PipelineConfig) -> dict[str, list[tuple[str, Any]]]:
    owners: dict[str, list[tuple[str, Any]]] = {}
    for profile in config.profiles:
        for rendition in profile.renditions:
            template = canonical_template(rendition)
            if template is not None:
                pattern = uri_pattern(template, rendition.name)
                owners.setdefault(pattern, []).append((profile.name, rendition))
    return owners


def _sample_uris(
    config: PipelineConfig, profile: str, rendition: Any
) -> list[tuple[str, list[str] | None]]:
    """(URI, the formats the function must find for it: None to pass it through) for the
    rendition's objects and canonical URL, for sample source keys under each of its routes."""
    prefixes = [route.prefix for route in config.routes if route.profile == profile] or [""]
    canonical = canonical_template(rendition)
    formats = tuple(EXTENSIONS) if rendition.format == "same" else rendition.formats
    uris: list[tuple[str, list[str] | None]] = []
    for source in (f"{prefix}{tail}" for prefix in prefixes for tail in _SAMPLE_TAILS):
        for fmt in formats:
            key = render_key(rendition.key, source, rendition.name, EXTENSIONS[fmt], _HASH)
            uris.append(("/" + quote(key, safe=_PATH_SAFE), None))
        if canonical is not None:
            key = render_key(canonical, source, rendition.name, "", _HASH)
            uris.append(("/" + quote(key, safe=_PATH_SAFE), list(rendition.formats)))
    return uris


_SAMPLE_TAILS = ("photo.jpg", "a/photo.jpg")
_HASH = "0" * HASH_DIGITS


def _takers(uri: str, owners: dict[str, list[tuple[str, Any]]], rendition: Any) -> str:
    """The other renditions whose pattern takes `uri`, with or without its extension."""
    bare = uri.rsplit(".", 1)[0]
    return ", ".join(
        f"profile {profile}, rendition {owner.name}"
        for pattern, found in owners.items()
        if re.search(pattern, uri) or re.search(pattern, bare)
        for profile, owner in found
        if owner is not rendition
    )


def _negotiated_formats(uri: str, rules: list[list[Any]]) -> list[str] | None:
    """negotiate.js's canonicalFormats, in Python: the formats the function picks among for
    `uri`, or None where it passes the URI through (the patterns are Python-compatible)."""
    dot = uri.rfind(".")
    named = uri[dot + 1 :] if dot > uri.rfind("/") else None
    found = None
    for pattern, formats in rules:
        extensions = {EXTENSIONS[fmt] for fmt in formats}
        if named in extensions and re.search(pattern, uri[:dot]):
            return None
        if found is None and re.search(pattern, uri):
            found = formats
    return found
