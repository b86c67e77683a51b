"""The gallery's markup: a summary line, filters, pages of cards, one card per image.

Pure functions of the metadata items; every image URL comes from a callable, so the same
markup serves local copies, presigned URLs or a CDN. With `pictures`, each rendition is one
figure holding the `<picture>` element `imgpipe html` prints (pipeline/cli/markup.py), a
`<source>` per format, so the browser picks the format; otherwise each object written is a
figure of its own. Everything from keys, errors and profiles is HTML-escaped here, in
`_text` and `_attr`, and in markup.py.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lambda_pkg import records
from pipeline.cli import markup

SrcFor = Callable[[str], str]

# Originals a browser shows as they are; any other (TIFF, HEIC, BMP, ...) is previewed by
# its largest rendition, labelled as such.
BROWSER_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "avif"})
# Cards per page: a page's images load lazily, and cards on other pages load nothing.
PAGE_SIZE = 48
STATUS_ORDER = (records.STATUS_OK, records.STATUS_FAILED, records.STATUS_DELETED)


@dataclass(frozen=True)
class Shown:
    """A rendition the card shows, and the names of those that came out identical to it;
    as a picture, `formats` holds its record per format (the fallback last)."""

    rendition: dict[str, Any]
    same_as: tuple[str, ...] = ()
    formats: tuple[dict[str, Any], ...] = ()


def distinct_renditions(
    renditions: Iterable[dict[str, Any]], etags: Mapping[str, str] | None = None
) -> list[Shown]:
    """Renditions in profile order, those identical to an earlier one folded into it: same
    size, format and byte count, and the same ETag (an MD5 of the content) when `etags`
    are known. A small original never upscaled gives w800 and w1600 alike."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for rendition in renditions:
        groups.setdefault(_identity(rendition, etags), []).append(rendition)
    return [Shown(first, tuple(r["name"] for r in rest)) for first, *rest in groups.values()]


def distinct_pictures(
    renditions: Iterable[dict[str, Any]], etags: Mapping[str, str] | None = None
) -> list[Shown]:
    """Renditions by name, each with its records per format, those identical in every
    format to an earlier one folded into it (as `distinct_renditions` decides)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for rendition in renditions:
        by_name.setdefault(rendition["name"], []).append(rendition)
    groups: dict[tuple, list[list[dict[str, Any]]]] = {}
    for formats in by_name.values():
        identity = tuple(_identity(record, etags) for record in formats)
        groups.setdefault(identity, []).append(formats)
    return [
        Shown(first[0], tuple(rest[0]["name"] for rest in others), tuple(first))
        for first, *others in groups.values()
    ]


def _identity(rendition: dict[str, Any], etags: Mapping[str, str] | None) -> tuple:
    etag = etags.get(rendition["key"], rendition["key"]) if etags is not None else None
    fields = ("width", "height", "format", "bytes")
    return (*(rendition.get(name) for name in fields), etag)


def preview_rendition(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The rendition that stands in for an original a browser cannot show: the largest, the
    first in profile order among equals."""
    if entry.get("status") != records.STATUS_OK or entry.get("input_format") in BROWSER_FORMATS:
        return None
    renditions = entry.get("renditions") or []
    return max(renditions, key=_area, default=None)


def _area(rendition: dict[str, Any]) -> int:
    return rendition.get("width", 0) * rendition.get("height", 0)


