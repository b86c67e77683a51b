"""`imgpipe gallery`'s writer against moto: what it copies, where, and what it links."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from moto import mock_aws

from lambda_pkg import wire
from lambda_pkg.events import s3_event
from lambda_pkg.metadata import utc_timestamp
from lambda_pkg.records import table_definition
from pipeline.aws import client
from pipeline.cli import gallery
from pipeline.cli.targets import Target
from pipeline.program.names import resource_names


@pytest.fixture
def world():
    """A deployed stack's buckets, table and dead-letter queue, on moto."""
    target = Target(names=resource_names("imgpipe", "prod"))
    with mock_aws():
        names = target.names
        for bucket in (names.input_bucket, names.output_bucket):
            client("s3", None).create_bucket(Bucket=bucket)
        client("dynamodb", None).create_table(TableName=names.metadata_table, **table_definition())
        queue = client("sqs", None).create_queue(QueueName=names.dead_letter_queue)
        yield dataclasses.replace(target, dead_letter_queue_url=queue["QueueUrl"])


def put_ok(target: Target, key: str, fmt: str, outputs: dict[str, bytes]) -> None:
    """An original, its renditions in the output bucket, and the `ok` item listing them."""
    s3 = client("s3", None)
    s3.put_object(Bucket=target.names.input_bucket, Key=key, Body=b"original")
    renditions = []
    for name, data in outputs.items():
        output = f"processed/{key}/{name}.webp"
        s3.put_object(Bucket=target.names.output_bucket, Key=output, Body=data)
        size = {"name": name, "key": output, "width": 40, "height": 30, "format": "webp"}
        renditions.append({**size, "bytes": len(data)})
    item = {"image_name": key, "status": "ok", "profile": "web", "input_format": fmt}
    item["timestamp"] = utc_timestamp()  # after the upload: ls shows the item, not pending
    item.update(original_width=40, original_height=30, original_size_bytes=8)
    item["renditions"] = renditions
    client("dynamodb", None).put_item(TableName=target.names.metadata_table, Item=wire.encode(item))


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_it_copies_what_the_page_shows_once_and_nothing_outside_its_folder(world, tmp_path):
    # GIVEN a photo whose two renditions came out alike, a TIFF, and keys that climb out
    put_ok(world, "photo.jpg", "jpeg", {"w1600": b"same", "w800": b"same"})
    put_ok(world, "scan.tif", "tiff", {"w1600": b"big", "w320": b"s"})
    put_ok(world, "../../escape.jpg", "jpeg", {"w800": b"x"})
    put_ok(world, "/abs.jpg", "jpeg", {"w800": b"y"})
    out = tmp_path / "gallery"
    # WHEN the gallery is written
    page = gallery.write(world, out)
    # THEN the photo's original and one of its alike renditions are copied, the TIFF's
    # original is not (its largest rendition previews it), and no file leaves the folder
    copied = files(tmp_path)
    assert {
        "gallery/index.html",
        "gallery/originals/photo.jpg",
        "gallery/renditions/processed/photo.jpg/w1600.webp",
        "gallery/renditions/processed/scan.tif/w1600.webp",
        "gallery/renditions/processed/scan.tif/w320.webp",
    } <= copied
    assert "gallery/renditions/processed/photo.jpg/w800.webp" not in copied
    assert "gallery/originals/scan.tif" not in copied
    assert all(path.startswith("gallery/") for path in copied)
    unsafe = sorted(p for p in copied if "unsafe-keys/" in p)
    # (their renditions' keys, processed/../../escape.jpg/... and processed//abs.jpg/..., too)
    assert len(unsafe) == 4
    # AND every local link on the page names a file it copied
    links = {src for src in _sources(page.read_text())}
    assert {f"gallery/{src}" for src in links} <= copied


def _sources(text: str) -> list[str]:
    from urllib.parse import unquote

    return [unquote(part.split("'", 1)[0]) for part in text.split("src='")[1:]]


def test_keys_without_an_item_get_the_card_ls_would_give_them(world, tmp_path):
    event = s3_event(world.names.input_bucket, "lost.jpg", 5, "00AB", "ObjectCreated:Put")
    record = {
        "timestamp": "2026-01-01T00:00:00.000000Z",
        "requestPayload": event,
        "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "killed"},
    }
    client("sqs", None).send_message(
        QueueUrl=world.dead_letter_queue_url, MessageBody=json.dumps(record)
    )
    # AND an upload the function has not finished, which `imgpipe ls` lists as pending
    client("s3", None).put_object(Bucket=world.names.input_bucket, Key="new.jpg", Body=b"x")
    text = gallery.write(world, tmp_path).read_text()
    assert "data-key='lost.jpg' data-status='dlq'" in text
    assert "data-key='new.jpg' data-status='pending'" in text
    assert "<dd data-field='error'>Runtime.ExitError: killed</dd>" in text


