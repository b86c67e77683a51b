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

OWNER_PREFIX = "owner#"
RECORD_TYPE_OWNER = "owner"


def owner_record_name(output_key: str) -> str:
    """The partition key of the record that says who owns `output_key`."""
    return OWNER_PREFIX + output_key


def is_owner_record(item: Mapping[str, Any]) -> bool:
    return item.get("record_type") == RECORD_TYPE_OWNER


def is_reserved_source_key(key: str) -> bool:
    """A source key in the owner records' namespace: its item would overwrite one of them."""
    return key.startswith(OWNER_PREFIX)
