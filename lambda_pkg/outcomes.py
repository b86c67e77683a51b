"""Each stored outcome, published to Amazon EventBridge for applications to act on.

The workflow publishes only after the item's conditional write succeeded, with the item as
stored (its `revision` included) as the detail, so an event never announces what the table
does not hold. A refused entry raises: the record fails, Lambda retries it, and the retry
stores the item again and publishes again. Delivery is therefore at least once; consumers
tell repeats apart by `revision` and order events of one image by `sequencer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lambda_pkg import clients, wire
from lambda_pkg.records import STATUS_DELETED, STATUS_FAILED, STATUS_OK

SOURCE = "imgpipe"
DETAIL_TYPES = {
    STATUS_OK: "Image Processed",
    STATUS_FAILED: "Image Failed",
    STATUS_DELETED: "Image Deleted",
}
# EventBridge refuses a PutEvents entry over 256 KB (its source, detail-type and detail,
# in UTF-8 bytes, plus 14 for a time). DynamoDB items may reach 400 KB.
MAX_ENTRY_BYTES = 256 * 1024
# A detail too large to send keeps its scalar attributes, each string cut to this length;
# lists and maps (renditions) are named in `detail_truncated` and are read from the table.
TRUNCATED_STRING_CHARS = 1024


class PublishFailed(RuntimeError):
    """EventBridge did not accept an outcome; raised so the record is retried."""


@dataclass(frozen=True)
class Publisher:
    """Publishes to one bus (a name or an ARN) with an EventBridge client: `client`, or
    the function's own (clients.py, made on first use: a record that stores nothing, such
    as S3's test event, never loads the events service)."""

    client: Any
    bus: str

    def publish(self, item: dict[str, Any]) -> None:
        entry = event_entry(item, self.bus)
        client = self.client if self.client is not None else clients.client("events")
        response = client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            (refused,) = response.get("Entries") or [{}]
            raise PublishFailed(
                f"EventBridge refused the {entry['DetailType']!r} event of "
                f"{item.get('image_name')!r} on bus {self.bus!r}: "
                f"{refused.get('ErrorCode')}: {refused.get('ErrorMessage')}"
            )


def event_entry(item: dict[str, Any], bus: str) -> dict[str, Any]:
    """The PutEvents entry announcing a stored item (`ok`, `failed` or `deleted`)."""
    detail_type = DETAIL_TYPES[item["status"]]
    detail = as_json(item)
    if _entry_bytes(detail_type, detail) > MAX_ENTRY_BYTES:
        detail = as_json(truncated(item))
    return {"EventBusName": bus, "Source": SOURCE, "DetailType": detail_type, "Detail": detail}


def as_json(item: dict[str, Any]) -> str:
    """The item as plain JSON: DynamoDB's Decimal numbers as int or float, sets as lists."""
    return json.dumps(wire.plain(item), separators=(",", ":"), default=_set_as_list)


def truncated(item: dict[str, Any]) -> dict[str, Any]:
    """What still fits of an item too large for one event: its scalars, long strings cut;
    `detail_truncated` names every attribute left out or cut."""
    kept: dict[str, Any] = {}
    for name, value in item.items():
        if isinstance(value, str):
            kept[name] = value[:TRUNCATED_STRING_CHARS]
        elif not isinstance(value, list | dict | set | frozenset):
            kept[name] = value
    cut = {name for name, value in kept.items() if value != item[name]}
    kept["detail_truncated"] = sorted(set(item) - set(kept) | cut)
    return kept


def _entry_bytes(detail_type: str, detail: str) -> int:
    return 14 + len(SOURCE.encode()) + len(detail_type.encode()) + len(detail.encode())


def _set_as_list(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(wire.plain(v) for v in value)
    raise TypeError(f"{type(value).__name__} is not JSON")
