"""cli.listing: one entry per image from the table, the input bucket and the DLQ."""

from __future__ import annotations

import datetime as dt
import json
import re

from lambda_pkg.events import s3_event
from pipeline.cli.listing import JSON_FIELDS, STATUSES, Listed, entries, from_item, select
from pipeline.cli.ops import DeadLetter
from tests.support import REPO

T0 = dt.datetime(2026, 12, 2, 4, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> str:
    """An item's or a failure record's timestamp, `seconds` after T0."""
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def upload(seconds: int, size: int = 1234) -> dict:
    """The input bucket's listing entry: LastModified in whole seconds, as S3 gives it."""
    return {"Size": size, "LastModified": T0 + dt.timedelta(seconds=seconds)}


def letter(key: str, seconds: float, message: str = "boom") -> DeadLetter:
    record = {
        "timestamp": at(seconds),
        "requestPayload": s3_event("in", key, 1, "00", "ObjectCreated:Put"),
        "responsePayload": {"errorType": "RuntimeError", "errorMessage": message},
    }
    return DeadLetter("receipt", record)


def item(key: str, status: str, seconds: float, **extra) -> dict:
    return {"image_name": key, "status": status, "timestamp": at(seconds), **extra}


def statuses(listed: list[Listed]) -> dict[str, str]:
    return {entry.key: entry.status for entry in listed}


def test_an_upload_without_an_item_is_pending_and_one_with_a_result_is_not():
    listed = entries(
        [item("done.jpg", "ok", 5)],
        {"done.jpg": upload(4), "new.jpg": upload(6, size=99)},
        {},
    )
    assert statuses(listed) == {"done.jpg": "ok", "new.jpg": "pending"}
    assert listed[1] == Listed(
        "new.jpg", "pending", original_bytes=99, updated="2026-12-02T04:00:06.000000Z"
    )


def test_an_upload_newer_than_its_item_is_pending_without_the_older_figures():
    # GIVEN an ok item from 04:00:05.5 and the same key uploaded again at 04:00:07
    older = item("a.jpg", "ok", 5.5, original_width=40, original_height=30, renditions=[{}])
    (entry,) = entries([older], {"a.jpg": upload(7)}, {})
    assert (entry.status, entry.original_width, entry.renditions) == ("pending", None, ())
    # AND an upload within the same second as the result (S3 says 04:00:05) is not newer
    (entry,) = entries([older], {"a.jpg": upload(5)}, {})
    assert entry.status == "ok"


def test_a_failure_record_lists_an_image_as_dlq_unless_a_result_or_upload_came_after():
    listed = entries(
        [
            item("kept.jpg", "ok", 5),  # a final result: the record cannot overrule it
            item("gone.jpg", "deleted", 5),  # deleted after the record: deleted
            item("undone.jpg", "deleted", 5),  # a record after the delete: dlq
            item("retry.jpg", "ok", 1),  # uploaded again, failed again: dlq
        ],
        {"retry.jpg": upload(3), "later.jpg": upload(9), "lost.jpg": upload(2)},
        {
            "kept.jpg": letter("kept.jpg", 8),
            "gone.jpg": letter("gone.jpg", 4),
            "undone.jpg": letter("undone.jpg", 6),
            "retry.jpg": letter("retry.jpg", 4),
            "later.jpg": letter("later.jpg", 8),  # uploaded again since: pending
            "lost.jpg": letter("lost.jpg", 3, "Task timed out"),
            "orphan.jpg": letter("orphan.jpg", 3),  # no item, no object: still dlq
        },
    )
    assert statuses(listed) == {
        "gone.jpg": "deleted",
        "kept.jpg": "ok",
        "later.jpg": "pending",
        "lost.jpg": "dlq",
        "orphan.jpg": "dlq",
        "retry.jpg": "dlq",
        "undone.jpg": "dlq",
    }
    lost = next(entry for entry in listed if entry.key == "lost.jpg")
    assert (lost.error, lost.original_bytes) == ("RuntimeError: Task timed out", 1234)
    assert lost.updated == at(3)


def test_json_has_exactly_the_documented_fields_in_order():
    entry = from_item(
        item(
            "a.jpg",
            "ok",
            5,
            profile="web",
            original_width=1920,
            original_height=1080,
            original_size_bytes=500_000,
            renditions=[{"key": "processed/a", "bytes": 300}, {"key": "processed/b", "bytes": 20}],
        )
    )
    line = entry.to_json()
    assert "\n" not in line
    assert list(json.loads(line).items()) == [
        ("key", "a.jpg"),
        ("status", "ok"),
        ("profile", "web"),
        ("original_width", 1920),
        ("original_height", 1080),
        ("original_bytes", 500_000),
        ("renditions", 2),
        ("rendition_bytes", 320),
        ("error", None),
        ("updated", at(5)),
    ]
    failed = json.loads(from_item(item("b.jpg", "failed", 1, error="not an image")).to_json())
    assert (failed["error"], failed["renditions"], failed["original_width"]) == (
        "not an image",
        0,
        None,
    )
    assert tuple(failed) == JSON_FIELDS


def test_the_readme_documents_every_json_field_and_status():
    local = re.search(
        r"<!-- BEGIN LOCAL -->(.*)<!-- END LOCAL -->", (REPO / "README.md").read_text(), re.S
    )
    assert local
    for name in (*JSON_FIELDS, *STATUSES, "--json", "--status", "--prefix"):
        assert f"`{name}`" in local[1], name
    assert "`imgpipe --version`" in local[1]


def test_select_keeps_the_asked_statuses():
    listed = [Listed("a", "ok"), Listed("b", "dlq"), Listed("c", "pending")]
    assert select(listed, None) == listed
    assert [entry.key for entry in select(listed, ["dlq", "pending"])] == ["b", "c"]


def test_a_row_is_the_table_columns():
    assert Listed("a.jpg", "dlq", error="RuntimeError: x").row() == (
        "a.jpg",
        "-",
        "-",
        "dlq",
        "RuntimeError: x",
    )
