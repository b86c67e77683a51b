"""At-least-once, any-order delivery against the handler (moto in-process): duplicates,
older-after-newer, races between two deliveries, and what must never be processed."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_pkg.events import normalise_sequencer
from lambda_pkg.handler import process_event
from lambda_pkg.metadata import MetadataStore
from lambda_pkg.profiles import load_named
from tests.support import images
from tests.support.aws import INPUT_BUCKET, OUTPUT_BUCKET, load_event, put_event

HEX = st.text("0123456789ABCDEF", min_size=1, max_size=24)


def _padded_order(a: str, b: str) -> int:
    """S3's rule, spelled out: right-pad the shorter with zeros, then compare as strings."""
    width = max(len(a), len(b))
    a, b = a.ljust(width, "0"), b.ljust(width, "0")
    return (a > b) - (a < b)


@given(HEX, HEX)
@settings(max_examples=300, derandomize=True)
def test_normalised_sequencers_order_exactly_as_s3_says(a, b):
    ours = normalise_sequencer(a.lower()), normalise_sequencer(b)
    assert ((ours[0] > ours[1]) - (ours[0] < ours[1])) == _padded_order(a, b)


def _deliver(aws, key, data, sequencer, profile="web"):
    event = put_event(INPUT_BUCKET, key, len(data), sequencer=sequencer)
    return process_event(event, aws.settings(profile), aws.s3, aws.dynamodb)


def _renditions_match_outputs(aws, item):
    for rendition in item["renditions"]:
        head = aws.s3.head_object(Bucket=OUTPUT_BUCKET, Key=rendition["key"])
        assert head["ContentLength"] == rendition["bytes"], rendition["key"]


def test_three_deliveries_give_one_item_and_identical_rendition_bytes(aws):
    data = images.jpeg(1200, 800)
    aws.upload("dup/a.jpg", data)
    snapshots = []
    for _ in range(3):
        _deliver(aws, "dup/a.jpg", data, "0055AED6DCD90281E5")
        item = aws.item("dup/a.jpg")
        outputs = {r["key"]: aws.output(r["key"]) for r in item["renditions"]}
        del item["timestamp"], item["revision"]  # when it was written, not what
        snapshots.append((item, outputs))
    assert snapshots[0] == snapshots[1] == snapshots[2]
    # one object per format of each rendition
    assert len(aws.output_keys()) == sum(len(r.formats) for r in load_named("web").renditions)


def test_output_keys_are_a_function_of_the_key_and_profile_only(aws):
    data = images.jpeg(900, 600)
    aws.upload("k/x.jpg", data)
    _deliver(aws, "k/x.jpg", data, "01")
    first = [r["key"] for r in aws.item("k/x.jpg")["renditions"]]
    _deliver(aws, "k/x.jpg", data, "02")
    assert [r["key"] for r in aws.item("k/x.jpg")["renditions"]] == first
    assert aws.output_keys() == sorted(first)


def test_a_shorter_newer_sequencer_beats_a_longer_older_one(aws):
    # "0056" padded is 005600..., newer than "0055FFFFFFFF": string length must not decide
    data = images.jpeg(400, 300)
    aws.upload("pad.jpg", data)
    _deliver(aws, "pad.jpg", data, "0056", profile="thumbnail")
    result = _deliver(aws, "pad.jpg", data, "0055FFFFFFFF", profile="thumbnail")
    assert result["skipped"] == 1
    assert aws.item("pad.jpg")["sequencer"] == normalise_sequencer("0056")


def test_an_older_event_that_passed_the_early_check_loses_the_conditional_write(aws):
    # GIVEN the newer event stored its item while the older one was already past the early
    # skip (it read no stored sequencer): the race the conditional write exists for
    data = images.jpeg(640, 480)
    aws.upload("race.jpg", data)
    _deliver(aws, "race.jpg", data, "0055AED6DCD90281F0", profile="thumbnail")
    newer_item = aws.item("race.jpg")
    with mock.patch.object(MetadataStore, "stored_sequencer", return_value=None):
        result = _deliver(aws, "race.jpg", data, "0055AED6DCD90281E5", profile="thumbnail")
    # THEN it writes nothing (the newer event holds the output key) and the item is still
    # the newer event's
    assert result["skipped"] == 1
    after = aws.item("race.jpg")
    assert (
        after["sequencer"] == newer_item["sequencer"] == normalise_sequencer("0055AED6DCD90281F0")
    )
    assert after["timestamp"] == newer_item["timestamp"]
    _renditions_match_outputs(aws, after)


def _older_bytes_first(aws, old: bytes):
    """get_object that returns the object as it was before an overwrite, once: the older
    event read the old bytes before the newer upload replaced them."""
    real_get = aws.s3.get_object
    served = []

    def get(**kwargs):
        if not served:
            served.append(True)
            return {"Body": io.BytesIO(old), "ContentLength": len(old)}
        return real_get(**kwargs)

    return mock.patch.object(aws.s3, "get_object", side_effect=get)


