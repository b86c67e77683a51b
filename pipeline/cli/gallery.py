"""A static contact sheet: each original beside its renditions, with their metadata."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lambda_pkg import records
from pipeline.cli.ops import aws, items
from pipeline.cli.targets import Target

# Originals a browser can show; others (TIFF, HEIC) are represented by their renditions.
BROWSER_FORMATS = {"jpeg", "png", "gif", "webp", "avif", "bmp"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#f6f6f4;color:#222}
.card{background:#fff;border-radius:8px;padding:1rem;margin:0 0 1.5rem;box-shadow:0 1px 3px #0002}
.row{display:flex;gap:1rem;align-items:flex-end;flex-wrap:wrap}
figure{margin:0}figcaption{font-size:.8rem;color:#555}
img{max-width:320px;max-height:240px;border:1px solid #ddd;background:#eee}
.failed{border-left:6px solid #c0392b}.ok{border-left:6px solid #27ae60}
dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;font-size:.85rem}
"""


def write(target: Target, out_dir: Path, presign: bool = False) -> Path:
    """Write `out_dir/index.html`; images are local copies unless `presign` (URLs, 1 h)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    s3 = aws(target, "s3")

    def link(bucket: str, key: str, folder: str) -> str:
        if presign:
            return s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600
            )
        local = out_dir / folder / key
        local.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(local))
        return quote(f"{folder}/{key}")

    cards = []
    for entry in items(target):
        cards.append(_card(entry, target, link))
    page = out_dir / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>imgpipe gallery</title>"
        f"<style>{_STYLE}</style></head><body><h1>imgpipe gallery</h1>"
        f"<p>{len(cards)} images from bucket {html.escape(target.names.input_bucket)}</p>"
        + "".join(cards)
        + "</body></html>",
        encoding="utf-8",
    )
    return page


def _card(entry: dict[str, Any], target: Target, link) -> str:
    key = entry["image_name"]
    status = entry.get("status", "?")
    facts = {
        "status": status,
        "original": f"{entry.get('original_width', 0)}x{entry.get('original_height', 0)}",
        "bytes": entry.get("original_size_bytes", 0),
        "profile": entry.get("profile", ""),
        "format": entry.get("input_format", ""),
    }
    if entry.get("error"):
        facts["error"] = entry["error"]
    figures = []
    if status == records.STATUS_OK and entry.get("input_format") in BROWSER_FORMATS:
        src = link(target.names.input_bucket, key, "originals")
        figures.append(_figure(src, "original", facts["original"], entry["original_size_bytes"]))
    for rendition in entry.get("renditions", []) if status == records.STATUS_OK else []:
        src = link(target.names.output_bucket, rendition["key"], "renditions")
        size = f"{rendition['width']}x{rendition['height']}"
        label = f"{rendition['name']} ({rendition['format']})"
        figures.append(_figure(src, label, size, rendition["bytes"], rendition))
    details = "".join(
        f"<dt>{html.escape(name)}</dt><dd data-field='{name}'>{html.escape(str(value))}</dd>"
        for name, value in facts.items()
    )
    return (
        f"<section class='card {html.escape(status)}' data-key='{html.escape(key, quote=True)}'>"
        f"<h2>{html.escape(key)}</h2><dl>{details}</dl><div class='row'>{''.join(figures)}</div>"
        "</section>"
    )


def _figure(src: str, label: str, size: str, nbytes: int, rendition: dict | None = None) -> str:
    data = ""
    if rendition is not None:
        data = (
            f" data-rendition='{html.escape(rendition['name'])}'"
            f" data-width='{rendition['width']}' data-height='{rendition['height']}'"
        )
    return (
        f"<figure><img src='{html.escape(src, quote=True)}' alt='{html.escape(label)}'"
        f" loading='eager'{data}><figcaption>{html.escape(label)} · {size} · {nbytes:,} B"
        "</figcaption></figure>"
    )
