"""The metadata table's key space: image items and output-key owner records.

DynamoDB has no unique index, so each output key's single owner is a second item in the
same table (`owner#<output key>` -> the source key), written with conditional writes. The
table then holds two kinds of item; everything that reads the table as a list of images
(`imgpipe ls`, the reliability invariants) skips owner records with `is_owner_record`.
No Pillow, no boto3: the CLI and the reliability suite import this too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# An image item's `status`: what `imgpipe ls`, the gallery and the invariants read.
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_DELETED = "deleted"
FINAL_STATUSES = (STATUS_OK, STATUS_FAILED)  # a create has ended, one way or the other

OWNER_PREFIX = "owner#"
RECORD_TYPE_OWNER = "owner"
# A released record keeps its last owner as `released#<source key>` in `owner`: not an
# owner (anyone may claim it), but the index still finds it under that value, so the
# source can remove an object an older event of its own wrote there after the release.
RELEASED_PREFIX = "released#"


def owner_record_name(output_key: str) -> str:
    """The partition key of the record that says who owns `output_key`."""
    return OWNER_PREFIX + output_key


def is_owner_record(item: Mapping[str, Any]) -> bool:
    return item.get("record_type") == RECORD_TYPE_OWNER


def current_owner(record: Mapping[str, Any] | None) -> str | None:
    """The source that owns an owner record's key now, or None (never claimed, released)."""
    owner = (record or {}).get("owner")
    return owner if owner and not owner.startswith(RELEASED_PREFIX) else None


def released_mark(source_key: str) -> str:
    """The `owner` value of a key `source_key` released (see RELEASED_PREFIX)."""
    return RELEASED_PREFIX + source_key


def is_reserved_source_key(key: str) -> bool:
    """A source key in the owner records' namespace (its item would overwrite one of them)
    or that would read as a released mark in the owner index."""
    return key.startswith((OWNER_PREFIX, RELEASED_PREFIX))


# The table, declared once: the Pulumi program, the local stack and the tests create it
# from this. `owner` is on owner records only, so the index is sparse: under a source key
# it holds exactly the keys that source owns now (what a cleanup must consider, even those
# claimed by an invocation that died before storing its item), and under its released mark
# the keys it let go that nobody has claimed since.
TABLE_KEY = "image_name"
OWNER_ATTRIBUTE = "owner"
OWNER_INDEX = "owner"


def table_definition() -> dict[str, Any]:
    """The metadata table as boto3's `create_table` takes it (without `TableName`)."""
    return {
        "KeySchema": [{"AttributeName": TABLE_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": TABLE_KEY, "AttributeType": "S"},
            {"AttributeName": OWNER_ATTRIBUTE, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": OWNER_INDEX,
                "KeySchema": [{"AttributeName": OWNER_ATTRIBUTE, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    }


def owner_index_query(table: str, owner: str) -> dict[str, Any]:
    """The Query (paginate it) for the owner records whose `owner` is exactly `owner`."""
    return {
        "TableName": table,
        "IndexName": OWNER_INDEX,
        "KeyConditionExpression": "#owner = :owner",
        "ExpressionAttributeNames": {"#owner": OWNER_ATTRIBUTE},
        "ExpressionAttributeValues": {":owner": {"S": owner}},
    }