def test_an_older_upload_finishing_last_leaves_the_newer_renditions(aws):
    # GIVEN the object was overwritten and the newer event processed the new bytes
    old, new = images.jpeg(640, 480), images.jpeg(900, 300)
    aws.upload("swap.jpg", new)
    _deliver(aws, "swap.jpg", new, "0055AED6DCD90281F0", profile="web")
    newer = aws.item("swap.jpg")
    newer_outputs = {r["key"]: aws.output(r["key"]) for r in newer["renditions"]}

    # WHEN the older event, which read the old bytes and passed the early check before the
    # newer item existed, writes its renditions last
    with (
        mock.patch.object(MetadataStore, "stored_sequencer", return_value=None),
        _older_bytes_first(aws, old),
    ):
        _deliver(aws, "swap.jpg", old, "0055AED6DCD90281E5", profile="web")

    # THEN the item is the newer one and every rendition holds the newer upload's bytes
    assert aws.item("swap.jpg") == newer
    assert {r["key"]: aws.output(r["key"]) for r in newer["renditions"]} == newer_outputs
    assert aws.output_keys() == sorted(newer_outputs)


def test_an_older_upload_finishing_after_a_delete_leaves_no_renditions(aws):
    # GIVEN an upload processed, then the original deleted (renditions removed)
    data = images.jpeg(640, 480)
    aws.upload("gone.jpg", data)
    _deliver(aws, "gone.jpg", data, "0055AED6DCD90281F0", profile="web")
    aws.s3.delete_object(Bucket=INPUT_BUCKET, Key="gone.jpg")
    delete = put_event(INPUT_BUCKET, "gone.jpg", 0, sequencer="0055AED6DCD90281F5")
    delete["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    process_event(delete, aws.settings("web"), aws.s3, aws.dynamodb)
    assert aws.output_keys() == []

    # WHEN an older upload event that read the bytes before the delete finishes last
    with (
        mock.patch.object(MetadataStore, "stored_sequencer", return_value=None),
        _older_bytes_first(aws, data),
    ):
        _deliver(aws, "gone.jpg", data, "0055AED6DCD90281E5", profile="web")

    # THEN nothing it wrote survives, and the item still says deleted
    assert aws.output_keys() == []
    assert aws.item("gone.jpg")["status"] == "deleted"


@contextmanager
def _one_s3_request_at_a_time(aws) -> Iterator[None]:
    """In-process moto's S3 object is not thread-safe (a concurrent overwrite closes the
    buffer another request is reading); real S3 is. Requests still interleave freely,
    each is just atomic, as S3's are."""
    lock = threading.Lock()
    patches = []
    for name in ("put_object", "get_object"):
        real = getattr(aws.s3, name)

        def locked(real=real, **kwargs):
            with lock:
                response = real(**kwargs)
                if "Body" in response:  # read under the lock too: the body is moto's buffer
                    response["Body"] = io.BytesIO(response["Body"].read())
                return response

        patches.append(mock.patch.object(aws.s3, name, side_effect=locked))
    with patches[0], patches[1]:
        yield


def test_two_concurrent_deliveries_for_one_key_end_in_one_consistent_state(aws):
    # GIVEN one object and two deliveries racing, rounds with equal and with different
    # sequencers (a duplicate, and an overwrite whose events arrive together)
    data = images.jpeg(1600, 1000)
    aws.upload("both.jpg", data)
    for round_, sequencers in enumerate((("0A", "0A"), ("0B", "0C"), ("0E", "0D"))):
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def deliver(
            sequencer: str, barrier=barrier, errors=errors, prefix: str = str(round_)
        ) -> None:
            barrier.wait()
            try:
                _deliver(aws, "both.jpg", data, f"{prefix}{sequencer}")
            except BaseException as exc:  # surfaced below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=deliver, args=(s,)) for s in sequencers]
        with _one_s3_request_at_a_time(aws):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert not errors
        # THEN the item carries the highest sequencer and every rendition it names exists
        item = aws.item("both.jpg")
        assert item["status"] == "ok"
        assert item["sequencer"] == normalise_sequencer(f"{round_}{max(sequencers)}")
        _renditions_match_outputs(aws, item)
        assert set(aws.output_keys()) == {r["key"] for r in item["renditions"]}


def test_what_must_never_be_processed_is_skipped_or_failed_never_looped(aws):
    events = {
        "test event": load_event("aws_docs_s3_TestEvent"),
        "folder marker": put_event(INPUT_BUCKET, "photos/2024/", 0),
        "our own output": put_event(OUTPUT_BUCKET, "processed/thumb_a.jpg", 100),
        "empty Records": {"Records": []},
        "not S3 at all": {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]},
    }
    for why, event in events.items():
        result = process_event(event, aws.settings("thumbnail"), aws.s3, aws.dynamodb)
        assert result["processed"] == result["failed"] == 0, why
    # AND a zero-byte object is a failed item with a reason, refused before download
    aws.upload("zero.jpg", b"")
    with mock.patch.object(aws.s3, "get_object", side_effect=AssertionError("downloaded")):
        result = process_event(
            put_event(INPUT_BUCKET, "zero.jpg", 0), aws.settings(), aws.s3, aws.dynamodb
        )
    assert result["failed"] == 1 and "empty" in aws.item("zero.jpg")["error"]
    assert aws.output_keys() == []
