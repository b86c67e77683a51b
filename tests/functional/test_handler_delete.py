"""The handler on s3:ObjectRemoved: renditions removed, the item kept and marked `deleted`."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from lambda_pkg import wire
from lambda_pkg.handler import process_event
from lambda_pkg.metadata import SEED_ATTRIBUTES
from tests.support import images
from tests.support.aws import INPUT_BUCKET, OUTPUT_BUCKET, delete_event, put_event

CREATED = "0055AED6DCD90281E5"
DELETED = "0055AED6DCD90281E6"  # later than CREATED
EARLIER = "0055AED6DCD90281E4"


def upload_and_process(aws, key: str, profile: str = "web", sequencer: str = CREATED) -> dict:
    data = images.jpeg(900, 600)
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, quote_plus(key, safe="/"), len(data), sequencer=sequencer)
    process_event(event, aws.settings(profile), aws.s3, aws.dynamodb)
    return aws.item(key)


def test_delete_removes_every_rendition_and_marks_the_item_deleted(aws):
    # GIVEN an image processed with the web profile (7 renditions)
    before = upload_and_process(aws, "gallery/cat.jpg")
    assert len(aws.output_keys()) == 7
    # WHEN the original is deleted and S3 reports it
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="gallery/cat.jpg")
    result = process_event(
        delete_event(INPUT_BUCKET, "gallery/cat.jpg", DELETED),
        aws.settings("web"),
        aws.s3,
        aws.dynamodb,
    )
    # THEN the renditions are gone
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    assert aws.output_keys() == []
    # AND the record is kept, with status deleted and deleted_at; what it listed moved to
    # removed_renditions (a deleted item owns nothing), every other attribute intact
    after = aws.item("gallery/cat.jpg")
    assert after["status"] == "deleted"
    assert after["deleted_at"].endswith("Z")
    assert after["sequencer"].startswith(DELETED)
    assert after["renditions"] == []
    assert after["removed_renditions"] == before["renditions"]
    changed = ("status", "sequencer", "renditions", "timestamp", "revision")
    unchanged = {k: v for k, v in before.items() if k not in changed}
    assert {k: after[k] for k in unchanged} == unchanged


def test_url_encoded_key_in_a_delete_event_is_decoded(aws):
    upload_and_process(aws, "my photos/a+b.jpg", profile="thumbnail")
    assert aws.output_keys() == ["processed/thumb_a+b.jpg"]
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="my photos/a+b.jpg")
    process_event(
        delete_event(INPUT_BUCKET, "my+photos/a%2Bb.jpg", DELETED),
        aws.settings(),
        aws.s3,
        aws.dynamodb,
    )
    assert aws.output_keys() == []
    assert aws.item("my photos/a+b.jpg")["status"] == "deleted"


def test_delete_of_an_unknown_key_leaves_a_tombstone_that_an_older_create_cannot_beat(aws):
    # GIVEN a delete handled before the create of the same object (S3 delivers out of order)
    result = process_event(
        delete_event(INPUT_BUCKET, "never-seen.jpg", DELETED), aws.settings(), aws.s3, aws.dynamodb
    )
    # THEN a tombstone records the delete and its sequencer, and removes nothing
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    tombstone = aws.item("never-seen.jpg")
    assert tombstone["status"] == "deleted"
    assert tombstone["sequencer"].startswith(DELETED)
    assert tombstone["renditions"] == []
    assert {name: tombstone[name] for name in SEED_ATTRIBUTES[1:-1]} == dict.fromkeys(
        SEED_ATTRIBUTES[1:-1], 0
    )
    # WHEN the older create arrives (the object is still readable: a stale replica)
    aws.upload("never-seen.jpg", images.jpeg(640, 480))
    created = put_event(INPUT_BUCKET, "never-seen.jpg", 100, sequencer=CREATED)
    result = process_event(created, aws.settings(), aws.s3, aws.dynamodb)
    # THEN it writes nothing and the item stays deleted
    assert result["skipped"] == 1
    assert aws.output_keys() == []
    assert aws.item("never-seen.jpg")["status"] == "deleted"


@pytest.mark.slow
def test_an_older_delete_never_removes_a_newer_uploads_renditions(aws):
    # GIVEN the key was re-uploaded and processed after the delete S3 reports late
    upload_and_process(aws, "k.jpg", profile="thumbnail", sequencer=CREATED)
    # WHEN a delete older than that upload arrives
    result = process_event(
        delete_event(INPUT_BUCKET, "k.jpg", EARLIER), aws.settings(), aws.s3, aws.dynamodb
    )
    # THEN nothing is removed and the item stays ok
    assert result["skipped"] == 1
    assert aws.output_keys() == ["processed/thumb_k.jpg"]
    assert aws.item("k.jpg")["status"] == "ok"


def test_an_older_create_after_the_delete_does_not_resurrect_the_item(aws):
    upload_and_process(aws, "k.jpg", profile="thumbnail", sequencer=CREATED)
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="k.jpg")
    process_event(
        delete_event(INPUT_BUCKET, "k.jpg", DELETED), aws.settings(), aws.s3, aws.dynamodb
    )
    # WHEN the original create is redelivered (a retry)
    aws.upload("k.jpg", images.jpeg(300, 200))  # even if the object were there again
    redelivered = put_event(INPUT_BUCKET, "k.jpg", 100, sequencer=CREATED)
    result = process_event(redelivered, aws.settings(), aws.s3, aws.dynamodb)
    # THEN it is skipped: the delete is newer
    assert result["skipped"] == 1
    assert aws.item("k.jpg")["status"] == "deleted"
    assert aws.output_keys() == []


def test_redelivered_delete_is_idempotent(aws):
    upload_and_process(aws, "k.jpg", profile="thumbnail")
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="k.jpg")
    event = delete_event(INPUT_BUCKET, "k.jpg", DELETED)
    process_event(event, aws.settings(), aws.s3, aws.dynamodb)
    first = aws.item("k.jpg")
    result = process_event(event, aws.settings(), aws.s3, aws.dynamodb)
    assert result == {"processed": 1, "failed": 0, "skipped": 0}
    assert aws.item("k.jpg")["removed_renditions"] == first["removed_renditions"]
    assert aws.output_keys() == []


def test_a_failed_rendition_delete_is_raised_and_the_retry_finishes(aws, monkeypatch):
    # GIVEN S3 fails the rendition delete once (a transient error)
    upload_and_process(aws, "k.jpg", profile="thumbnail")
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="k.jpg")
    event = delete_event(INPUT_BUCKET, "k.jpg", DELETED)
    real_delete = aws.s3.delete_object
    error = ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "DeleteObject")
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise error
        return real_delete(**kwargs)

    monkeypatch.setattr(aws.s3, "delete_object", flaky)
    # WHEN the first attempt fails, it raises (Lambda retries, then the DLQ keeps it)
    try:
        process_event(event, aws.settings(), aws.s3, aws.dynamodb)
        raise AssertionError("expected the SlowDown to be raised")
    except ClientError as exc:
        assert exc is error
    # THEN the retry (same sequencer) removes the renditions
    process_event(event, aws.settings(), aws.s3, aws.dynamodb)
    assert aws.output_keys() == []
    assert aws.item("k.jpg")["status"] == "deleted"


def test_only_keys_under_processed_are_ever_deleted(aws):
    # GIVEN an item whose renditions list was tampered with to name an original
    upload_and_process(aws, "k.jpg", profile="thumbnail")
    aws.s3.put_object(Bucket=OUTPUT_BUCKET, Key="precious.jpg", Body=b"x")
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="k.jpg")
    aws.dynamodb.update_item(
        TableName="imgpipe-test-metadata",
        Key=wire.key("k.jpg"),
        UpdateExpression="SET renditions = list_append(renditions, :evil)",
        ExpressionAttributeValues={":evil": {"L": [{"M": {"key": {"S": "precious.jpg"}}}]}},
    )
    process_event(
        delete_event(INPUT_BUCKET, "k.jpg", DELETED), aws.settings(), aws.s3, aws.dynamodb
    )
    assert aws.output_keys() == ["precious.jpg"]
