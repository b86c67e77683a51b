"""`imgpipe ls`: every image the stack has seen, one entry each, from three sources.

The metadata table says what the function made of an image; the input bucket holds the
uploads it has not finished yet (no item, or an item older than the upload); the
dead-letter queue holds the events whose retries ran out. An image is in exactly one of
STATUSES: the table's `ok`, `failed` and `deleted`, `dlq` (its retries ran out and no
result came after) or `pending` (uploaded, not processed yet).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambda_pkg import records
from pipeline.cli import ops, report
from pipeline.cli.targets import Target

STATUS_DLQ = report.DEAD_LETTERED
STATUS_PENDING = "pending"
STATUSES = (
    records.STATUS_OK,
    records.STATUS_FAILED,
    records.STATUS_DELETED,
    STATUS_DLQ,
    STATUS_PENDING,
)
# `imgpipe ls --json`: one object per image with exactly these fields, in this order.
# Scripts read them: rename none, and document a new one in the README.
JSON_FIELDS = (
    "key",
    "status",
    "profile",
    "original_width",
    "original_height",
    "original_bytes",
    "renditions",
    "rendition_bytes",
    "error",
    "updated",
)


@dataclass(frozen=True)
class Listed:
    """One image as `ls` shows it. None: not known (e.g. the size of an unprocessed upload)."""

    key: str
    status: str
    profile: str | None = None
    original_width: int | None = None
    original_height: int | None = None
    original_bytes: int | None = None
    renditions: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    updated: str | None = None  # ISO-8601 UTC: the item's, the upload's or the failure's time

    def row(self) -> tuple[str, ...]:
        """The table's columns: report.HEADER."""
        width, height = self.original_width, self.original_height
        original = f"{width}x{height}" if width and height else "-"
        sizes = report.renditions_summary({"renditions": list(self.renditions)})
        return (self.key, original, sizes, self.status, self.error or "")

    def to_json(self) -> str:
        counted = {
            "renditions": len(self.renditions),
            "rendition_bytes": sum(int(r.get("bytes", 0)) for r in self.renditions),
        }
        return json.dumps(
            {
                name: counted[name] if name in counted else getattr(self, name)
                for name in JSON_FIELDS
            }
        )


def from_item(item: Mapping[str, Any]) -> Listed:
    return Listed(
        key=item[records.TABLE_KEY],
        status=item.get("status") or "?",
        profile=item.get("profile"),
        original_width=item.get("original_width") or None,
        original_height=item.get("original_height") or None,
        original_bytes=item.get("original_size_bytes"),
        renditions=tuple(item.get("renditions") or ()),
        error=item.get("error"),
        updated=item.get("timestamp"),
    )


def entries(
    images: Iterable[Mapping[str, Any]],
    uploads: Mapping[str, Mapping[str, Any]],
    letters: Mapping[str, ops.DeadLetter],
) -> list[Listed]:
    """Every key of the three sources, by key. `uploads` are the input bucket's listing
    entries (`Size`, `LastModified`) of routed keys; `letters` each key's latest failure."""
    by_key = {item[records.TABLE_KEY]: item for item in images}
    return [
        _entry(key, by_key.get(key), uploads.get(key), letters.get(key))
        for key in sorted(by_key.keys() | uploads.keys() | letters.keys())
    ]


def _entry(
    key: str,
    item: Mapping[str, Any] | None,
    upload: Mapping[str, Any] | None,
    letter: ops.DeadLetter | None,
) -> Listed:
    """The newest of the three decides, except that an ok or failed result is never
    overruled by a failure record: such a record is older, or from a re-run of the same
    upload that left the result in place."""
    stamp = (item or {}).get("timestamp")
    if item is not None and not _upload_is_newer(upload, stamp):
        final = item.get("status") in records.FINAL_STATUSES
        if letter is None or final or not _later(letter.timestamp, stamp):
            return from_item(item)
        return _dead_lettered(key, letter, upload)
    if letter is not None and not _upload_is_newer(upload, letter.timestamp):
        return _dead_lettered(key, letter, upload)
    # An upload the function has not finished: an older item's figures do not describe it.
    assert upload is not None  # the key came from somewhere
    return Listed(key, STATUS_PENDING, original_bytes=upload.get("Size"), updated=_iso(upload))


def _dead_lettered(key: str, letter: ops.DeadLetter, upload: Mapping[str, Any] | None) -> Listed:
    size = upload.get("Size") if upload else None
    return Listed(
        key, STATUS_DLQ, original_bytes=size, error=letter.error, updated=letter.timestamp
    )


def _upload_is_newer(upload: Mapping[str, Any] | None, than: str | None) -> bool:
    """Whether the upload came after `than` (an ISO-8601 time). S3 gives LastModified in
    whole seconds, so an upload in the same second as the result before it is not seen as
    newer: ls shows that result until the upload's own replaces it."""
    if upload is None or "LastModified" not in upload:
        return False
    return _later(_iso(upload), than)


def _later(first: str | None, second: str | None) -> bool:
    """first > second as times; an unknown second time counts as earlier."""
    one, two = _parse(first), _parse(second)
    return one is not None and (two is None or one > two)


def _parse(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _iso(upload: Mapping[str, Any]) -> str:
    modified: dt.datetime = upload["LastModified"]
    return modified.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def select(listed: Iterable[Listed], statuses: Iterable[str] | None = None) -> list[Listed]:
    """The entries with one of `statuses` (all of them when none is given)."""
    wanted = set(statuses or ())
    return [entry for entry in listed if not wanted or entry.status in wanted]


def gather(
    target: Target, prefix: str = "", items: list[dict[str, Any]] | None = None
) -> list[Listed]:
    """What `imgpipe ls` lists: the table, the routed input objects and the dead-letter
    queue (only peeked at: `dlq redrive` still finds every record), under `prefix`.
    `items`: the table's, when the caller has scanned it already (the gallery)."""
    routed = _routed(target)
    scanned = ops.items(target) if items is None else items
    images = [item for item in scanned if item[records.TABLE_KEY].startswith(prefix)]
    uploads = {obj["Key"]: obj for obj in ops.input_objects(target, prefix) if routed(obj["Key"])}
    letters = {
        key: letter for key, letter in ops.dead_lettered(target).items() if key.startswith(prefix)
    }
    return entries(images, uploads, letters)


def without_item(target: Target, key: str) -> str:
    """Why `key` has no item, for `show`: where `ls` would list it, if anywhere."""
    letter = ops.dead_lettered(target).get(key)
    if letter is not None:
        return (
            f"its event is on the dead-letter queue ({letter.error}); "
            "`imgpipe dlq redrive` sends it again"
        )
    upload = next((obj for obj in ops.input_objects(target, key) if obj["Key"] == key), None)
    if upload is None:
        return "there is no such input object"
    if not _routed(target)(key):
        return "no profile route matches the key, so the function never sees it"
    return f"uploaded {_iso(upload)}, not processed yet"


def _routed(target: Target) -> Callable[[str], bool]:
    """Whether the function gets an event for a key: an object no route matches, or a
    folder marker, never becomes an image, so it is never pending."""
    try:
        config = ops.current_config(target)
    except (ClientError, KeyError):  # no function to ask (a bare emulator): every object
        return lambda key: not key.endswith("/")
    return lambda key: not key.endswith("/") and config.profile_for(key) is not None
