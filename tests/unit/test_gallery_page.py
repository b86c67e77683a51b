"""The gallery's markup from metadata items alone: summary, previews, identical renditions,
failed and missing ones, escaping, and the first page live with the rest held back."""

from __future__ import annotations

import re

from pipeline.cli import gallery_page, markup
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


# -- with a CDN: each rendition a <picture> of its formats ------------------------------


def two_formats(name: str, width: int, height: int, webp: int, jpeg: int) -> list[dict]:
    """A multi-format rendition as the handler records it: one entry per format, the
    fallback (JPEG) last."""
    return [rendition(name, width, height, webp), rendition(name, width, height, jpeg, "jpeg")]


def test_with_pictures_each_rendition_is_the_markup_imgpipe_html_prints():
    # GIVEN the web profile's shape: two widths in WebP and JPEG, and a WebP-only square
    renditions = [
        *two_formats("w800", 400, 300, 9_000, 14_000),
        *two_formats("w320", 320, 240, 5_000, 8_000),
        rendition("square", 200, 200, 3_000),
    ]
    entry = ok(renditions=renditions, dominant_color="#102030")
    # WHEN the card is made for a page whose renditions are on a CDN
    markup_text = card(entry, url, url, pictures=True)
    # THEN each rendition is one figure holding markup.py's <picture>, not one per format
    for name in ("w800", "w320"):
        records = [r for r in renditions if r["name"] == name]
        assert markup.rendition_picture(entry, records, url, alt=name) in markup_text
    figures = re.findall(
        r"<figure class='rendition' data-rendition='([^']*)' data-format='([^']*)'", markup_text
    )
    assert figures == [("w800", "webp jpeg"), ("w320", "webp jpeg"), ("square", "webp")]
    assert markup_text.count("<picture>") == 3 and markup_text.count("<source") == 2
    # AND the captions give each format's bytes; the original stays a plain <img>
    assert "w800 (webp, jpeg) · 400x300 · 9,000 / 14,000 B" in markup_text
    assert "<img src='https://cdn.example/a.jpg' alt='original'" in markup_text


def test_with_pictures_alike_renditions_fold_only_when_every_format_is_alike():
    # GIVEN w1600 and w800 alike in both formats (never upscaled), and w320 whose JPEG
    # happens to match w800's in size and bytes but whose WebP differs
    renditions = [
        *two_formats("w1600", 400, 300, 9_000, 14_000),
        *two_formats("w800", 400, 300, 9_000, 14_000),
        *two_formats("w320", 400, 300, 7_000, 14_000),
    ]
    shown = gallery_page.distinct_pictures(renditions)
    assert [(s.rendition["name"], s.same_as, len(s.formats)) for s in shown] == [
        ("w1600", ("w800",), 2),
        ("w320", (), 2),
    ]
    markup_text = card(ok(renditions=renditions), url, url, pictures=True)
    assert markup_text.count("<picture>") == 2 and "identical: w800" in markup_text


def test_with_pictures_a_missing_format_is_left_out_and_named():
    renditions = [*two_formats("w800", 400, 300, 9_000, 14_000), *two_formats("w320", 1, 1, 1, 1)]
    # GIVEN the output bucket holds w800's JPEG only, and nothing of w320
    present = {renditions[1]["key"]: '"e"'}
    markup_text = card(ok(renditions=renditions), url, url, present, pictures=True)
    # THEN w800 is a picture of its JPEG alone, marked; w320 is marked, not linked
    assert "w800.webp" not in markup_text and "<source" not in markup_text
    assert 'src="https://cdn.example/processed/a.jpg/w800.jpeg"' in markup_text
    assert "missing: webp" in markup_text
    assert "w320" in markup_text and "processed/a.jpg/w320" not in markup_text
    assert "missing from the output bucket" in markup_text


def test_with_pictures_an_original_browsers_cannot_show_is_previewed_in_every_format():
    renditions = [
        *two_formats("w1600", 1600, 1200, 90_000, 150_000),
        *two_formats("w320", 320, 240, 6_000, 9_000),
    ]
    markup_text = card(ok("scan.tif", "tiff", renditions), url, url, pictures=True)
    preview = markup_text.split("<figure class='preview'", 1)[1].split("</figure>", 1)[0]
    assert "data-rendition='w1600' data-format='webp jpeg'" in preview
    assert 'type="image/webp"' in preview and "w1600.jpeg" in preview
    assert "https://cdn.example/scan.tif" not in markup_text


def test_with_pictures_off_page_cards_still_wait_in_the_template():
    entries = [
        ok(f"{n:04d}.jpg", renditions=two_formats("w800", 400, 300, 9, 14)) for n in range(60)
    ]
    text = page(entries, url, url, "bucket in", pictures=True)
    live, held = text.split("<template id='more'>")
    assert live.count("<picture>") == PAGE_SIZE and held.count("<picture>") == 60 - PAGE_SIZE
