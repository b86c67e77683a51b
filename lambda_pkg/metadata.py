"""The DynamoDB item for one source image, the conditional writes that store it, and the
owner records that give every output key a single owning source."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from lambda_pkg import clients, wire
from lambda_pkg.imaging import Decoded, Output
from lambda_pkg.profiles import Profile, canonical_template
from lambda_pkg.records import (
    OWNER_PREFIX,
    RECORD_TYPE_OWNER,
    RELEASED_PREFIX,
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_OK,
    current_owner,
    owner_index_query,
    owner_record_name,
    released_mark,
)

# The seed's eight attributes, in the seed's types; every item carries all of them.
SEED_ATTRIBUTES = (
    "image_name",
    "original_width",
    "original_height",
    "processed_width",
    "processed_height",
    "original_size_bytes",
    "processed_size_bytes",
    "timestamp",
)
CLAIM_ATTEMPTS = 5


TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # ISO-8601 UTC, as the seed's `timestamp`


def utc_timestamp(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


@dataclass(frozen=True)
class Source:
    """Which object an item describes and which event produced it."""

    bucket: str
    key: str
    size_bytes: int
    sequencer: str | None


def _base(source: Source, profile: Profile, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "image_name": source.key,
        "source_bucket": source.bucket,
        "original_size_bytes": source.size_bytes,
        "timestamp": utc_timestamp(),
        "status": status,
        "profile": profile.name,
        "profile_hash": profile.content_hash(),
    }
    if source.sequencer:
        item["sequencer"] = source.sequencer
    return item


def ok_item(
    source: Source, profile: Profile, decoded: Decoded, outputs: list[tuple[str, Output]]
) -> dict[str, Any]:
    """`outputs` pairs each object's key with what was written there, in profile order (a
    rendition's formats in its order); the seed's processed_* describe the first."""
    first = outputs[0][1]
    item = _base(source, profile, STATUS_OK)
    item.update(
        original_width=decoded.original_size[0],
        original_height=decoded.original_size[1],
        processed_width=first.width,
        processed_height=first.height,
        processed_size_bytes=len(first.data),
        input_format=decoded.input_format,
        input_mode=decoded.original_mode,
        orientation=decoded.orientation,
        has_icc=decoded.has_icc,
        had_gps=decoded.had_gps,  # whether the upload carried a location; never the location
        frame_count=decoded.frame_count,
        blurhash=decoded.blurhash,
        dominant_color=decoded.dominant_color,
        renditions=[_rendition_entry(key, output) for key, output in outputs],
    )
    return item


def _rendition_entry(key: str, output: Output) -> dict[str, Any]:
    """One object written: a rendition in several formats has one entry per format, each
    naming the rendition's canonical key (its key without the extension)."""
    entry = {
        "name": output.rendition.name,
        "key": key,
        "width": output.width,
        "height": output.height,
        "bytes": len(output.data),
        "format": output.format,
        "content_type": output.content_type,
    }
    if canonical_template(output.rendition) is not None:
        entry["canonical"] = key.removesuffix(f".{output.extension}")
    return entry


def failed_item(source: Source, profile: Profile, error: Exception) -> dict[str, Any]:
    item = _base(source, profile, STATUS_FAILED)
    item.update(
        original_width=0,
        original_height=0,
        processed_width=0,
        processed_height=0,
        processed_size_bytes=0,
        renditions=[],
        error=str(error),
        error_type=type(error).__name__,
    )
    return item


