"""Issue 15 in the handler, against moto: a rendition in several formats, Cache-Control on
every object, and {hash} keys that move when the source's bytes do."""

from __future__ import annotations

import io

from PIL import Image

from lambda_pkg.handler import process_event
from lambda_pkg.profiles import (
    CACHE_HASHED,
    CACHE_IN_PLACE,
    PipelineConfig,
    profile_from_dict,
    source_hash,
)
from lambda_pkg.records import owner_record_name
from lambda_pkg.settings import Settings
from tests.support import images
from tests.support.aws import INPUT_BUCKET, OUTPUT_BUCKET, TABLE, put_event

PILLOW_NAMES = {"avif": "AVIF", "webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}


def settings(*renditions: dict, **profile: object) -> Settings:
    data = {"name": "multi", "renditions": list(renditions), **profile}
    config = PipelineConfig.single(profile_from_dict(data, "test"))
    return Settings(OUTPUT_BUCKET, TABLE, config)


def deliver(aws, key: str, data: bytes, config: Settings, sequencer: str) -> dict:
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, key, len(data), sequencer=sequencer)
    return process_event(event, config, aws.s3, aws.dynamodb)


def test_a_rendition_in_three_formats_writes_each_with_its_type_and_cache_control(aws):
    # GIVEN a profile whose first rendition is [avif, webp, jpeg] and whose second is a
    # single-format square with its own Cache-Control
    config = settings(
        {
            "name": "w320",
            "resize": {"mode": "width", "width": 320},
            "format": ["avif", "webp", "jpeg"],
            "key": "processed/{key}/{rendition}.{ext}",
        },
        {
            "name": "square",
            "resize": {"mode": "cover", "width": 64, "height": 64},
            "format": "png",
            "key": "processed/{key}/{rendition}.{ext}",
            "cache_control": "public, max-age=60",
        },
    )
    # WHEN a 640x480 photo arrives
    result = deliver(aws, "in/cat.jpg", images.jpeg(640, 480), config, "0055AED6DCD90281E5")
    # THEN each format of the rendition is its own object, in the rendition's order
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    item = aws.item("in/cat.jpg")
    entries = [(r["name"], r["format"], r["key"]) for r in item["renditions"]]
    assert entries == [
        ("w320", "avif", "processed/in/cat.jpg/w320.avif"),
        ("w320", "webp", "processed/in/cat.jpg/w320.webp"),
        ("w320", "jpeg", "processed/in/cat.jpg/w320.jpg"),
        ("square", "png", "processed/in/cat.jpg/square.png"),
    ]
    assert aws.output_keys() == sorted(key for _, _, key in entries)
    # AND each decodes as its format at the recorded size, with its Content-Type, its
    # Cache-Control and the recorded bytes
    for entry in item["renditions"]:
        head = aws.s3.head_object(Bucket=OUTPUT_BUCKET, Key=entry["key"])
        assert head["ContentType"] == entry["content_type"] == f"image/{entry['format']}"
        assert head["ContentLength"] == entry["bytes"]
        expected_cache = CACHE_IN_PLACE if entry["name"] == "w320" else "public, max-age=60"
        assert head["CacheControl"] == expected_cache
        picture = Image.open(io.BytesIO(aws.output(entry["key"])))
        assert picture.format == PILLOW_NAMES[entry["format"]]
        assert picture.size == (entry["width"], entry["height"])
    # AND the formats of one rendition name its canonical key and share one size
    multi = [r for r in item["renditions"] if r["name"] == "w320"]
    assert {r["canonical"] for r in multi} == {"processed/in/cat.jpg/w320"}
    assert {(r["width"], r["height"]) for r in multi} == {(320, 240)}
    assert "canonical" not in item["renditions"][-1]
    # AND the seed's processed_* describe the first object written
    first = item["renditions"][0]
    assert (item["processed_width"], item["processed_size_bytes"]) == (320, first["bytes"])
    # AND every object has its owner record
    for _, _, key in entries:
        assert aws.item(owner_record_name(key))["owner"] == "in/cat.jpg"


def test_hash_keys_move_with_new_bytes_and_the_old_ones_are_removed(aws):
    # GIVEN a {hash} profile in two formats, and a first upload
    config = settings(
        {
            "name": "w200",
            "resize": {"mode": "width", "width": 200},
            "format": ["webp", "jpeg"],
            "key": "processed/{key}/{hash}/{rendition}.{ext}",
        }
    )
    first = images.jpeg(400, 300)
    deliver(aws, "a/photo.jpg", first, config, "00000000000000E0")
    old_keys = aws.output_keys()
    digest = source_hash(first, config.config.profile("multi"))
    assert old_keys == [
        f"processed/a/photo.jpg/{digest}/w200.jpg",
        f"processed/a/photo.jpg/{digest}/w200.webp",
    ]
    for key in old_keys:
        head = aws.s3.head_object(Bucket=OUTPUT_BUCKET, Key=key)
        assert head["CacheControl"] == CACHE_HASHED
    # WHEN the same key is overwritten with other bytes
    second = images.jpeg(400, 200)
    deliver(aws, "a/photo.jpg", second, config, "00000000000000F0")
    # THEN the renditions live under the new hash only, the old keys are gone and released
    new_digest = source_hash(second, config.config.profile("multi"))
    assert new_digest != digest
    assert aws.output_keys() == [
        f"processed/a/photo.jpg/{new_digest}/w200.jpg",
        f"processed/a/photo.jpg/{new_digest}/w200.webp",
    ]
    item = aws.item("a/photo.jpg")
    assert sorted(r["key"] for r in item["renditions"]) == aws.output_keys()
    assert {r["height"] for r in item["renditions"]} == {100}
    for key in old_keys:
        assert aws.item(owner_record_name(key))["owner"] == "released#a/photo.jpg"


