"""The handler against moto: the seed's example, encodings, bad input, retries."""

from __future__ import annotations

import dataclasses
import io
import logging
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from lambda_pkg.handler import handler, process_event
from lambda_pkg.metadata import SEED_ATTRIBUTES
from lambda_pkg.profiles import CACHE_IN_PLACE, PipelineConfig, load_named, profile_from_dict
from lambda_pkg.settings import Settings, function_environment
from tests.support import images
from tests.support.aws import (
    INPUT_BUCKET,
    OUTPUT_BUCKET,
    TABLE,
    fresh_container,
    load_event,
    put_event,
)


def run(aws, key: str, data: bytes, profile: str = "thumbnail", key_as_sent: str | None = None):
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, key_as_sent or key, len(data))
    return process_event(event, aws.settings(profile), aws.s3, aws.dynamodb)


def test_seed_example_photo_becomes_a_200x113_thumbnail_and_seed_item(aws, caplog):
    # GIVEN the seed's example: a 1920x1080 photo at input/photo.jpg
    data = images.jpeg(1920, 1080)
    aws.upload("input/photo.jpg", data)
    event = put_event(INPUT_BUCKET, "input/photo.jpg", len(data))

    # WHEN the deployed entry point gets the real S3 event, configured only by environment
    env = function_environment(OUTPUT_BUCKET, TABLE, aws.settings().config)
    caplog.set_level(logging.INFO, logger="imgpipe")
    fresh_container()  # settings from this env
    with mock.patch.dict("os.environ", env):
        result = handler(event, None)
    fresh_container()

    # THEN the thumbnail is 200x113 JPEG at the seed's key
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    thumb = Image.open(io.BytesIO(aws.output("processed/thumb_photo.jpg")))
    assert (thumb.format, thumb.size) == ("JPEG", (200, 113))
    head = aws.s3.head_object(Bucket=OUTPUT_BUCKET, Key="processed/thumb_photo.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == CACHE_IN_PLACE  # the key is overwritten in place

    # AND the item has the seed's attribute names with the seed's DynamoDB types
    raw = aws.raw_item("input/photo.jpg")
    assert raw is not None
    assert set(SEED_ATTRIBUTES) <= set(raw)
    assert raw["image_name"] == {"S": "input/photo.jpg"}
    numbers = {
        name: raw[name] for name in SEED_ATTRIBUTES if name not in ("image_name", "timestamp")
    }
    assert numbers == {
        "original_width": {"N": "1920"},
        "original_height": {"N": "1080"},
        "processed_width": {"N": "200"},
        "processed_height": {"N": "113"},
        "original_size_bytes": {"N": str(len(data))},
        "processed_size_bytes": {"N": str(len(aws.output("processed/thumb_photo.jpg")))},
    }
    assert raw["timestamp"]["S"].endswith("Z")
    item = aws.item("input/photo.jpg")
    assert item["status"] == "ok" and item["profile"] == "thumbnail"
    assert item["renditions"] == [
        {
            "name": "thumb",
            "key": "processed/thumb_photo.jpg",
            "width": Decimal(200),
            "height": Decimal(113),
            "bytes": Decimal(numbers["processed_size_bytes"]["N"]),
            "format": "jpeg",
            "content_type": "image/jpeg",
        }
    ]

    # AND the seed's CloudWatch lines appear, in order
    lines = [r.getMessage() for r in caplog.records if r.name == "imgpipe"]
    expected = [
        "Event received: ",
        f"Processing image from bucket: {INPUT_BUCKET}, key: input/photo.jpg",
        "Original image size: 1920x1080",
        "Processed image size: 200x113",
        "Metadata stored successfully in DynamoDB.",
    ]
    found = [next(i for i, line in enumerate(lines) if line.startswith(e)) for e in expected]
    assert found == sorted(found), lines


def test_the_input_object_is_never_changed(aws):
    data = images.jpeg(640, 480)
    run(aws, "a.jpg", data)
    assert aws.s3.get_object(Bucket=INPUT_BUCKET, Key="a.jpg")["Body"].read() == data
    listing = aws.s3.list_objects_v2(Bucket=INPUT_BUCKET)["Contents"]
    assert [o["Key"] for o in listing] == ["a.jpg"]


@pytest.mark.parametrize(
    ("key_as_sent", "decoded"),
    [
        ("Happy+Face.jpg", "Happy Face.jpg"),
        ("Happy%20Face.jpg", "Happy Face.jpg"),
        ("a%2Bb.jpg", "a+b.jpg"),
        ("100%25+real.jpg", "100% real.jpg"),
        ("caf%C3%A9/%E5%86%99%E7%9C%9F.jpg", "café/写真.jpg"),
    ],
)
def test_url_encoded_keys_are_decoded_once(aws, key_as_sent, decoded):
    run(aws, decoded, images.jpeg(300, 200), key_as_sent=key_as_sent)
    item = aws.item(decoded)
    assert item is not None and item["status"] == "ok"
    name = decoded.rsplit("/", 1)[-1]
    assert aws.output_keys() == [f"processed/thumb_{name}"]


def test_powertools_event_with_encoded_space(aws):
    # GIVEN Powertools' real event, whose key arrives as Happy%20Face.jpg
    event = load_event("powertools_s3EventDecodedKey")
    event["Records"][0]["s3"]["bucket"]["name"] = INPUT_BUCKET
    aws.upload("Happy Face.jpg", images.jpeg(400, 300))
    process_event(event, aws.settings(), aws.s3, aws.dynamodb)
    assert aws.item("Happy Face.jpg")["status"] == "ok"


def test_web_profile_writes_every_rendition_with_content_types(aws):
    run(aws, "gallery/cat.jpg", images.jpeg(2400, 1600), profile="web")
    item = aws.item("gallery/cat.jpg")
    expected = [
        ("w1600", 1600, 1067, "webp", "w1600.webp"),
        ("w1600", 1600, 1067, "jpeg", "w1600.jpg"),
        ("w800", 800, 533, "webp", "w800.webp"),
        ("w800", 800, 533, "jpeg", "w800.jpg"),
        ("w320", 320, 213, "webp", "w320.webp"),
        ("w320", 320, 213, "jpeg", "w320.jpg"),
        ("square", 200, 200, "webp", "square.webp"),
    ]
    got = [
        (r["name"], r["width"], r["height"], r["format"], r["key"].rsplit("/", 1)[-1])
        for r in item["renditions"]
    ]
    assert got == expected
    for rendition in item["renditions"]:
        key = rendition["key"]
        assert key.startswith("processed/gallery/cat.jpg/")
        head = aws.s3.head_object(Bucket=OUTPUT_BUCKET, Key=key)
        assert head["ContentType"] == f"image/{rendition['format']}"
        assert head["ContentLength"] == rendition["bytes"]
        decoded = Image.open(io.BytesIO(aws.output(key)))
        assert decoded.size == (rendition["width"], rendition["height"])
    assert (item["processed_width"], item["processed_height"]) == (1600, 1067)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.jpg", b"this is a text file, not a photo\n" * 20, "not a recognised image"),
        ("empty.jpg", b"", "empty"),
        ("cut.jpg", images.jpeg(800, 600)[:2500], "truncated"),
    ],
)
def test_bad_images_become_failed_items_and_the_handler_returns(aws, name, data, reason):
    result = run(aws, name, data)
    assert result == {"processed": 0, "failed": 1, "skipped": 0}
    item = aws.item(name)
    assert item["status"] == "failed"
    assert reason in item["error"]
    assert item["error_type"] == "ImageRejected"
    assert set(SEED_ATTRIBUTES) <= set(item)
    assert aws.output_keys() == []


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [
        (9000, 9000, "81,000,000 pixels, over the profile's max_pixels of 50,000,000"),
        (60000, 60000, "decompression bomb"),
    ],
)
def test_too_many_pixels_fails_before_decoding(aws, monkeypatch, width, height, reason):
    # GIVEN a 60-byte PNG whose header claims a huge size, and decoding made to fail loudly
    # (it happens in the render process, where a mock's calls would not be seen from here)
    data = images.png_claiming(width, height)

    def decoded(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", decoded)
    run(aws, "bomb.png", data)
    # THEN the image failed for its header's size, not because decoding was tried
    item = aws.item("bomb.png")
    assert item["status"] == "failed"
    assert reason in item["error"]
    assert aws.output_keys() == []


def test_object_over_max_bytes_is_refused_before_download(aws):
    settings = aws.settings()
    profile = settings.config.profiles[0]
    event = put_event(INPUT_BUCKET, "huge.jpg", profile.max_bytes + 1)
    aws.upload("huge.jpg", b"x")  # the body must never be fetched
    with mock.patch.object(aws.s3, "get_object", side_effect=AssertionError("downloaded")):
        process_event(event, settings, aws.s3, aws.dynamodb)
    assert "max_bytes" in aws.item("huge.jpg")["error"]


def test_one_bad_record_does_not_stop_the_others(aws):
    good, bad = images.jpeg(500, 400), b"GIF89a broken"
    aws.upload("good.jpg", good)
    aws.upload("bad.gif", bad)
    first = put_event(INPUT_BUCKET, "bad.gif", len(bad))
    second = put_event(INPUT_BUCKET, "good.jpg", len(good))
    event = {"Records": first["Records"] + second["Records"]}
    result = process_event(event, aws.settings(), aws.s3, aws.dynamodb)
    assert result == {"processed": 1, "failed": 1, "skipped": 0}
    assert aws.item("good.jpg")["status"] == "ok"
    assert aws.item("bad.gif")["status"] == "failed"


def _throttled(operation: str) -> ClientError:
    error = {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}
    error["ResponseMetadata"] = {"HTTPStatusCode": 503}
    return ClientError(error, operation)


def test_transient_error_is_raised_after_the_other_records_are_done(aws):
    # GIVEN two images, and S3 throttling the write of the first one's rendition
    for key in ("one.jpg", "two.jpg"):
        aws.upload(key, images.jpeg(300, 200))
    events = [put_event(INPUT_BUCKET, k, 100)["Records"][0] for k in ("one.jpg", "two.jpg")]
    real_put = aws.s3.put_object
    calls = {"n": 0}

    def flaky_put(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise _throttled("PutObject")
        return real_put(**kwargs)

    # WHEN the handler runs, THEN the throttling error is raised so Lambda retries ...
    with mock.patch.object(aws.s3, "put_object", side_effect=flaky_put), pytest.raises(ClientError):
        process_event({"Records": events}, aws.settings(), aws.s3, aws.dynamodb)
    # ... the other record was still processed, and the throttled one has no item yet
    assert aws.item("two.jpg")["status"] == "ok"
    assert aws.item("one.jpg") is None
    # AND the retry succeeds
    process_event({"Records": events[:1]}, aws.settings(), aws.s3, aws.dynamodb)
    assert aws.item("one.jpg")["status"] == "ok"


def test_dynamodb_throttling_is_raised(aws):
    aws.upload("a.jpg", images.jpeg(300, 200))
    error = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "PutItem",
    )
    with (
        mock.patch.object(aws.dynamodb, "put_item", side_effect=error),
        pytest.raises(ClientError, match="ProvisionedThroughputExceeded"),
    ):
        process_event(put_event(INPUT_BUCKET, "a.jpg", 100), aws.settings(), aws.s3, aws.dynamodb)


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (load_event("aws_docs_s3_TestEvent"), "test event"),
        (put_event(INPUT_BUCKET, "folder/", 0), "folder marker"),
        (put_event(OUTPUT_BUCKET, "processed/thumb_a.jpg", 100), "own output"),
    ],
)
def test_events_that_are_not_ours_are_skipped(aws, event, why):
    result = process_event(event, aws.settings(), aws.s3, aws.dynamodb)
    assert result["processed"] == result["failed"] == 0, why
    assert aws.output_keys() == []


