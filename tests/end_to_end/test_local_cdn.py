"""The local CDN end to end: an upload through the local stack, then its renditions over HTTP
in the format each browser's Accept header takes, through the same CloudFront Function."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
from PIL import Image

from pipeline.aws import client
from pipeline.cli import ops
from pipeline.cli.targets import Target
from pipeline.delivery import edge
from pipeline.local.cdn import LocalCdn
from pipeline.local.emulator import Emulator
from tests.support import delivery, images
from tests.support.delivery import CHROME, CURL, FIREFOX, SAFARI
from tests.support.local_stack import new_stack, wait_final

PHOTO = "input/beach day.jpg"
CANONICAL = "/processed/input/beach%20day.jpg/w320"


def get(url: str, accept: str | None = None, method: str = "GET", **headers: str):
    """(status, headers, body) of one request; an HTTP error is an answer too."""
    if accept is not None:
        headers["Accept"] = accept
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def served():
    config = delivery.config(
        delivery.rendition("w320", ["avif", "webp", "jpeg"]),
        delivery.rendition("thumb", "jpeg", width=100),
    )
    with new_stack(profile=config) as stack:
        target = stack.target()
        stack_upload(target)
        yield stack, target, config.profiles[0]


def stack_upload(target: Target) -> None:
    ops.upload_bytes(target, {PHOTO: images.jpeg(1200, 800)})
    (item,) = wait_final(target, [PHOTO]).values()
    assert item["status"] == "ok", item


@pytest.mark.parametrize(
    ("accept", "media_type", "pillow_format"),
    [
        (CHROME, "image/avif", "AVIF"),
        (FIREFOX, "image/avif", "AVIF"),
        (SAFARI, "image/avif", "AVIF"),
        ("image/webp,*/*", "image/webp", "WEBP"),
        (CURL, "image/jpeg", "JPEG"),
        (None, "image/jpeg", "JPEG"),
    ],
)
def test_a_canonical_url_is_served_in_the_format_the_accept_header_takes(
    served, accept: str | None, media_type: str, pillow_format: str
) -> None:
    _, target, profile = served
    status, headers, body = get(target.cdn + CANONICAL, accept)
    assert status == 200
    assert headers["Content-Type"] == media_type
    assert headers["Vary"] == "Accept"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == profile.cache_control_of(profile.renditions[0])
    assert int(headers["Content-Length"]) == len(body)
    with Image.open(io.BytesIO(body)) as picture:
        assert (picture.format, picture.width) == (pillow_format, 320)


def test_a_uri_naming_a_format_passes_through(served) -> None:
    _, target, _ = served
    status, headers, _ = get(target.cdn + CANONICAL + ".webp", CURL)  # curl, yet WebP
    assert (status, headers["Content-Type"]) == (200, "image/webp")
    assert headers["Vary"] == "Accept"  # as the response-headers policy adds it everywhere
    status, headers, _ = get(target.cdn + CANONICAL + ".jpg", CHROME)  # Chrome, yet JPEG
    assert (status, headers["Content-Type"]) == (200, "image/jpeg")
    # a single-format rendition is served as it is
    status, headers, _ = get(target.cdn + "/processed/input/beach%20day.jpg/thumb.jpg", CHROME)
    assert (status, headers["Content-Type"]) == (200, "image/jpeg")


def test_head_missing_keys_originals_and_other_methods(served) -> None:
    _, target, _ = served
    status, headers, body = get(target.cdn + CANONICAL, CHROME, method="HEAD")
    assert (status, headers["Content-Type"], body) == (200, "image/avif", b"")
    assert int(headers["Content-Length"]) > 0
    assert get(target.cdn + "/processed/input/nothing.jpg/w320", CHROME)[0] == 404
    # originals are not the CDN's to serve (the bucket policy reads processed/ only)
    assert get(target.cdn + "/" + PHOTO.replace(" ", "%20"))[0] == 403
    status, headers, _ = get(target.cdn + CANONICAL, method="POST")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")
    status, headers, _ = get(target.cdn + CANONICAL, CHROME, Origin="https://app.example.com")
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_the_cdn_url_is_in_the_local_stacks_state_and_dies_with_it(served) -> None:
    stack, target, _ = served
    assert target.cdn == stack.cdn.url and target.cdn.startswith("http://127.0.0.1:")
    assert json.loads(target.to_json())["cdn"] == target.cdn
    assert Target.from_json(target.to_json()).cdn == target.cdn
    # the headers are the distribution's policy's, from one place
    assert (
        get(target.cdn + CANONICAL)[1]["Strict-Transport-Security"]
        == (edge.RESPONSE_HEADERS["Strict-Transport-Security"])
    )


def test_a_redeploy_recompiles_the_function_from_the_edited_profiles() -> None:
    # GIVEN the local CDN alone over an emulator holding a two-format rendition's objects
    with Emulator() as emulator:
        s3 = client("s3", emulator.endpoint)
        s3.create_bucket(Bucket="out")
        for ext, media_type in (("webp", "image/webp"), ("jpg", "image/jpeg")):
            key = f"processed/a.jpg/w320.{ext}"
            s3.put_object(Bucket="out", Key=key, Body=b"x", ContentType=media_type)
        two = delivery.config(delivery.rendition("w320", ["webp", "jpeg"]))
        cdn = LocalCdn(emulator.endpoint, "out", two).start()
        try:
            assert get(cdn.url + "/processed/a.jpg/w320", CHROME)[1]["Content-Type"] == "image/webp"
            # WHEN the profile is edited to one format and redeployed
            cdn.redeploy(delivery.config(delivery.rendition("w320", "jpeg")))
            # THEN the URL is no longer canonical: it passes through, and there is no such key
            assert get(cdn.url + "/processed/a.jpg/w320", CHROME)[0] == 404
            assert get(cdn.url + "/processed/a.jpg/w320.jpg", CHROME)[0] == 200
        finally:
            cdn.stop()
