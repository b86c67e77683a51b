"""The DynamoDB item for one source image, and the conditional write that stores it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from lambda_pkg.imaging import Decoded, Output
from lambda_pkg.profiles import Profile

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_DELETED = "deleted"
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
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def utc_timestamp(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    """`outputs` pairs each rendition's key with what was written there, in profile order."""
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
        renditions=[
            {
                "name": output.rendition.name,
                "key": key,
                "width": output.width,
                "height": output.height,
                "bytes": len(output.data),
                "format": output.format,
            }
            for key, output in outputs
        ],
    )
    return item


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


class MetadataStore:
    """Writes items so that an older S3 event never overwrites a newer one's result."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put(self, item: dict[str, Any]) -> bool:
        """Store the item; False when a newer event for the same key already stored one."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": {name: _serializer.serialize(value) for name, value in item.items()},
        }
        if "sequencer" in item:
            request["ConditionExpression"] = (
                "attribute_not_exists(image_name) OR attribute_not_exists(sequencer) "
                "OR sequencer <= :sequencer"
            )
            request["ExpressionAttributeValues"] = {":sequencer": {"S": item["sequencer"]}}
        try:
            self._client.put_item(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def stored_sequencer(self, key: str) -> str | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"image_name": {"S": key}},
            ProjectionExpression="sequencer",
            ConsistentRead=True,
        )
        return response.get("Item", {}).get("sequencer", {}).get("S")

    def item(self, key: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"image_name": {"S": key}}, ConsistentRead=True
        )
        raw = response.get("Item")
        return None if raw is None else _deserialise(raw)

    def mark_deleted(self, key: str, sequencer: str | None) -> dict[str, Any] | None:
        """Set status `deleted` (+ `deleted_at`), keeping every other attribute.

        Returns the updated item (its `renditions` say what to remove), or None when there
        is no item or a newer event already stored one: then nothing may be removed, since
        a newer upload's renditions share the deleted one's keys. The conditional update
        is the ordering check, so it comes before the renditions are removed.
        """
        values: dict[str, Any] = {
            ":deleted": {"S": STATUS_DELETED},
            ":now": {"S": utc_timestamp()},
        }
        update = "SET #status = :deleted, deleted_at = :now"
        condition = "attribute_exists(image_name)"
        if sequencer:
            update += ", sequencer = :sequencer"
            condition += " AND (attribute_not_exists(sequencer) OR sequencer <= :sequencer)"
            values[":sequencer"] = {"S": sequencer}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"image_name": {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},  # a DynamoDB reserved word
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return _deserialise(response["Attributes"])


def _deserialise(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in raw.items()}