def test_deleted_before_processing_is_skipped_not_raised(aws):
    event = put_event(INPUT_BUCKET, "gone.jpg", 100)
    result = process_event(event, aws.settings(), aws.s3, aws.dynamodb)
    assert result == {"processed": 0, "failed": 0, "skipped": 1}


def test_duplicate_delivery_gives_one_consistent_item_and_same_bytes(aws):
    data = images.jpeg(640, 480)
    run(aws, "dup.jpg", data)
    first_item, first_bytes = aws.item("dup.jpg"), aws.output("processed/thumb_dup.jpg")
    run(aws, "dup.jpg", data)
    second_item = aws.item("dup.jpg")
    assert aws.output("processed/thumb_dup.jpg") == first_bytes
    for item in (first_item, second_item):
        del item["timestamp"], item["revision"]  # when it was written, not what
    assert first_item == second_item


def test_an_older_event_never_overwrites_a_newer_item(aws):
    new, old = images.jpeg(800, 600), images.jpeg(400, 300)
    aws.upload("k.jpg", new)
    newer = put_event(INPUT_BUCKET, "k.jpg", len(new), sequencer="0055AED6DCD90281E6")
    process_event(newer, aws.settings(), aws.s3, aws.dynamodb)
    older = put_event(INPUT_BUCKET, "k.jpg", len(old), sequencer="0055AED6DCD90281E5")
    result = process_event(older, aws.settings(), aws.s3, aws.dynamodb)
    assert result["skipped"] == 1
    assert aws.item("k.jpg")["sequencer"].startswith("0055AED6DCD90281E6")


