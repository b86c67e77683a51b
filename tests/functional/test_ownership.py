"""One owner per output key (lambda_pkg/ownership.py, metadata.py): collisions, abandoned
claims, refused releases, reserved keys, and renditions written before owner records."""

from __future__ import annotations

import datetime as dt

import pytest

from lambda_pkg import ownership, wire
from lambda_pkg.handler import process_event
from lambda_pkg.metadata import MetadataStore, Source
from lambda_pkg.records import owner_record_name
from tests.support import images
from tests.support.aws import INPUT_BUCKET, OUTPUT_BUCKET, TABLE, put_event

THUMB = "processed/thumb_photo.jpg"
NEWER = Source(INPUT_BUCKET, "a/photo.jpg", 1, "00000000000000F0".ljust(64, "0"))
OLDER = Source(INPUT_BUCKET, "a/photo.jpg", 1, "00000000000000E0".ljust(64, "0"))


def _deliver(aws, key: str, data: bytes, sequencer: str = "0055AED6DCD90281E5") -> dict:
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, key, len(data), sequencer=sequencer)
    return process_event(event, aws.settings("thumbnail"), aws.s3, aws.dynamodb)


def test_a_collision_fails_the_second_upload_naming_key_owner_and_fix(aws):
    # GIVEN a/photo.jpg owns processed/thumb_photo.jpg (thumbnail flattens folders)
    _deliver(aws, "a/photo.jpg", images.jpeg(800, 600))
    owned = aws.output(THUMB)
    # WHEN b/photo.jpg arrives
    result = _deliver(aws, "b/photo.jpg", images.jpeg(400, 400))
    # THEN b fails with a reason that names the key, its owner and how to avoid it
    assert result == {"processed": 0, "failed": 1, "skipped": 0}
    item = aws.item("b/photo.jpg")
    assert item["status"] == "failed" and item["renditions"] == []
    assert item["error_type"] == "OutputKeyTaken"
    for words in (THUMB, "a/photo.jpg", "'processed/thumb_{name}'", "{path}", "reprocess"):
        assert words in item["error"], words
    # AND a's rendition is untouched, still owned by a
    assert aws.output(THUMB) == owned
    assert aws.item(owner_record_name(THUMB))["owner"] == "a/photo.jpg"


