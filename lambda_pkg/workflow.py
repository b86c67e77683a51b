"""One S3 record, start to finish: route, order, render, claim, write, store, clean up.

What holds after every record, whatever the order and repetition of events:
- an `ok` item's renditions exist and hold what it records; no other item lists them;
- a newer event's result is never overwritten by an older one (S3's `sequencer`);
- once the item changes, what the previous one listed and the new one does not is removed
  (a failed overwrite, other keys after a profile change, a delete);
- a delete that overtakes its create leaves a tombstone, so the create writes nothing.
The input object is only ever read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from lambda_pkg import clients, imaging, isolated, ownership
from lambda_pkg.budget import Budget, BudgetExceeded, ChildCrashed, Unavailable
from lambda_pkg.events import S3Record
from lambda_pkg.metadata import (
    MetadataStore,
    Source,
    deleted_item,
    failed_item,
    listed_keys,
    newer_than,
    ok_item,
)
from lambda_pkg.outcomes import DETAIL_TYPES, Publisher
from lambda_pkg.profiles import OUTPUT_PREFIX, Profile, render_key, source_hash
from lambda_pkg.records import is_reserved_source_key
from lambda_pkg.settings import Settings
from lambda_pkg.timings import CLAIM, GET, ITEM, PUBLISH, PUT, Timings

logger = logging.getLogger("imgpipe")

_MISSING_OBJECT_CODES = {"NoSuchKey", "404", "NotFound"}
# What an image can end with that a retry cannot change: a failed item.
_BAD_IMAGE = (imaging.ImageRejected, BudgetExceeded, ChildCrashed)
S3_MAX_KEY_BYTES = 1024  # UTF-8 bytes; a longer key is KeyTooLongError (moto lets it pass)
STORE_ATTEMPTS = 5  # compare-and-swap rounds while other events for the key keep landing
SETTLE_ROUNDS = 3


class Outcome(StrEnum):
    """How one record ended; the value is the handler summary's count name."""

    PROCESSED = "processed"
    FAILED = "failed"
    SKIPPED = "skipped"


class _Missing(Exception):
    pass


class _Record:
    """The clients and facts one record's work shares."""

    def __init__(
        self,
        record: S3Record,
        settings: Settings,
        s3: Any,
        store: MetadataStore,
        budget: Budget,
        publisher: Publisher | None,
    ) -> None:
        self.record, self.settings, self.s3, self.store = record, settings, s3, store
        self.key, self.budget, self.publisher = record.key, budget, publisher
        self.timings = Timings()  # this record's only: nothing carries over to the next

    def source(self, size: int = 0) -> Source:
        return Source(self.record.bucket, self.key, size, self.record.sequencer)

    def is_older_than(self, item: dict[str, Any] | None) -> bool:
        return newer_than(item, self.record.sequencer)

    def unlisted(self, new_item: dict[str, Any] | None, *also: Iterable[str]) -> set[str]:
        """Keys this source owns, or may, that `new_item` does not list: what the owner
        index says (also claims of invocations that died before storing their item) plus
        `also` (keys just written or read from the replaced item, which the eventually
        consistent index may not show yet)."""
        keys = self.store.owned_by(self.key).union(*also)
        return keys - set(listed_keys(new_item))

    def remove_unlisted(self, output_keys: set[str], profile: Profile) -> int:
        def rewrite(keys: set[str]) -> None:
            _rewrite(self, profile, keys)

        bucket = self.settings.output_bucket
        return ownership.remove_unlisted(
            self.s3, bucket, self.store, self.source(), output_keys, rewrite
        )

    def publish(self, stored: dict[str, Any]) -> None:
        """Announce the item this record stored. Called once its clean-up is done too, so
        what the event lists is what exists; raising here retries the whole record. A newer
        event may have replaced the item during the clean-up: then it announces its own,
        and this one, stale, says nothing (one read narrows that window to milliseconds)."""
        if self.publisher is None:
            return
        with self.timings.phase(PUBLISH):
            current = self.store.item(self.key) or {}
            if current.get("revision") == stored["revision"]:
                self.publisher.publish(stored)
                logger.info("Published %r for %r.", DETAIL_TYPES[stored["status"]], self.key)
                return
        logger.info("Not published for %r: a newer event replaced its item", self.key)

    def leftovers(self, newest: dict[str, Any] | None, *also: Iterable[str]) -> set[str]:
        """For an event that lost: what `unlisted` says, plus keys this source released
        that an earlier attempt of this (older) event may have written after the release."""
        return self.unlisted(newest, self.store.released_by(self.key), *also)