def bytes_saved(entries: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """(originals' bytes, bytes saved) over the `ok` items: each original against its
    largest rendition (the first among equals), the one a page would serve in its place."""
    originals = saved = 0
    for entry in entries:
        renditions = entry.get("renditions") or []
        if entry.get("status") != records.STATUS_OK or not renditions:
            continue
        largest = max(renditions, key=_area).get("bytes")
        if largest is None:  # a record that keeps its bytes per format: not counted
            continue
        original = entry.get("original_size_bytes", 0)
        originals += original
        saved += original - largest
    return originals, saved


def statuses(entries: Iterable[dict[str, Any]]) -> Counter[str]:
    counts = Counter(entry.get("status", "?") for entry in entries)
    return Counter({s: counts[s] for s in _ordered(counts)})


def _ordered(names: Iterable[str]) -> list[str]:
    present = set(names)
    return [s for s in STATUS_ORDER if s in present] + sorted(present - set(STATUS_ORDER))


# -- the page -----------------------------------------------------------------------------


def page(
    entries: list[dict[str, Any]],
    src_for: SrcFor,
    original_for: SrcFor,
    source: str,
    etags: Mapping[str, str] | None = None,
    pictures: bool = False,
) -> str:
    """The whole page. `src_for(key)` is a rendition's URL, `original_for(key)` an
    original's; `etags` (output key -> ETag) marks missing and identical renditions;
    `pictures` shows each rendition as a `<picture>` of its formats."""
    cards = [card(entry, src_for, original_for, etags, pictures) for entry in entries]
    # Only the first page is live; the rest wait in an inert <template>, where no image
    # loads and nothing is laid out, whatever markup the cards hold. The script moves each
    # page's cards in; without it the first page still shows.
    more = len(cards) - PAGE_SIZE
    note = f"<noscript><p>{more:,} more: filters and pages need JavaScript.</p></noscript>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>imgpipe gallery</title>"
        f"<style>{STYLE}</style></head><body data-page-size='{PAGE_SIZE}'>"
        f"<h1>imgpipe gallery</h1><p id='summary'>{summary(entries)} from {_text(source)}</p>"
        f"{_controls(entries)}<main id='cards'>{''.join(cards[:PAGE_SIZE])}</main>"
        f"<template id='more'>{''.join(cards[PAGE_SIZE:])}</template>"
        f"{note if more > 0 else ''}<script>{SCRIPT}</script></body></html>"
    )


def summary(entries: list[dict[str, Any]]) -> str:
    counts = statuses(entries)
    parts = ", ".join(
        f"<span data-status-count='{_attr(s)}'>{n:,} {_text(s)}</span>" for s, n in counts.items()
    )
    originals, saved = bytes_saved(entries)
    share = f" ({saved / originals:.0%})" if originals else ""
    return (
        f"{len(entries):,} images: {parts}. "
        f"<span id='saved' title='each ok original against its largest rendition'>"
        f"{_size(saved)} saved of {_size(originals)} of originals{share}</span>"
    )


def _controls(entries: list[dict[str, Any]]) -> str:
    counts = statuses(entries)
    boxes = "".join(
        f"<label><input type='checkbox' name='status' value='{_attr(s)}' checked> "
        f"{_text(s)} ({n:,})</label>"
        for s, n in counts.items()
    )
    profiles = sorted({entry.get("profile", "") for entry in entries} - {""})
    options = "".join(f"<option value='{_attr(p)}'>{_text(p)}</option>" for p in profiles)
    # Hidden until the script runs: without it every card shows, and nothing to page.
    return (
        f"<form id='filters' hidden>{boxes} <label>profile <select name='profile'>"
        f"<option value=''>all</option>{options}</select></label></form>"
        "<nav id='pager' hidden><button type='button' id='previous'>previous</button> "
        "<span id='position'></span> <button type='button' id='next'>next</button></nav>"
    )


# -- one card -----------------------------------------------------------------------------


def card(
    entry: dict[str, Any],
    src_for: SrcFor,
    original_for: SrcFor,
    etags: Mapping[str, str] | None = None,
    pictures: bool = False,
) -> str:
    key, status = entry["image_name"], entry.get("status", "?")
    figures = ""
    if status == records.STATUS_OK:
        figures = _figures(entry, _Images(src_for, original_for, etags, pictures))
    details = "".join(
        f"<dt>{_text(name)}</dt><dd data-field='{name}'>{_text(str(value))}</dd>"
        for name, value in _facts(entry).items()
    )
    return (
        f"<section class='card {_attr(status)}' data-key='{_attr(key)}' "
        f"data-status='{_attr(status)}' data-profile='{_attr(entry.get('profile', ''))}'>"
        f"<h2>{_text(key)}</h2><dl>{details}</dl><div class='row'>{figures}</div></section>"
    )


