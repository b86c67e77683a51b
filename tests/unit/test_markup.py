"""The `<picture>` element (pipeline/cli/markup.py), parsed back with html.parser."""

from __future__ import annotations

import pytest

from pipeline.cli.markup import MarkupError, object_url, picture, rendition_picture
from tests.support.tags import start_tags

CDN = "https://d111111abcdef8.cloudfront.net"


def entry(key: str = "input/beach day.jpg") -> dict:
    """An ok item as the handler stores it for the web profile: three widths in WebP and
    JPEG (one entry per format), and a square crop in WebP."""
    renditions = []
    for name, width, height in (("w1600", 1600, 1067), ("w800", 800, 533), ("w320", 320, 213)):
        for fmt, ext in (("webp", "webp"), ("jpeg", "jpg")):
            renditions.append(
                {
                    "name": name,
                    "key": f"processed/{key}/{name}.{ext}",
                    "width": width,
                    "height": height,
                    "format": fmt,
                    "canonical": f"processed/{key}/{name}",
                }
            )
    square = {"name": "square", "width": 200, "height": 200, "format": "webp"}
    renditions.append({**square, "key": f"processed/{key}/square.webp"})
    return {
        "image_name": key,
        "status": "ok",
        "original_width": 2400,
        "original_height": 1600,
        "dominant_color": "#7a6b5c",
        "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        "renditions": renditions,
    }


def url(name: str) -> str:
    return f"{CDN}/processed/input/beach%20day.jpg/{name}"


def test_a_source_per_format_and_an_img_with_the_fallback():
    # WHEN the web item becomes markup
    found = start_tags(picture(entry(), CDN + "/", alt='a "beach" & sea'))
    # THEN: <picture>, one <source> for WebP, the <img> in JPEG (the fallback)
    assert [tag for tag, _ in found] == ["picture", "source", "img"]
    source, img = found[1][1], found[2][1]
    assert source["type"] == "image/webp"
    # AND each srcset lists every width of the whole picture, narrowest first; no square
    assert source["srcset"] == (
        f"{url('w320.webp')} 320w, {url('w800.webp')} 800w, {url('w1600.webp')} 1600w"
    )
    assert img["srcset"] == (
        f"{url('w320.jpg')} 320w, {url('w800.jpg')} 800w, {url('w1600.jpg')} 1600w"
    )
    # AND the img carries the widest size, a sizes rule, the hints and the placeholder
    assert img["src"] == url("w800.jpg")
    assert (img["width"], img["height"]) == ("1600", "1067")
    assert img["sizes"] == source["sizes"] == "(max-width: 1600px) 100vw, 1600px"
    assert (img["loading"], img["decoding"]) == ("lazy", "async")
    assert img["style"] == "background-color:#7a6b5c"
    assert img["data-blurhash"] == "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
    assert img["alt"] == 'a "beach" & sea'  # escaped in the text, intact when parsed


def test_text_is_escaped_and_a_colour_that_is_not_one_stays_out_of_the_style():
    item = entry()
    item["dominant_color"] = "red;background-image:url(x)"
    text = picture(item, CDN, alt="<script>", sizes="50vw")
    assert "<script>" not in text and "&lt;script&gt;" in text
    (_, _, (_, img)) = start_tags(text)
    assert "style" not in img and img["sizes"] == "50vw"


def test_a_single_format_profile_is_an_img_in_a_picture():
    # GIVEN the thumbnail profile's one JPEG (it keeps no canonical key)
    item = {
        "image_name": "input/photo.jpg",
        "status": "ok",
        "original_width": 1920,
        "original_height": 1080,
        "renditions": [
            {
                "name": "thumb",
                "key": "processed/thumb_photo.jpg",
                "width": 200,
                "height": 113,
                "format": "jpeg",
            }
        ],
    }
    found = start_tags(picture(item, CDN))
    assert [tag for tag, _ in found] == ["picture", "img"]
    img = found[1][1]
    assert img["src"] == f"{CDN}/processed/thumb_photo.jpg"
    assert img["srcset"] == f"{CDN}/processed/thumb_photo.jpg 200w"
    assert "style" not in img  # an item without a dominant colour


def test_widths_an_original_too_small_for_gives_once():
    # GIVEN a 640x427 original: w1600 and w800 both come out 640 wide (never upscaled)
    item = entry()
    item.update(original_width=640, original_height=427)
    for rendition in item["renditions"]:
        if rendition["name"] in ("w1600", "w800"):
            rendition.update(width=640, height=427)
    (_, (_, source), (_, img)) = start_tags(picture(item, CDN))
    assert source["srcset"] == f"{url('w320.webp')} 320w, {url('w1600.webp')} 640w"
    assert (img["width"], img["height"]) == ("640", "427")


def test_only_crops_still_make_a_picture():
    item = entry()
    item["renditions"] = [r for r in item["renditions"] if r["name"] == "square"]
    (_, (_, img)) = start_tags(picture(item, CDN))
    assert img["src"] == url("square.webp") and img["width"] == "200"


@pytest.mark.parametrize("status", ["failed", "deleted"])
def test_an_item_without_renditions_is_an_error_naming_it(status):
    item = {**entry(), "status": status, "renditions": []}
    with pytest.raises(MarkupError, match=rf"'input/beach day.jpg' has no renditions.*{status}"):
        picture(item, CDN)


def test_one_rendition_is_the_same_markup_with_urls_from_a_callable():
    # GIVEN the w320 records of the web item (WebP, then the JPEG fallback)
    item = entry()
    w320 = [r for r in item["renditions"] if r["name"] == "w320"]
    # WHEN the gallery asks for that rendition alone, its URLs from a callable
    found = start_tags(rendition_picture(item, w320, lambda key: f"copies/{key}", alt="w320"))
    # THEN it is the <picture> `imgpipe html` prints, reduced to the one width
    assert [tag for tag, _ in found] == ["picture", "source", "img"]
    source, img = found[1][1], found[2][1]
    assert source["type"] == "image/webp"
    assert source["srcset"] == "copies/processed/input/beach day.jpg/w320.webp 320w"
    assert img["src"] == "copies/processed/input/beach day.jpg/w320.jpg"
    assert (img["width"], img["height"], img["alt"]) == ("320", "213", "w320")
    assert img["sizes"] == "(max-width: 320px) 100vw, 320px"
    assert img["style"] == "background-color:#7a6b5c"
    # AND with a CDN as the base, it is exactly the markup `picture` makes for that width
    only = {**item, "renditions": w320, "original_width": 320, "original_height": 213}
    assert rendition_picture(item, w320, lambda key: object_url(CDN, key)) == picture(only, CDN)


def test_one_rendition_means_records_of_one_name():
    item = entry()
    with pytest.raises(MarkupError, match="one rendition's records"):
        rendition_picture(item, item["renditions"][:3], lambda key: key)