def test_a_released_key_goes_to_the_other_source_on_its_next_upload(aws):
    _deliver(aws, "a/photo.jpg", images.jpeg(800, 600))
    _deliver(aws, "b/photo.jpg", images.jpeg(400, 400))
    delete = put_event(INPUT_BUCKET, "a/photo.jpg", 0, sequencer="0055AED6DCD90281F0")
    delete["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="a/photo.jpg")
    process_event(delete, aws.settings("thumbnail"), aws.s3, aws.dynamodb)
    assert aws.output_keys() == []
    record = aws.item(owner_record_name(THUMB))
    assert record["owner"] == "released#a/photo.jpg" and record["released_at"].endswith("Z")
    # WHEN b is reprocessed (same sequencer, as `imgpipe reprocess` sends it)
    process_event(
        put_event(INPUT_BUCKET, "b/photo.jpg", 1, sequencer="0055AED6DCD90281E5"),
        aws.settings("thumbnail"),
        aws.s3,
        aws.dynamodb,
    )
    # THEN b owns the key and its 200x200 thumbnail is there
    assert aws.item("b/photo.jpg")["status"] == "ok"
    assert aws.item(owner_record_name(THUMB))["owner"] == "b/photo.jpg"
    assert aws.item("b/photo.jpg")["renditions"][0]["height"] == 200


def _claim_left_behind(aws, owner: str, age: dt.timedelta) -> None:
    claimed = (dt.datetime.now(dt.UTC) - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item=wire.encode(
            {
                "image_name": owner_record_name(THUMB),
                "record_type": "owner",
                "output_key": THUMB,
                "owner": owner,
                "claimed_at": claimed,
            }
        ),
    )


def test_a_claim_abandoned_by_a_dead_invocation_is_taken_over_after_lambdas_timeout(aws):
    # GIVEN an invocation claimed the key 30 minutes ago and died before storing its item
    _claim_left_behind(aws, "dead/photo.jpg", dt.timedelta(minutes=30))
    # WHEN another source needs the key, THEN it takes it over
    assert _deliver(aws, "b/photo.jpg", images.jpeg(400, 300))["processed"] == 1
    assert aws.item(owner_record_name(THUMB))["owner"] == "b/photo.jpg"


def test_a_recent_claim_is_respected_its_owner_may_still_be_rendering(aws):
    _claim_left_behind(aws, "busy/photo.jpg", dt.timedelta(seconds=20))
    assert _deliver(aws, "b/photo.jpg", images.jpeg(400, 300))["failed"] == 1
    assert aws.output_keys() == []
    assert aws.item(owner_record_name(THUMB))["owner"] == "busy/photo.jpg"


def test_a_key_a_newer_event_of_the_same_source_claimed_is_left_to_that_event(aws):
    # GIVEN a newer event of the same source claimed the key and wrote its rendition
    store = MetadataStore(aws.dynamodb, TABLE)
    assert store.claim(THUMB, NEWER) is None
    aws.s3.put_object(Bucket=OUTPUT_BUCKET, Key=THUMB, Body=b"newer rendition")
    # WHEN an older event of the source cleans the key up
    removed = ownership.remove_unlisted(aws.s3, OUTPUT_BUCKET, store, OLDER, {THUMB}, print)
    # THEN it leaves the key alone, and an older claim never moves the record back
    assert removed == 0 and aws.output(THUMB) == b"newer rendition"
    assert store.claim(THUMB, OLDER)["sequencer"] == NEWER.sequencer
    assert store.owner(THUMB)["sequencer"] == NEWER.sequencer


@pytest.mark.slow
def test_a_newer_claim_landing_during_a_cleanup_gets_its_rendition_back(aws, monkeypatch):
    # GIVEN the cleanup read the record before a newer event of the source claimed the key
    store = MetadataStore(aws.dynamodb, TABLE)
    assert store.claim(THUMB, OLDER) is None
    read_before = store.owner_record(THUMB)
    assert store.claim(THUMB, NEWER) is None
    aws.s3.put_object(Bucket=OUTPUT_BUCKET, Key=THUMB, Body=b"newer rendition")
    monkeypatch.setattr(store, "owner_record", lambda _key: read_before)
    rewritten = []
    # WHEN the older event deletes the object and then tries to release the key
    removed = ownership.remove_unlisted(
        aws.s3, OUTPUT_BUCKET, store, OLDER, {THUMB}, rewritten.append
    )
    # THEN the refused release makes it put the current picture's rendition back
    assert removed == 1 and rewritten == [{THUMB}]
    assert aws.item(owner_record_name(THUMB))["sequencer"] == NEWER.sequencer


def test_another_sources_key_is_never_deleted_by_a_cleanup(aws):
    store = MetadataStore(aws.dynamodb, TABLE)
    assert store.claim(THUMB, Source(INPUT_BUCKET, "b/photo.jpg", 1, None)) is None
    aws.s3.put_object(Bucket=OUTPUT_BUCKET, Key=THUMB, Body=b"b's rendition")
    mine = Source(INPUT_BUCKET, "a/photo.jpg", 1, None)
    assert ownership.remove_unlisted(aws.s3, OUTPUT_BUCKET, store, mine, {THUMB}, print) == 0
    assert aws.output(THUMB) == b"b's rendition"


@pytest.mark.slow
def test_renditions_written_before_owner_records_existed_are_still_removed_on_delete(aws):
    # GIVEN an item and rendition as the previous version wrote them: no owner record
    _deliver(aws, "old/photo.jpg", images.jpeg(640, 480))
    aws.dynamodb.delete_item(TableName=TABLE, Key=wire.key(owner_record_name(THUMB)))
    # WHEN the original is deleted
    delete = put_event(INPUT_BUCKET, "old/photo.jpg", 0, sequencer="0055AED6DCD90281F0")
    delete["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    process_event(delete, aws.settings("thumbnail"), aws.s3, aws.dynamodb)
    # THEN its rendition goes too
    assert aws.output_keys() == []


def test_source_keys_in_the_owner_records_namespace_are_skipped(aws):
    result = _deliver(aws, owner_record_name("processed/x.jpg"), images.jpeg(64, 64))
    assert result == {"processed": 0, "failed": 0, "skipped": 1}
    assert aws.output_keys() == []