def _facts(entry: dict[str, Any]) -> dict[str, Any]:
    """What the card lists; a failed item's 0x0 size says nothing, its error does."""
    facts: dict[str, Any] = {"status": entry.get("status", "?")}
    width, height = entry.get("original_width", 0), entry.get("original_height", 0)
    if width and height:
        facts["original"] = f"{width}x{height}"
    for name, field in (("bytes", "original_size_bytes"), ("profile", "profile")):
        facts[name] = entry.get(field, "")
    facts["format"] = entry.get("input_format", "")
    facts["error"] = entry.get("error", "")
    return {name: value for name, value in facts.items() if value not in ("", None)}


@dataclass(frozen=True)
class _Images:
    """Where a card's images come from, and whether renditions are `<picture>`s."""

    src_for: SrcFor
    original_for: SrcFor
    etags: Mapping[str, str] | None
    pictures: bool

    def present(self, rendition: dict[str, Any]) -> bool:
        return self.etags is None or rendition["key"] in self.etags


def _figures(entry: dict[str, Any], images: _Images) -> str:
    renditions = entry.get("renditions") or []
    preview = preview_rendition(entry)
    if preview is not None:
        fmt = str(entry.get("input_format", "?")).upper()
        caption = f"preview: the {preview['name']} rendition (browsers cannot show {fmt})"
        same = [r for r in renditions if r["name"] == preview["name"]] if images.pictures else []
        shown = Shown(preview, formats=tuple(same))
        first = _figure(_image(entry, shown, images), caption, "preview", shown)
    else:
        size = f"{entry.get('original_width', 0)}x{entry.get('original_height', 0)}"
        caption = f"original · {size} · {entry.get('original_size_bytes', 0):,} B"
        first = _figure(_original(entry, images.original_for), caption, "original")
    distinct = distinct_pictures if images.pictures else distinct_renditions
    shown_all = distinct(renditions, images.etags)
    return first + "".join(_rendition_figure(entry, one, images) for one in shown_all)


def _rendition_figure(entry: dict[str, Any], shown: Shown, images: _Images) -> str:
    rendition = shown.rendition
    objects = shown.formats or (rendition,)
    label = f"{rendition['name']} ({', '.join(str(r.get('format', '?')) for r in objects)})"
    size = f"{rendition.get('width', 0)}x{rendition.get('height', 0)}"
    nbytes = " / ".join(f"{r.get('bytes', 0):,}" for r in objects)
    caption = f"{label} · {size} · {nbytes} B"
    kind = "rendition"
    if shown.same_as:
        caption += f" · identical: {', '.join(shown.same_as)}"
        kind = "rendition identical"
    present = tuple(r for r in objects if images.present(r))
    if not present:
        return _figure("<div class='missing'>missing from the output bucket</div>", caption, kind)
    if len(present) < len(objects):  # a picture of the formats still there
        gone = [str(r.get("format", "?")) for r in objects if r not in present]
        caption += f" · missing: {', '.join(gone)}"
        shown = Shown(present[0], shown.same_as, present)
    return _figure(_image(entry, shown, images), caption, kind, shown)


def _image(entry: dict[str, Any], shown: Shown, images: _Images) -> str:
    """One rendition's image element: the one place that picks its URL and markup: the
    `<picture>` of its formats (markup.py's, as `imgpipe html` prints), or one `<img>`."""
    rendition = shown.rendition
    if images.pictures and shown.formats:
        return markup.rendition_picture(
            entry, list(shown.formats), images.src_for, alt=rendition["name"]
        )
    return (
        f"<img src='{_attr(images.src_for(rendition['key']))}' alt='{_attr(rendition['name'])}' "
        f"width='{rendition.get('width', 0)}' height='{rendition.get('height', 0)}' "
        f"loading='lazy' decoding='async'>"
    )


def _original(entry: dict[str, Any], original_for: SrcFor) -> str:
    return (
        f"<img src='{_attr(original_for(entry['image_name']))}' alt='original' "
        f"width='{entry.get('original_width', 0)}' height='{entry.get('original_height', 0)}' "
        f"loading='lazy' decoding='async'>"
    )


