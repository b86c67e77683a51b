"""Lambda entry point: a thin adapter from the S3 event to `process_event`.

Errors are split in two. A bad image (not an image, truncated, too big) can never succeed,
so it becomes a `failed` item and the handler returns normally. Anything else (throttling,
5xx, timeouts, permissions) is raised so Lambda retries and, in the end, the failure
destination keeps the event. The input object is only ever read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lambda_pkg import imaging
from lambda_pkg.events import S3Record, s3_records
from lambda_pkg.metadata import MetadataStore, Source, failed_item, ok_item
from lambda_pkg.profiles import OUTPUT_PREFIX, Profile, render_key
from lambda_pkg.settings import Settings

logger = logging.getLogger("imgpipe")
logger.setLevel(logging.INFO)

_MISSING_OBJECT_CODES = {"NoSuchKey", "404", "NotFound"}
S3_MAX_KEY_BYTES = 1024  # UTF-8 bytes; a longer key is KeyTooLongError (moto lets it pass)


@dataclass
class Summary:
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"processed": self.processed, "failed": self.failed, "skipped": self.skipped}


class _Runtime:
    """Settings and clients, made once per container (cold start), not per event."""

    settings: Settings | None = None
    s3: Any = None
    dynamodb: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("Event received: %s", json.dumps(event))
    if _Runtime.settings is None:
        import boto3  # provided by the Lambda runtime

        _Runtime.settings = Settings.from_env()
        _Runtime.s3 = boto3.client("s3")
        _Runtime.dynamodb = boto3.client("dynamodb")
    return process_event(event, _Runtime.settings, _Runtime.s3, _Runtime.dynamodb)


def process_event(
    event: dict[str, Any], settings: Settings, s3: Any, dynamodb: Any
) -> dict[str, Any]:
    """Process every record; one record's failure never stops the others."""
    summary = Summary()
    store = MetadataStore(dynamodb, settings.metadata_table)
    first_error: BaseException | None = None
    records = s3_records(event)
    if not records:
        logger.info("No S3 records in the event (for example s3:TestEvent); nothing to do.")
    for record in records:
        try:
            outcome = process_record(record, settings, s3, store)
        except Exception as exc:  # transient or unexpected: raise after the other records
            logger.exception("Record for key %r failed; it will be retried", _safe_key(record))
            summary.errors.append(f"{type(exc).__name__}: {exc}")
            first_error = first_error or exc
            continue
        setattr(summary, outcome, getattr(summary, outcome) + 1)
    if first_error is not None:
        raise first_error
    return summary.as_dict()


def process_record(record: S3Record, settings: Settings, s3: Any, store: MetadataStore) -> str:
    """Handle one record; returns 'processed', 'failed' or 'skipped'."""
    key = record.key
    reason = _skip_reason(record, key, settings)
    if reason:
        logger.info("Skipping key %r: %s", key, reason)
        return "skipped"
    profile = settings.config.profile_for(key)
    if profile is None:
        logger.info("Skipping key %r: no profile route matches it", key)
        return "skipped"
    if record.is_removed:
        return _remove_renditions(record, settings, s3, store)
    logger.info("Processing image from bucket: %s, key: %s", record.bucket, key)

    stored = store.stored_sequencer(key)
    if record.sequencer and stored and stored > record.sequencer:
        logger.info("Skipping key %r: a newer event (%s) was already processed", key, stored)
        return "skipped"

    source = Source(record.bucket, key, record.size or 0, record.sequencer)
    try:
        data, size = _download(s3, record, profile)
    except _Missing:
        logger.warning("Skipping key %r: the object no longer exists", key)
        return "skipped"
    except imaging.ImageRejected as exc:
        return _record_failure(store, source, profile, exc)
    source = Source(record.bucket, key, size, record.sequencer)

    try:
        decoded, outputs = imaging.process(data, profile)
    except imaging.ImageRejected as exc:
        return _record_failure(store, source, profile, exc)
    except MemoryError:
        raise  # a bigger function might succeed: let Lambda retry and keep the event
    except Exception as exc:  # a Pillow bug on hostile bytes is still a bad image
        logger.exception("Unexpected error decoding %r", key)
        return _record_failure(store, source, profile, exc)
    logger.info("Original image size: %dx%d", *decoded.original_size)

    keys = [_output_key(output, key) for output in outputs]
    too_long = next((k for k in keys if len(k.encode()) > S3_MAX_KEY_BYTES), None)
    if too_long is not None:
        # S3 refuses it (KeyTooLongError) on every retry: fail it now, before any write.
        reason = (
            f"output key {too_long[:60]!r}... is {len(too_long.encode()):,} bytes, over S3's "
            f"{S3_MAX_KEY_BYTES:,}-byte key limit; use a shorter key or a flattening profile"
        )
        return _record_failure(store, source, profile, imaging.ImageRejected(reason))
    written = []
    for output, output_key in zip(outputs, keys, strict=True):
        _put_rendition(s3, settings.output_bucket, output_key, output)
        written.append((output_key, output))
    first = outputs[0]
    logger.info("Processed image size: %dx%d", first.width, first.height)

    if store.put(ok_item(source, profile, decoded, written)):
        logger.info("Metadata stored successfully in DynamoDB.")
    else:
        logger.info("Metadata not stored for %r: a newer event recorded it meanwhile", key)
        _settle(record, settings, s3, store, profile, [k for k, _ in written])
    return "processed"