def test_the_same_bytes_again_keep_their_hash_keys(aws):
    config = settings(
        {
            "name": "w200",
            "resize": {"mode": "width", "width": 200},
            "format": "webp",
            "key": "processed/{key}/{hash}/{rendition}.{ext}",
        }
    )
    data = images.jpeg(400, 300)
    deliver(aws, "a/photo.jpg", data, config, "00000000000000E0")
    before = aws.output_keys()
    deliver(aws, "a/photo.jpg", data, config, "00000000000000F0")
    assert (
        aws.output_keys()
        == before
        == [f"processed/a/photo.jpg/{source_hash(data, config.config.profile('multi'))}/w200.webp"]
    )


def quantization_at(quality: int) -> dict:
    """libjpeg's tables for a quality: scaled standard tables, whatever the picture."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "#808080").save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).quantization


def test_one_rendition_writes_its_webp_at_q80_and_its_jpeg_at_q82(aws):
    # GIVEN a [webp, jpeg] rendition with a quality per format, as the function reads it
    # from PROFILE_CONFIG, beside single-format renditions of the same size at those qualities
    key, resize = "processed/{key}/{rendition}.{ext}", {"mode": "width", "width": 320}
    profile = {
        "name": "multi",
        "renditions": [
            {"name": "w320", "resize": resize, "format": ["webp", "jpeg"], "key": key,
             "quality": {"webp": 80, "jpeg": 82}},
            {"name": "webp80", "resize": resize, "format": "webp", "quality": 80, "key": key},
            {"name": "jpeg82", "resize": resize, "format": "jpeg", "quality": 82, "key": key},
        ],
    }  # fmt: skip
    shipped = PipelineConfig.single(profile_from_dict(profile, "test")).to_json()
    config = Settings(OUTPUT_BUCKET, TABLE, PipelineConfig.from_json(shipped))
    # WHEN a photo arrives
    result = deliver(aws, "in/dog.jpg", images.jpeg(640, 480), config, "0055AED6DCD90281E5")
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    # THEN the rendition's JPEG is a q82 encode, byte for byte, with q82's tables
    jpeg = aws.output("processed/in/dog.jpg/w320.jpg")
    assert jpeg == aws.output("processed/in/dog.jpg/jpeg82.jpg")
    assert Image.open(io.BytesIO(jpeg)).quantization == quantization_at(82) != quantization_at(80)
    # AND its WebP a q80 encode, byte for byte
    webp = aws.output("processed/in/dog.jpg/w320.webp")
    assert webp == aws.output("processed/in/dog.jpg/webp80.webp")
    assert Image.open(io.BytesIO(webp)).format == "WEBP"


def test_an_animation_stays_animated_in_every_format_that_can_animate(aws):
    # GIVEN a profile keeping animations, one rendition in [avif, webp, jpeg]: Chrome,
    # Firefox and Safari are all served the AVIF (pipeline/delivery/negotiate.js)
    config = settings(
        {
            "name": "w30",
            "resize": {"mode": "width", "width": 30},
            "format": ["avif", "webp", "jpeg"],
            "key": "processed/{key}/{rendition}.{ext}",
        },
        keep_animation=True,
    )
    # WHEN an animated GIF of 5 frames arrives
    deliver(aws, "in/spin.gif", images.animation("gif", frames=5), config, "00000000000000E0")
    # THEN the AVIF and the WebP are the same animation; only the JPEG fallback is a still
    frames = {}
    for entry in aws.item("in/spin.gif")["renditions"]:
        picture = Image.open(io.BytesIO(aws.output(entry["key"])))
        frames[entry["format"]] = getattr(picture, "n_frames", 1)
    assert frames == {"avif": 5, "webp": 5, "jpeg": 1}


def test_an_edited_profile_never_writes_other_bytes_at_an_immutable_hash_key(aws):
    # GIVEN {hash} keys (cached for a year, immutable) written with quality 80
    def config(quality: int) -> Settings:
        return settings(
            {
                "name": "w200",
                "resize": {"mode": "width", "width": 200},
                "quality": quality,
                "format": ["webp", "jpeg"],
                "key": "processed/{key}/{hash}/{rendition}.{ext}",
            }
        )

    data = images.jpeg(400, 300)
    deliver(aws, "a/photo.jpg", data, config(80), "00000000000000E0")
    before = {key: aws.output(key) for key in aws.output_keys()}
    # WHEN the profile is edited to quality 30 and the image reprocessed (its event again)
    event = put_event(INPUT_BUCKET, "a/photo.jpg", len(data), sequencer="00000000000000E0")
    process_event(event, config(30), aws.s3, aws.dynamodb)
    # THEN the new bytes are at new keys (a cache holding the old ones stays right), and the
    # old keys are gone like any stale rendition
    after = {key: aws.output(key) for key in aws.output_keys()}
    assert not set(before) & set(after)
    assert len(after) == 2 and set(after.values()).isdisjoint(before.values())
    item = aws.item("a/photo.jpg")
    assert sorted(r["key"] for r in item["renditions"]) == sorted(after)