def test_presigned_links_name_each_bucket_and_nothing_is_downloaded(world, tmp_path):
    put_ok(world, "photo.jpg", "jpeg", {"w800": b"x"})
    text = gallery.write(world, tmp_path, presign=True).read_text()
    sources = _sources(text)
    assert any(f"{world.names.input_bucket}" in s and "photo.jpg?" in s for s in sources)
    assert any(f"{world.names.output_bucket}" in s and "w800.webp?" in s for s in sources)
    assert all("Signature=" in s or "X-Amz-Signature=" in s for s in sources)
    assert files(tmp_path) == {"index.html"}


def test_writing_again_fetches_only_copies_that_are_missing_or_changed(world, tmp_path):
    # GIVEN a gallery written once
    put_ok(world, "photo.jpg", "jpeg", {"w1600": b"big", "w800": b"small"})
    gallery.write(world, tmp_path)
    kept = tmp_path / "renditions/processed/photo.jpg/w1600.webp"
    changed = tmp_path / "renditions/processed/photo.jpg/w800.webp"
    spoiled = tmp_path / "originals/photo.jpg"
    before = kept.stat().st_mtime_ns
    # WHEN one rendition is written again in S3 and one local copy is spoiled
    client("s3", None).put_object(
        Bucket=world.names.output_bucket, Key="processed/photo.jpg/w800.webp", Body=b"newer"
    )
    spoiled.write_bytes(b"not the original")
    gallery.write(world, tmp_path)
    # THEN those two are fetched again, and the unchanged copy is left as it was
    assert changed.read_bytes() == b"newer" and spoiled.read_bytes() == b"original"
    assert kept.stat().st_mtime_ns == before


def test_with_a_cdn_renditions_are_pictures_on_it_and_only_originals_are_copied(world, tmp_path):
    # GIVEN a stack whose renditions a CDN serves (imgpipe:cdn's URL, or the local CDN)
    cdn = dataclasses.replace(world, cdn="https://d1.cloudfront.net")
    put_ok(world, "photo.jpg", "jpeg", {"w1600": b"big", "w800": b"small"})
    put_ok(world, "scan.tif", "tiff", {"w1600": b"large"})
    # WHEN the gallery is written
    text = gallery.write(cdn, tmp_path).read_text()
    # THEN no rendition is downloaded: the CDN serves processed/ and the browser loads it
    assert files(tmp_path) == {"index.html", "originals/photo.jpg"}
    # AND each rendition is a <picture> whose URLs are on the CDN; originals stay copies
    assert text.count("<picture>") == 4  # the photo's two widths; the TIFF's preview and w1600
    assert 'src="https://d1.cloudfront.net/processed/photo.jpg/w800.webp"' in text
    assert "src='originals/photo.jpg'" in text
    assert "renditions through the CDN at https://d1.cloudfront.net" in text


def test_with_a_cdn_and_presign_renditions_stay_on_the_cdn(world, tmp_path):
    cdn = dataclasses.replace(world, cdn="https://d1.cloudfront.net")
    put_ok(world, "photo.jpg", "jpeg", {"w800": b"x"})
    text = gallery.write(cdn, tmp_path, presign=True).read_text()
    assert files(tmp_path) == {"index.html"}
    assert 'src="https://d1.cloudfront.net/processed/photo.jpg/w800.webp"' in text
    (original,) = [s for s in _sources(text) if "photo.jpg?" in s]
    assert world.names.input_bucket in original and "Signature=" in original


def test_keys_no_file_system_can_hold_as_paths_get_safe_names(world, tmp_path):
    # GIVEN keys S3 accepts that a folder of files cannot mirror: a segment over 255 bytes
    # (S3 allows 1,024 per key), and a key that is also another key's folder
    long_key = f"long/{'L' * 300}.jpg"
    long_suffix = f"long/x.{'E' * 300}"
    for key in (long_key, long_suffix, "a.jpg", "a.jpg/b.jpg"):
        put_ok(world, key, "jpeg", {"w800": key.encode()})
    out = tmp_path / "gallery"
    # WHEN the gallery is written
    page = gallery.write(world, out)
    # THEN it is, with every original copied and every local link naming a copied file
    copied = files(tmp_path)
    assert sum(path.startswith("gallery/originals/") for path in copied) == 4
    assert {f"gallery/{src}" for src in _sources(page.read_text())} <= copied
