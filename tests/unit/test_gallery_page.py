"""The gallery's markup from metadata items alone: summary, previews, identical renditions,
failed and missing ones, escaping, and the first page live with the rest held back."""

from __future__ import annotations

import re

from pipeline.cli import gallery_page
from pipeline.cli.gallery_page import (
    PAGE_SIZE,
    bytes_saved,
    card,
    distinct_renditions,
    page,
    preview_rendition,
)


def rendition(name: str, width: int, height: int, nbytes: int, fmt: str = "webp") -> dict:
    return {
        "name": name,
        "key": f"processed/a.jpg/{name}.{fmt}",
        "width": width,
        "height": height,
        "bytes": nbytes,
        "format": fmt,
    }


def ok(key: str = "a.jpg", fmt: str = "jpeg", renditions: list | None = None, **extra) -> dict:
    return {
        "image_name": key,
        "status": "ok",
        "profile": "web",
        "input_format": fmt,
        "original_width": 400,
        "original_height": 300,
        "original_size_bytes": 50_000,
        "renditions": renditions or [rendition("w800", 400, 300, 9_000)],
        **extra,
    }


def url(key: str) -> str:
    return f"https://cdn.example/{key}"


def test_a_small_originals_alike_renditions_fold_into_the_first_in_profile_order():
    # GIVEN w1600 and w800 that came out alike (never upscaled), and a w320
    renditions = [
        rendition("w1600", 400, 300, 9_000),
        rendition("w800", 400, 300, 9_000),
        rendition("w320", 320, 240, 6_000),
    ]
    shown = distinct_renditions(renditions)
    assert [(s.rendition["name"], s.same_as) for s in shown] == [
        ("w1600", ("w800",)),
        ("w320", ()),
    ]
    # AND the card shows w800 once, marked, not as an image of its own
    markup = card(ok(renditions=renditions), url, url)
    assert markup.count("<img") == 3  # the original, w1600, w320
    assert "data-identical='w800'" in markup and "identical: w800" in markup


def test_equal_sizes_with_different_etags_are_not_identical():
    # GIVEN two renditions of equal size and byte count whose contents differ (ETags)
    renditions = [rendition("a", 400, 300, 9_000), rendition("b", 400, 300, 9_000)]
    differ = {renditions[0]["key"]: '"1"', renditions[1]["key"]: '"2"'}
    same = {renditions[0]["key"]: '"1"', renditions[1]["key"]: '"1"'}
    assert len(distinct_renditions(renditions, differ)) == 2
    assert len(distinct_renditions(renditions, same)) == 1


def test_records_with_a_formats_list_and_no_format_or_bytes_still_render():
    # GIVEN a multi-format rendition record: a canonical key, its size, and its formats
    record = {
        "name": "w800",
        "key": "processed/a.jpg/w800",
        "width": 800,
        "height": 600,
        "formats": [{"format": "avif", "key": "processed/a.jpg/w800.avif"}],
    }
    markup = card(ok(renditions=[record]), url, url)
    assert "src='https://cdn.example/processed/a.jpg/w800'" in markup


def test_originals_browsers_cannot_show_are_previewed_by_their_largest_rendition():
    renditions = [
        rendition("w1600", 1600, 1200, 90_000),
        rendition("w1600-jpeg", 1600, 1200, 150_000, "jpeg"),
        rendition("w320", 320, 240, 6_000),
    ]
    for fmt in ("tiff", "heic", "bmp"):
        assert preview_rendition(ok(fmt=fmt, renditions=renditions))["name"] == "w1600"
    for fmt in ("jpeg", "png", "gif", "webp", "avif"):
        assert preview_rendition(ok(fmt=fmt, renditions=renditions)) is None
    # AND the card shows the preview, labelled, and no link to the original itself
    markup = card(ok("scan.tif", "tiff", renditions), url, url)
    assert "class='preview'" in markup and "browsers cannot show TIFF" in markup
    assert "https://cdn.example/scan.tif" not in markup


def test_a_failed_card_gives_its_reason_escaped_and_no_zero_size():
    entry = {
        "image_name": "x<y>.jpg",
        "status": "failed",
        "profile": "web",
        "original_width": 0,
        "original_height": 0,
        "original_size_bytes": 12,
        "error": "not an image: <script>alert('x')</script> & more",
    }
    markup = card(entry, url, url)
    assert "<dd data-field='error'>not an image: &lt;script&gt;alert" in markup
    assert "0x0" not in markup and "<img" not in markup and "<script>" not in markup
    assert "data-key='x&lt;y&gt;.jpg'" in markup


def test_a_key_with_quotes_cannot_leave_its_attribute():
    markup = card(ok('it\'s "here" <b>.jpg'), url, url)
    assert "data-key='it&#x27;s &quot;here&quot; &lt;b&gt;.jpg'" in markup
    assert "src='https://cdn.example/it&#x27;s &quot;here&quot; &lt;b&gt;.jpg'" in markup


def test_a_rendition_missing_from_the_output_bucket_is_marked_not_linked():
    entry = ok(renditions=[rendition("w800", 400, 300, 9_000), rendition("w320", 320, 240, 1)])
    present = {entry["renditions"][0]["key"]: '"e"'}
    markup = card(entry, url, url, present)
    assert "missing from the output bucket" in markup
    assert "w320.webp" not in markup  # no URL asked for
    assert markup.count("<img") == 2  # the original and w800


def test_bytes_saved_counts_ok_items_against_their_largest_rendition():
    entries = [
        ok(renditions=[rendition("w320", 320, 240, 5_000), rendition("w800", 400, 300, 9_000)]),
        ok("b.jpg", original_size_bytes=1_000),  # a rendition bigger than its original
        {"image_name": "c.jpg", "status": "failed", "original_size_bytes": 70_000},
        ok("d.jpg", renditions=[{"name": "w800", "key": "k", "width": 8, "height": 6}]),
    ]
    assert bytes_saved(entries) == (51_000, 50_000 - 9_000 + 1_000 - 9_000)


def test_the_summary_counts_each_status_and_the_bytes_saved():
    entries = [ok(), ok("b.jpg"), {"image_name": "c.jpg", "status": "failed", "error": "bad"}]
    entries.append({"image_name": "d.jpg", "status": "deleted"})
    text = gallery_page.summary(entries)
    counts = re.findall(r"data-status-count='([^']*)'>(\d+) ", text)
    assert counts == [("ok", "2"), ("failed", "1"), ("deleted", "1")]
    assert "82.0 kB saved of 100.0 kB of originals (82%)" in text


def test_only_the_first_page_is_live_the_rest_wait_in_a_template():
    entries = [ok(f"{n:04d}.jpg", profile="web" if n % 2 else "thumbnail") for n in range(100)]
    text = page(entries, url, url, "bucket in")
    live, held = text.split("<template id='more'>")
    assert live.count("<section") == PAGE_SIZE and held.count("<section") == 100 - PAGE_SIZE
    assert f"{100 - PAGE_SIZE:,} more: filters and pages need JavaScript" in text
    assert "<option value='thumbnail'>thumbnail</option><option value='web'>web</option>" in text


def test_a_dead_lettered_card_lists_only_what_is_known():
    entry = {"image_name": "lost.jpg", "status": "dlq", "error": "Runtime: killed"}
    markup = card(entry, url, url)
    fields = re.findall(r"data-field='([^']*)'", markup)
    assert fields == ["status", "error"]