SETTLE_ROUNDS = 3


def _settle(
    record: S3Record,
    settings: Settings,
    s3: Any,
    store: MetadataStore,
    profile: Profile,
    written: list[str],
) -> None:
    """A newer event stored its item while this one rendered, so the renditions just written
    (same keys: they are deterministic) may hold older bytes than that item describes.
    Render the current object again, which gives the newer event's bytes back (rendering is
    deterministic), and delete what this event wrote that the item does not list (the newer
    upload failed, or was deleted). Repeat while yet newer events land meanwhile."""
    for _ in range(SETTLE_ROUNDS):
        newest = store.item(record.key) or {}
        listed: set[str] = set()
        if newest.get("status") == "ok" and newest.get("profile_hash") == profile.content_hash():
            listed = {r["key"] for r in newest.get("renditions", [])}
            _rewrite(record, settings, s3, profile, listed)
        for key in set(written) - listed:
            s3.delete_object(Bucket=settings.output_bucket, Key=key)
        if (store.item(record.key) or {}).get("sequencer") == newest.get("sequencer"):
            logger.info("Renditions of %r settled on the newest item", record.key)
            return
    raise RuntimeError(f"renditions of {record.key!r} did not settle: the key keeps changing")


def _rewrite(
    record: S3Record, settings: Settings, s3: Any, profile: Profile, listed: set[str]
) -> None:
    """Write the current object's renditions to the keys the newest item lists."""
    try:
        data, _size = _download(s3, record, profile)
        _decoded, outputs = imaging.process(data, profile)
    except (_Missing, imaging.ImageRejected):
        return  # the object changed again; its own event brings item and renditions along
    for output in outputs:
        output_key = _output_key(output, record.key)
        if output_key in listed:
            _put_rendition(s3, settings.output_bucket, output_key, output)


def _output_key(output: imaging.Output, source_key: str) -> str:
    rendition = output.rendition
    return render_key(rendition.key, source_key, rendition.name, output.extension)


def _put_rendition(s3: Any, bucket: str, key: str, output: imaging.Output) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=output.data, ContentType=output.content_type)


def _skip_reason(record: S3Record, key: str, settings: Settings) -> str | None:
    if not (record.is_created or record.is_removed):
        return f"event {record.event_name!r} is neither an object creation nor a removal"
    if key.endswith("/"):
        return "a folder marker, not an object"
    if record.bucket == settings.output_bucket and key.startswith(OUTPUT_PREFIX):
        return f"it is one of our own outputs (under {OUTPUT_PREFIX}); processing it would loop"
    return None


def _remove_renditions(record: S3Record, settings: Settings, s3: Any, store: MetadataStore) -> str:
    """The original was deleted: remove its renditions; the item stays, marked `deleted`."""
    key = record.key
    item = store.mark_deleted(key, record.sequencer)
    if item is None:
        logger.info("Skipping removal of %r: no item, or a newer event already recorded one", key)
        return "skipped"
    removed = 0
    for rendition in item.get("renditions") or []:
        output_key = rendition.get("key")
        # Only our own outputs: the item is data, and must never steer a delete elsewhere.
        if isinstance(output_key, str) and output_key.startswith(OUTPUT_PREFIX):
            s3.delete_object(Bucket=settings.output_bucket, Key=output_key)
            removed += 1
    logger.info(
        "Original %r was deleted: removed %d rendition(s), item marked deleted", key, removed
    )
    return "processed"


class _Missing(Exception):
    pass


def _download(s3: Any, record: S3Record, profile: Profile) -> tuple[bytes, int]:
    """Fetch the object, refusing before the body is read when it is over the size limit."""
    if record.size is not None:
        _check_size(record.size, profile)
    try:
        response = s3.get_object(Bucket=record.bucket, Key=record.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING_OBJECT_CODES:
            raise _Missing from exc
        raise
    size = int(response.get("ContentLength", 0))
    body = response["Body"]
    try:
        _check_size(size, profile)
        data = body.read()
    finally:
        body.close()
    return data, len(data)


def _check_size(size: int, profile: Profile) -> None:
    if size == 0:
        raise imaging.ImageRejected("the object is empty (0 bytes)")
    if size > profile.max_bytes:
        raise imaging.ImageRejected(
            f"object is {size:,} bytes, over the profile's max_bytes of {profile.max_bytes:,}"
        )


def _record_failure(store: MetadataStore, source: Source, profile: Profile, exc: Exception) -> str:
    logger.warning("Image %r failed: %s: %s", source.key, type(exc).__name__, exc)
    store.put(failed_item(source, profile, exc))
    logger.info("Metadata stored successfully in DynamoDB.")
    return "failed"


def _safe_key(record: S3Record) -> str:
    try:
        return record.key
    except (KeyError, TypeError):
        return "<no key>"