def process_record(
    record: S3Record,
    settings: Settings,
    s3: Any,
    store: MetadataStore,
    budget: Budget,
    publisher: Publisher | None = None,
) -> Outcome:
    """One record; its image rendered within `budget` (lambda_pkg/budget.py), the item it
    stores announced by `publisher` (None: not published). A record that did any work ends
    with one `Image timings: {json}` line, also when it raises."""
    work = _Record(record, settings, s3, store, budget, publisher)
    outcome: Outcome | None = None
    try:
        outcome = _route(work)
        return outcome
    finally:
        _log_timings(work, outcome)


def _log_timings(work: _Record, outcome: Outcome | None) -> None:
    if outcome is Outcome.SKIPPED and not work.timings.ms:
        return  # skipped before any work: nothing to say about where time went
    line = {
        "key": work.key,
        "outcome": outcome.value if outcome else "error",
        "ms": work.timings.summary(),
    }
    logger.info("Image timings: %s", json.dumps(line, separators=(",", ":")))


def _route(work: _Record) -> Outcome:
    record, settings, store = work.record, work.settings, work.store
    reason = _skip_reason(record, work.key, settings)
    if reason:
        logger.info("Skipping key %r: %s", work.key, reason)
        return Outcome.SKIPPED
    profile = settings.config.profile_for(work.key)
    if profile is None:
        logger.info("Skipping key %r: no profile route matches it", work.key)
        return Outcome.SKIPPED
    if record.is_removed:
        if _exists(work):
            # A versioned bucket reports deleting an old version, or the delete marker (an
            # undelete), as ObjectRemoved:Delete: the key still shows a picture, so its
            # renditions must match that picture, not be removed.
            logger.info("Key %r still exists after its removal event: processing it", work.key)
            return _create(work, profile)
        return _remove(work, profile)
    logger.info("Processing image from bucket: %s, key: %s", record.bucket, work.key)
    with work.timings.phase(ITEM):
        stored = store.stored_sequencer(work.key)
    if work.is_older_than({"sequencer": stored}):
        logger.info("Skipping key %r: a newer event was already processed", work.key)
        return _step_aside(work, profile)
    return _create(work, profile)


def _step_aside(work: _Record, profile: Profile) -> Outcome:
    """This event lost to a newer one before storing anything. An earlier attempt of it
    (or of an older event) may have claimed and written keys and then died; the newer
    event's cleanup cannot have seen claims made after it ran. Remove what this source
    owns, up to this event's sequencer, that the newest item does not list."""
    newest = work.store.item(work.key)
    work.remove_unlisted(work.leftovers(newest), profile)
    return Outcome.SKIPPED


def _create(work: _Record, profile: Profile) -> Outcome:
    isolated.start(work.budget.memory_mb)  # before the download: see isolated.start
    try:
        with work.timings.phase(GET):
            data, size = _download(work.s3, work.record, profile)
    except _Missing:
        logger.warning("Skipping key %r: the object no longer exists", work.key)
        return Outcome.SKIPPED
    except imaging.ImageRejected as exc:
        return _fail(work, profile, work.source(work.record.size or 0), exc)
    source = work.source(size)
    try:
        decoded, outputs = isolated.process(data, profile, work.budget, timings=work.timings)
    except _BAD_IMAGE as exc:
        return _fail(work, profile, source, exc)
    except (MemoryError, Unavailable):
        raise  # this function's own trouble, not the image's: let Lambda retry
    except Exception as exc:  # a Pillow bug on hostile bytes is still a bad image
        logger.exception("Unexpected error decoding %r", work.key)
        return _fail(work, profile, source, exc)
    logger.info("Original image size: %dx%d", *decoded.original_size)
    keys = _output_keys(outputs, work.key, profile, data)
    return _write(work, profile, source, decoded, list(zip(keys, outputs, strict=True)))