def deleted_item(source: Source, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The item once the original is gone: the previous record, kept, marked `deleted`, its
    renditions moved to `removed_renditions`. With no previous item (the delete overtook
    the create) a tombstone: it carries the delete's sequencer, so the older create's
    conditional write loses and what it rendered is removed."""
    now = utc_timestamp()
    if previous is None:
        item = {name: 0 for name in SEED_ATTRIBUTES[1:-1]}
        item.update(image_name=source.key, source_bucket=source.bucket, renditions=[])
    else:
        item = dict(previous)
        removed = previous.get("removed_renditions") or []
        item["removed_renditions"] = previous.get("renditions") or removed
        item["renditions"] = []
    item.update(status=STATUS_DELETED, deleted_at=now, timestamp=now)
    if source.sequencer:
        item["sequencer"] = source.sequencer
    return item


def newer_than(record: dict[str, Any] | None, sequencer: str | None) -> bool:
    """Whether a stored item or owner record comes from a newer S3 event than `sequencer`.
    An event without a sequencer (S3's always carry one) counts as older than any."""
    stored = (record or {}).get("sequencer")
    return bool(stored) and (not sequencer or stored > sequencer)


def listed_keys(item: dict[str, Any] | None) -> list[str]:
    """The rendition keys an item says exist (only an `ok` item lists any)."""
    if not item or item.get("status") != STATUS_OK:
        return []
    keys = (rendition.get("key") for rendition in item.get("renditions") or [])
    return [key for key in keys if isinstance(key, str)]


class MetadataStore:
    """Reads and writes items so that an older S3 event never overwrites a newer one's
    result, and output keys keep a single owner (see records.py for the key space)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    # -- image items -------------------------------------------------------------------

    def item(self, key: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=wire.key(key), ConsistentRead=True
        )
        raw = response.get("Item")
        return None if raw is None else wire.decode(raw)

    def stored_sequencer(self, key: str) -> str | None:
        """The cheap early check: the sequencer of the stored item, if any."""
        response = self._client.get_item(
            TableName=self._table,
            Key=wire.key(key),
            ProjectionExpression="sequencer",
            ConsistentRead=True,
        )
        return wire.decode(response.get("Item", {})).get("sequencer")

    def replace(self, item: dict[str, Any], previous: dict[str, Any] | None) -> bool:
        """Store `item` only if the stored item is still exactly `previous` (None: no item).

        The caller has already checked that `previous` is not newer; this makes the write
        an optimistic compare-and-swap, so whatever `previous` listed is what this write
        replaced. False: another event wrote meanwhile; read again and decide again."""
        revision = uuid.uuid4().hex
        item = {**item, "revision": revision}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": wire.encode(item),
        }
        if previous is None:
            request["ConditionExpression"] = "attribute_not_exists(image_name)"
        elif "revision" in previous:
            request["ConditionExpression"] = "revision = :revision"
            request["ExpressionAttributeValues"] = {":revision": {"S": previous["revision"]}}
        else:  # an item written before revisions existed: its timestamp stands in
            request["ConditionExpression"] = "attribute_not_exists(revision) AND #ts = :ts"
            request["ExpressionAttributeNames"] = {"#ts": "timestamp"}
            request["ExpressionAttributeValues"] = {":ts": {"S": previous["timestamp"]}}
        if self._conditional(self._client.put_item, request):
            return True
        # botocore retries a write whose response was lost; the retry then fails its own
        # condition. The revision says whether the write that failed was in fact ours.
        return (self.item(item["image_name"]) or {}).get("revision") == revision

    # -- owner records -------------------------------------------------------------------

    def owner_record(self, output_key: str) -> dict[str, Any] | None:
        """The owner record of an output key (its `owner` absent once released), or None
        when the key was never claimed (renditions written before owner records existed)."""
        return self.item(owner_record_name(output_key))

    def owner(self, output_key: str) -> dict[str, Any] | None:
        """The owner record of an output key, or None when nobody owns it."""
        record = self.owner_record(output_key)
        return record if current_owner(record) else None

    def owned_by(self, source_key: str) -> set[str]:
        """Every output key the source owns now, from the owner index (eventually
        consistent: a claim made a moment ago may be missing, one from a dead invocation
        minutes ago is there)."""
        return self._indexed(source_key)

    def released_by(self, source_key: str) -> set[str]:
        """Every output key the source released and nobody has claimed since."""
        return self._indexed(released_mark(source_key))

    def _indexed(self, owner: str) -> set[str]:
        query = owner_index_query(self._table, owner)
        pages = self._client.get_paginator("query").paginate(**query)
        return {name.removeprefix(OWNER_PREFIX) for name in wire.names(pages)}

    def claim(self, output_key: str, source: Source) -> dict[str, Any] | None:
        """Make `source`'s event the owner of `output_key`. None when it is; else the current
        owner record: another source's, or this source's, claimed by a newer event."""
        values = {":me": {"S": source.key}, ":released": {"S": RELEASED_PREFIX}}
        free = "attribute_not_exists(#owner) OR begins_with(#owner, :released)"
        # Only a newer event moves the record's sequencer: release() compares with it. An
        # event without one is older than any that has one (see newer_than).
        condition = f"{free} OR (#owner = :me AND attribute_not_exists(sequencer))"
        if source.sequencer:
            condition = (
                f"{free} OR (#owner = :me AND "
                "(attribute_not_exists(sequencer) OR sequencer <= :sequencer))"
            )
        for _ in range(CLAIM_ATTEMPTS):
            if self._update_owner_record(output_key, source, condition, values):
                return None
            current = self.owner(output_key)
            if current is not None:
                return None if self._holds(current, source) else current
            # Released between the write and the read: claim again.
        raise RuntimeError(f"the owner of {output_key!r} keeps changing; the retry will claim it")

    @staticmethod
    def _holds(record: dict[str, Any], source: Source) -> bool:
        """Whether the record names this event: its source, and no newer event of it."""
        return current_owner(record) == source.key and not newer_than(record, source.sequencer)

    def take_over(self, output_key: str, source: Source, stale: dict[str, Any]) -> bool:
        """Claim a key whose owner record is stale (its owner never finished)."""
        now = utc_timestamp()
        values = {
            ":them": {"S": stale["owner"]},
            ":claimed": {"S": stale["claimed_at"]},
            ":now": {"S": now},
        }
        condition = "#owner = :them AND claimed_at = :claimed"
        if self._update_owner_record(output_key, source, condition, values):
            return True
        current = self.owner(output_key) or {}  # a lost response: was the write ours?
        return current.get("owner") == source.key and current.get("claimed_at") == now

    def release(self, output_key: str, source: Source) -> bool:
        """Give up `source`'s ownership of `output_key`. False only when a newer event of
        the same source claimed it meanwhile (it may be writing there now). The record
        stays, its owner marked released (records.RELEASED_PREFIX): the function's role may
        not delete items."""
        values: dict[str, Any] = {
            ":me": {"S": source.key},
            ":released": {"S": released_mark(source.key)},
            ":now": {"S": utc_timestamp()},
        }
        condition = "#owner = :me"
        if source.sequencer:
            condition += " AND (attribute_not_exists(sequencer) OR sequencer <= :sequencer)"
            values[":sequencer"] = {"S": source.sequencer}
        released = self._conditional(
            self._client.update_item,
            {
                "TableName": self._table,
                "Key": wire.key(owner_record_name(output_key)),
                "UpdateExpression": "SET #owner = :released, released_at = :now REMOVE sequencer",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": values,
            },
        )
        return released or current_owner(self.owner_record(output_key)) != source.key

    def _update_owner_record(
        self, output_key: str, source: Source, condition: str, values: dict[str, Any]
    ) -> bool:
        values = {
            ":now": {"S": utc_timestamp()},
            **values,
            ":me": {"S": source.key},
            ":type": {"S": RECORD_TYPE_OWNER},
            ":key": {"S": output_key},
        }
        update = "SET #owner = :me, record_type = :type, output_key = :key, claimed_at = :now"
        if source.sequencer:
            update += ", sequencer = :sequencer"
            values[":sequencer"] = {"S": source.sequencer}
        else:
            update += " REMOVE sequencer"
        return self._conditional(
            self._client.update_item,
            {
                "TableName": self._table,
                "Key": wire.key(owner_record_name(output_key)),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": values,
            },
        )

    @staticmethod
    def _conditional(call: Any, request: dict[str, Any]) -> bool:
        try:
            call(**request)
        except clients.client_error() as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
