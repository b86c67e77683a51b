"""A ready `<picture>` element for one image, from its metadata item alone.

The item lists every object written: a rendition in several formats has one entry per
format, all with the rendition's name, width and height. The renditions that show the whole
picture (the original's aspect ratio: `width`, `height` and `fit` resizes) become one
`srcset` per format, by width; a crop (`cover`, `pad`) is another picture and is left out
unless nothing else is there. Each format but the last becomes a `<source type=...>`; the
last (the fallback every browser shows) is the `<img>`, which carries the intrinsic size,
`sizes`, the lazy-loading hints and the dominant colour as the background a browser shows
until the pixels arrive (the BlurHash rides along as `data-blurhash` for a script to paint).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from lambda_pkg.profile_fields import COLOUR_PATTERN
from lambda_pkg.profiles import MEDIA_TYPES
from lambda_pkg.records import STATUS_OK

# `src` for browsers without srcset: the widest fallback up to this width (a phone-to-laptop
# compromise), else the narrowest.
SRC_MAX_WIDTH = 800
_COLOUR = re.compile(COLOUR_PATTERN)  # the item's dominant_color, as profiles write colours
UrlFor = Callable[[str], str]  # an object's key -> its URL on the page


class MarkupError(ValueError):
    """The item has nothing a page could show."""


@dataclass
class _Rendition:
    name: str
    width: int
    height: int
    keys: dict[str, str] = field(default_factory=dict)  # format -> key, in the item's order


def picture(entry: dict[str, Any], base_url: str, alt: str = "", sizes: str | None = None) -> str:
    """`<picture>` for an `ok` item, its URLs under `base_url` (a CDN, or the bucket's URL)."""
    shown = _whole_picture(_renditions(entry), entry)
    return _element(shown, lambda key: object_url(base_url, key), alt, sizes, _placeholder(entry))


def rendition_picture(
    entry: dict[str, Any], records: list[dict[str, Any]], url_for: UrlFor, alt: str = ""
) -> str:
    """`<picture>` for one rendition of the item: `records` are its entries (one per format,
    the fallback last), `url_for(key)` each object's URL. The gallery shows each rendition
    this way, with the same markup `picture` gives the whole item."""
    rendition = _grouped(records)
    if len(rendition) != 1:
        raise MarkupError(f"one rendition's records expected, got {sorted(rendition)}")
    return _element(list(rendition.values()), url_for, alt, None, _placeholder(entry))


def _element(
    shown: list[_Rendition],
    url_for: UrlFor,
    alt: str,
    sizes: str | None,
    placeholder: dict[str, str],
) -> str:
    """The markup itself, for renditions of one shape, narrowest first."""
    formats = list(dict.fromkeys(fmt for r in shown for fmt in r.keys))
    fallback = formats[-1]  # every profile lists its fallback last
    largest = shown[-1]
    sizes = sizes or f"(max-width: {largest.width}px) 100vw, {largest.width}px"
    lines = ["<picture>"]
    for fmt in (f for f in formats if f != fallback):
        srcset = _srcset(shown, fmt, url_for)
        lines.append(f"  <source {_attributes(type=MEDIA_TYPES[fmt], srcset=srcset, sizes=sizes)}>")
    with_fallback = [r for r in shown if fallback in r.keys]
    src = next((r for r in reversed(with_fallback) if r.width <= SRC_MAX_WIDTH), with_fallback[0])
    image = {
        "src": url_for(src.keys[fallback]),
        "srcset": _srcset(shown, fallback, url_for),
        "sizes": sizes,
        "width": str(largest.width),
        "height": str(largest.height),
        "alt": alt,
        "loading": "lazy",
        "decoding": "async",
        **placeholder,
    }
    lines += [f"  <img {_attributes(**image)}>", "</picture>"]
    return "\n".join(lines)


def _renditions(entry: dict[str, Any]) -> list[_Rendition]:
    """The item's renditions, each with its formats' keys, in the item's order."""
    if entry.get("status") != STATUS_OK or not entry.get("renditions"):
        status = entry.get("status", "no status")
        raise MarkupError(f"{entry.get('image_name')!r} has no renditions to show ({status})")
    return list(_grouped(entry["renditions"]).values())


def _grouped(records: list[dict[str, Any]]) -> dict[str, _Rendition]:
    """Records by rendition name, each format's key in the records' order."""
    by_name: dict[str, _Rendition] = {}
    for item in records:
        name = item["name"]
        rendition = by_name.setdefault(
            name, _Rendition(name, int(item["width"]), int(item["height"]))
        )
        rendition.keys[item.get("format", "")] = item["key"]
    return by_name


def _whole_picture(renditions: list[_Rendition], entry: dict[str, Any]) -> list[_Rendition]:
    """The renditions with the original's aspect ratio (within a pixel of rounding), or those
    shaped like the first when none is; one per width, narrowest first."""
    width, height = int(entry.get("original_width") or 0), int(entry.get("original_height") or 0)
    shape = (width, height) if width and height else (renditions[0].width, renditions[0].height)
    if not any(_same_shape(r, shape) for r in renditions):
        shape = (renditions[0].width, renditions[0].height)
    by_width: dict[int, _Rendition] = {}
    for rendition in renditions:  # an original smaller than a width gives that size twice
        if _same_shape(rendition, shape):
            by_width.setdefault(rendition.width, rendition)
    return [by_width[w] for w in sorted(by_width)]


def _same_shape(rendition: _Rendition, shape: tuple[int, int]) -> bool:
    return abs(rendition.width * shape[1] / shape[0] - rendition.height) <= 1


def _srcset(renditions: list[_Rendition], fmt: str, url_for: UrlFor) -> str:
    return ", ".join(f"{url_for(r.keys[fmt])} {r.width}w" for r in renditions if fmt in r.keys)


def object_url(base_url: str, key: str) -> str:
    """The URL of an output object's key under `base_url`."""
    return f"{base_url.rstrip('/')}/{quote(key, safe='/')}"


def _placeholder(entry: dict[str, Any]) -> dict[str, str]:
    attributes = {}
    colour = entry.get("dominant_color")
    if isinstance(colour, str) and _COLOUR.match(colour):  # it goes into CSS: nothing else
        attributes["style"] = f"background-color:{colour}"
    if entry.get("blurhash"):
        attributes["data-blurhash"] = str(entry["blurhash"])
    return attributes


def _attributes(**values: str) -> str:
    """`name="value"` pairs, the values escaped."""
    return " ".join(f'{name}="{html.escape(value, quote=True)}"' for name, value in values.items())