def _write(
    work: _Record,
    profile: Profile,
    source: Source,
    decoded: imaging.Decoded,
    written: list[tuple[str, imaging.Output]],
) -> Outcome:
    """Claim every output key, write the renditions (each format of each), store the item."""
    keys, outputs = [key for key, _ in written], [output for _, output in written]
    problem = _key_problem(outputs, keys)
    if problem:  # S3 or the item could never hold these keys: fail now, before any write
        return _fail(work, profile, source, imaging.ImageRejected(problem))
    try:
        with work.timings.phase(CLAIM):
            ownership.claim_all(work.store, keys, source)
    except ownership.NewerEventClaimed as exc:
        logger.info("Skipping key %r: a newer event is writing %r", work.key, exc.args[0])
        return _step_aside(work, profile)
    except ownership.OutputKeyTaken as exc:
        at = keys.index(exc.output_key)
        rendition = outputs[at].rendition
        template = (
            f"the key template {rendition.key!r} (profile {profile.name!r}, rendition "
            f"{rendition.name!r})"
        )
        # The keys claimed before the conflict go back when the failed item is stored.
        return _fail(work, profile, source, exc.naming(template), claimed=keys[:at])
    with work.timings.phase(PUT):
        for output_key, output in written:
            _put_rendition(work, profile, output_key, output)
    first = outputs[0]
    logger.info("Processed image size: %dx%d", first.width, first.height)
    _store(work, profile, ok_item(source, profile, decoded, written), keys)
    return Outcome.PROCESSED


def _key_problem(outputs: list[imaging.Output], keys: list[str]) -> str | None:
    shared = next((k for k in keys if keys.count(k) > 1), None)
    if shared is not None:
        # Profile validation refuses every such template pair it can find; this catches the
        # rest, per image: two renditions at one key would leave the item lying about one.
        names = [o.rendition.name for o, k in zip(outputs, keys, strict=True) if k == shared]
        return (
            f"renditions {' and '.join(names)} both come out at {shared!r} for this key; "
            "give the profile key templates that keep renditions apart ({rendition})"
        )
    too_long = next((k for k in keys if len(k.encode()) > S3_MAX_KEY_BYTES), None)
    if too_long is not None:  # S3 refuses it (KeyTooLongError) on every retry
        return (
            f"output key {too_long[:60]!r}... is {len(too_long.encode()):,} bytes, over S3's "
            f"{S3_MAX_KEY_BYTES:,}-byte key limit; use a shorter key or a flattening profile"
        )
    return None


def _fail(
    work: _Record,
    profile: Profile,
    source: Source,
    exc: Exception,
    claimed: list[str] | None = None,
) -> Outcome:
    logger.warning("Image %r failed: %s: %s", work.key, type(exc).__name__, exc)
    _store(work, profile, failed_item(source, profile, exc), claimed or [])
    return Outcome.FAILED


def _store(work: _Record, profile: Profile, item: dict[str, Any], written: list[str]) -> None:
    """Store the item unless a newer event stored one; then remove what no item lists any
    more: what the replaced item listed and this one does not, or, when this event lost,
    what it wrote that the newer item does not list."""
    for _ in range(STORE_ATTEMPTS):
        with work.timings.phase(ITEM):  # not around _settle: it renders and puts again
            previous = work.store.item(work.key)
            newer = work.is_older_than(previous)
            stored = None if newer else work.store.replace(item, previous)
        if newer:
            logger.info("Metadata not stored for %r: a newer event recorded it", work.key)
            _settle(work, profile, written)
            return
        if stored:
            logger.info("Metadata stored successfully in DynamoDB.")
            with work.timings.phase(ITEM):
                stale = work.unlisted(item, listed_keys(previous), written)
                removed = work.remove_unlisted(stale, profile) if stale else 0
            if removed:
                logger.info("Removed %d rendition(s) the new item no longer lists", removed)
            work.publish(stored)
            return
    raise RuntimeError(f"the item of {work.key!r} kept changing; the retry will store it")