def _figure(content: str, caption: str, kind: str, shown: Shown | None = None) -> str:
    data = ""
    if shown is not None:
        rendition = shown.rendition
        data = (
            f" data-rendition='{_attr(rendition['name'])}'"
            f" data-format='{_attr(_formats(shown))}'"
            f" data-width='{rendition.get('width', 0)}' data-height='{rendition.get('height', 0)}'"
            f" data-identical='{_attr(' '.join(shown.same_as))}'"
        )
    return (
        f"<figure class='{kind}'{data}>{content}<figcaption>{_text(caption)}</figcaption></figure>"
    )


def _formats(shown: Shown) -> str:
    return " ".join(str(r.get("format", "")) for r in shown.formats or (shown.rendition,))


def _text(value: str) -> str:
    return html.escape(value, quote=False)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#f6f6f4;color:#222}
[hidden]{display:none!important}
#filters,#pager{margin:.5rem 0;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
.card{background:#fff;border-radius:8px;padding:1rem;margin:0 0 1.5rem;box-shadow:0 1px 3px #0002}
.row{display:flex;gap:1rem;align-items:flex-end;flex-wrap:wrap}
figure{margin:0}figcaption{font-size:.8rem;color:#555;max-width:320px}
img{max-width:320px;max-height:240px;width:auto;height:auto;border:1px solid #ddd;
background:#eee}
.preview figcaption,.identical figcaption{color:#8a5a00}
.missing{width:160px;height:80px;display:grid;place-items:center;background:#fdecea;
font-size:.8rem}
.failed{border-left:6px solid #c0392b}.ok{border-left:6px solid #27ae60}
.deleted{border-left:6px solid #999}.dlq{border-left:6px solid #d68910}
.pending{border-left:6px solid #2e86c1}
dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;font-size:.85rem}
dd[data-field=error]{color:#c0392b;font-weight:600}
"""

# Filters and the page live in the URL's fragment (#status=failed&profile=web&page=2), so a
# view can be linked and reloaded. Cards off the page are detached: their images never load.
SCRIPT = """
(() => {
  const main = document.getElementById('cards');
  const cards = [...main.children, ...document.getElementById('more').content.children];
  const size = Number(document.body.dataset.pageSize);
  const form = document.getElementById('filters');
  const pager = document.getElementById('pager');
  const boxes = [...form.querySelectorAll('input[name=status]')];
  let current = 1;
  function wanted() {
    const params = new URLSearchParams(location.hash.slice(1));
    return {statuses: params.getAll('status'), profile: params.get('profile') || '',
            page: Math.max(1, parseInt(params.get('page') || '1', 10) || 1)};
  }
  function go(page) {
    const params = new URLSearchParams();
    const checked = boxes.filter(box => box.checked).map(box => box.value);
    if (checked.length < boxes.length) checked.forEach(s => params.append('status', s));
    if (form.profile.value) params.set('profile', form.profile.value);
    if (page > 1) params.set('page', String(page));
    location.hash = params.toString();
  }
  function show() {
    const view = wanted();
    boxes.forEach(box => {
      box.checked = !view.statuses.length || view.statuses.includes(box.value);
    });
    form.profile.value = view.profile;
    const matching = cards.filter(card =>
      (!view.statuses.length || view.statuses.includes(card.dataset.status)) &&
      (!view.profile || card.dataset.profile === view.profile));
    const pages = Math.max(1, Math.ceil(matching.length / size));
    current = Math.min(view.page, pages);
    const first = (current - 1) * size;
    const shown = matching.slice(first, first + size);
    main.replaceChildren(...shown);
    document.getElementById('position').textContent = matching.length
      ? `page ${current} of ${pages}: ${first + 1}-${first + shown.length} ` +
        `of ${matching.length} matching`
      : 'no image matches';
    document.getElementById('previous').disabled = current <= 1;
    document.getElementById('next').disabled = current >= pages;
  }
  form.addEventListener('change', () => go(1));
  document.getElementById('previous').addEventListener('click', () => go(current - 1));
  document.getElementById('next').addEventListener('click', () => go(current + 1));
  window.addEventListener('hashchange', show);
  form.hidden = pager.hidden = false;
  show();
})();
"""