def test_item_records_input_colour_gps_and_placeholders(aws):
    # GIVEN an iPhone-style HEIC upload under a .jpg key (the bytes decide, not the name)
    run(aws, "input/phone.jpg", images.heic(320, 240))
    item = aws.item("input/phone.jpg")
    # THEN the item says what came in and carries the placeholders, never coordinates
    assert item["status"] == "ok"
    assert (item["input_format"], item["input_mode"]) == ("heic", "RGB")
    assert item["has_icc"] is False and item["had_gps"] is False  # pillow-heif embeds no ICC
    assert item["orientation"] == Decimal(1)
    assert len(item["blurhash"]) == 28 and item["dominant_color"].startswith("#")
    raw = aws.raw_item("input/phone.jpg")
    assert raw["had_gps"] == {"BOOL": False} and raw["dominant_color"]["S"].startswith("#")


# A distinctive position: its figures cannot turn up in an item by coincidence.
_LATITUDE, _LONGITUDE = (51.0, 28.0, 38.123), (122.0, 25.0, 9.876)
_POSITION_TEXT = ("38.123", "9.876", "51.477", "122.419")  # the seconds and decimal degrees


def _leaves(raw: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every (DynamoDB type, value) in a raw item, through lists and maps."""
    found: list[tuple[str, Any]] = []
    for typed in raw.values():
        ((kind, value),) = typed.items()
        if kind == "L":
            found += _leaves(dict(enumerate(value)))
        elif kind == "M":
            found += _leaves(value)
        else:
            found.append((kind, value))
    return found


def test_item_records_icc_orientation_and_gps_but_never_the_position(aws):
    # GIVEN a phone JPEG: sRGB ICC profile, GPS position, stored sideways (orientation 6)
    data = images.camera_jpeg(320, 240, 6, _LATITUDE, _LONGITUDE)
    source = Image.open(io.BytesIO(data))
    assert source.info.get("icc_profile") and source.getexif().get_ifd(0x8825)[2] == _LATITUDE
    run(aws, "input/phone.jpg", data)

    # THEN the item says what came in, upright dimensions included ...
    item = aws.item("input/phone.jpg")
    assert item["status"] == "ok"
    assert (item["input_format"], item["input_mode"]) == ("jpeg", "RGB")
    assert item["orientation"] == 6
    assert (item["original_width"], item["original_height"]) == (240, 320)
    assert (item["processed_width"], item["processed_height"]) == (200, 267)
    raw = aws.raw_item("input/phone.jpg")
    assert raw["has_icc"] == {"BOOL": True} and raw["had_gps"] == {"BOOL": True}
    # ... and that a position was there, never the position: no attribute value, however
    # nested, holds its figures or any binary blob an EXIF block could hide in.
    assert not [name for name in raw if "gps" in name.lower() and name != "had_gps"]
    leaves = _leaves(raw)
    assert not [kind for kind, _ in leaves if kind in ("B", "BS")]
    texts = [str(value) for _, value in leaves]
    assert not [(t, figure) for t in texts for figure in _POSITION_TEXT if figure in t]
    # AND the rendition does not carry it either (the thumbnail profile keeps no metadata)
    thumb = Image.open(io.BytesIO(aws.output("processed/thumb_phone.jpg")))
    assert not thumb.getexif() and "icc_profile" not in thumb.info


def test_item_records_no_icc_no_gps_and_upright_when_the_jpeg_has_none(aws):
    run(aws, "input/plain.jpg", images.jpeg(320, 240))
    item = aws.item("input/plain.jpg")
    assert (item["input_format"], item["input_mode"], item["orientation"]) == ("jpeg", "RGB", 1)
    raw = aws.raw_item("input/plain.jpg")
    assert raw["has_icc"] == {"BOOL": False} and raw["had_gps"] == {"BOOL": False}


def test_the_bytes_decide_the_format_not_the_key(aws):
    # GIVEN a PNG uploaded as .jpg and a JPEG uploaded as .png, and a profile whose `same`
    # rendition follows the input's format (its extension too)
    profile = profile_from_dict(
        {
            "name": "same",
            "renditions": [
                {
                    "name": "r",
                    "resize": {"mode": "width", "width": 100},
                    "format": "same",
                    "key": "processed/{key}.{ext}",
                }
            ],
        },
        "test",
    )
    settings = Settings(OUTPUT_BUCKET, TABLE, PipelineConfig.single(profile))
    uploads = {"input/shot.jpg": images.png(200, 100), "input/scan.png": images.jpeg(200, 100)}
    records = []
    for key, data in uploads.items():
        aws.upload(key, data)
        records += put_event(INPUT_BUCKET, key, len(data))["Records"]

    # WHEN both are processed
    result = process_event({"Records": records}, settings, aws.s3, aws.dynamodb)

    # THEN each is read, recorded and written as what its bytes are
    assert result == {"processed": 2, "failed": 0, "skipped": 0}
    for key, fmt, ext in (("input/shot.jpg", "png", "png"), ("input/scan.png", "jpeg", "jpg")):
        item = aws.item(key)
        assert (item["status"], item["input_format"], item["input_mode"]) == ("ok", fmt, "RGB")
        (rendition,) = item["renditions"]
        assert (rendition["key"], rendition["format"]) == (f"processed/{key}.{ext}", fmt)
        head = aws.s3.head_object(Bucket=OUTPUT_BUCKET, Key=rendition["key"])
        assert head["ContentType"] == f"image/{fmt}"
        output = Image.open(io.BytesIO(aws.output(rendition["key"])))
        assert (output.format, output.size) == (fmt.upper(), (100, 50))


def test_renditions_that_come_out_at_one_key_fail_the_image_before_any_write(aws):
    # GIVEN a profile whose two renditions meet at one key for some source key (validation
    # tries many shapes of key; the function still checks each image's keys)
    web = load_named("web")
    first, second = web.renditions[0], web.renditions[2]  # both WebP
    clash = dataclasses.replace(second, key=first.key.replace("{rendition}", first.name))
    profile = dataclasses.replace(web, renditions=(first, clash))
    data = images.jpeg(900, 600)
    aws.upload("same/key.jpg", data)
    settings = Settings(OUTPUT_BUCKET, TABLE, PipelineConfig.single(profile))
    # WHEN the image is processed
    result = process_event(put_event(INPUT_BUCKET, "same/key.jpg", len(data)), settings,
                           aws.s3, aws.dynamodb)  # fmt: skip
    # THEN it fails, naming both renditions and the key, and nothing is written
    assert result["failed"] == 1
    error = aws.item("same/key.jpg")["error"]
    assert f"{first.name} and {second.name} both come out at" in error
    assert aws.output_keys() == []