def _settle(work: _Record, profile: Profile, written: list[str]) -> None:
    """A newer event stored its item while this one rendered, so the renditions just written
    (same keys: they are deterministic) may hold older bytes than that item describes.
    Render the current object again, which gives the newer event's bytes back (rendering is
    deterministic), and remove what this event wrote that the item does not list (the newer
    upload failed, or was deleted). Repeat while yet newer events land meanwhile."""
    for _ in range(SETTLE_ROUNDS):
        newest = work.store.item(work.key) or {}
        if newest.get("profile_hash") == profile.content_hash():
            _rewrite(work, profile, set(listed_keys(newest)) & set(written))
        work.remove_unlisted(work.leftovers(newest, written), profile)
        if (work.store.item(work.key) or {}).get("revision") == newest.get("revision"):
            logger.info("Renditions of %r settled on the newest item", work.key)
            return
    raise RuntimeError(f"renditions of {work.key!r} did not settle: the key keeps changing")


def _rewrite(work: _Record, profile: Profile, keys: set[str]) -> None:
    """Write the current object's renditions to `keys` (those it has)."""
    if not keys:
        return
    isolated.start(work.budget.memory_mb)
    try:
        with work.timings.phase(GET):
            data, _size = _download(work.s3, work.record, profile)
        _decoded, outputs = isolated.process(data, profile, work.budget, timings=work.timings)
    except (_Missing, *_BAD_IMAGE):
        return  # the object changed again; its own event brings item and renditions along
    with work.timings.phase(PUT):
        output_keys = _output_keys(outputs, work.key, profile, data)
        for output_key, output in zip(output_keys, outputs, strict=True):
            if output_key in keys:
                _put_rendition(work, profile, output_key, output)


def _remove(work: _Record, profile: Profile) -> Outcome:
    """The original was deleted: its item is kept, marked `deleted`, and what it listed is
    removed. With no item yet (the delete overtook the create) a tombstone is stored."""
    for _ in range(STORE_ATTEMPTS):
        previous = work.store.item(work.key)
        if work.is_older_than(previous):
            logger.info("Skipping removal of %r: a newer event already recorded it", work.key)
            return _step_aside(work, profile)
        stored = work.store.replace(deleted_item(work.source(), previous), previous)
        if stored:
            # What a deleted item once listed goes too: a retried delete finds its own item.
            removed_before = (r.get("key") for r in stored.get("removed_renditions") or [])
            stale = work.unlisted(stored, (k for k in removed_before if isinstance(k, str)))
            removed = work.remove_unlisted(stale, profile)
            logger.info(
                "Original %r was deleted: removed %d rendition(s), item marked deleted",
                work.key,
                removed,
            )
            work.publish(stored)
            return Outcome.PROCESSED
    raise RuntimeError(f"the item of {work.key!r} kept changing; the retry will store it")


def _exists(work: _Record) -> bool:
    try:
        work.s3.head_object(Bucket=work.record.bucket, Key=work.key)
    except clients.client_error() as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING_OBJECT_CODES:
            return False
        raise
    return True


def _output_keys(
    outputs: list[imaging.Output], source_key: str, profile: Profile, data: bytes
) -> list[str]:
    """Each output's key; {hash} from the bytes just rendered and the profile rendering them,
    so new bytes, or new settings, get new keys."""
    digest = source_hash(data, profile) if profile.hashes_sources else None
    return [
        render_key(
            output.rendition.key, source_key, output.rendition.name, output.extension, digest
        )
        for output in outputs
    ]


def _put_rendition(work: _Record, profile: Profile, key: str, output: imaging.Output) -> None:
    work.s3.put_object(
        Bucket=work.settings.output_bucket,
        Key=key,
        Body=output.data,
        ContentType=output.content_type,
        CacheControl=profile.cache_control_of(output.rendition),
    )


def _skip_reason(record: S3Record, key: str, settings: Settings) -> str | None:
    if not (record.is_created or record.is_removed):
        return f"event {record.event_name!r} is neither an object creation nor a removal"
    if key.endswith("/"):
        return "a folder marker, not an object"
    if record.bucket == settings.output_bucket and key.startswith(OUTPUT_PREFIX):
        return f"it is one of our own outputs (under {OUTPUT_PREFIX}); processing it would loop"
    if is_reserved_source_key(key):
        return "its name is reserved for the metadata table's owner records; rename it"
    return None


def _download(s3: Any, record: S3Record, profile: Profile) -> tuple[bytes, int]:
    """Fetch the object, refusing before the body is read when it is over the size limit."""
    if record.size is not None:
        _check_size(record.size, profile)
    try:
        response = s3.get_object(Bucket=record.bucket, Key=record.key)
    except clients.client_error() as exc:
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
