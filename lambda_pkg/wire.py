"""Metadata items on the wire: DynamoDB's typed JSON to plain Python and back.

The function, the CLI, the reliability suite and the tests read and write the table
through these, so an item reads the same wherever it is read. boto3's own type codec does
the conversion (numbers come back as `Decimal`); `plain` turns them into the ints the
commands show. No Pillow, and no boto3 until the first item is converted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from lambda_pkg.clients import dynamodb_types
from lambda_pkg.records import TABLE_KEY


def key(name: str) -> dict[str, Any]:
    """The `Key` of the item (image item or owner record) called `name`."""
    return {TABLE_KEY: {"S": name}}


def decode(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An item as DynamoDB returns it (`{"status": {"S": "ok"}, ...}`) as plain Python."""
    deserializer = dynamodb_types()[1]
    return {name: deserializer.deserialize(value) for name, value in raw.items()}


def encode(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain Python item as DynamoDB takes it (`put_item`'s `Item`)."""
    serializer = dynamodb_types()[0]
    return {name: serializer.serialize(value) for name, value in item.items()}


def names(pages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The item names in Scan or Query result pages (such as the keys-only owner index)."""
    return [raw[TABLE_KEY]["S"] for page in pages for raw in page.get("Items", [])]


def plain(value: Any) -> Any:
    """`value` with DynamoDB's Decimal numbers as int (float when fractional), all the way
    down: what the commands print and write as JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
