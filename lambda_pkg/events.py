"""Read-only views over the raw S3 event dict. The key is URL-decoded here and only here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

# Sequencers are hex strings of varying length; S3 says compare them after right-padding
# the shorter with zeros. Storing them at a fixed width lets DynamoDB compare as strings.
SEQUENCER_WIDTH = 64


@dataclass(frozen=True)
class S3Record:
    raw: Mapping[str, Any]

    @property
    def event_name(self) -> str:
        return self.raw.get("eventName", "")

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated")

    @property
    def is_removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved")

    @property
    def bucket(self) -> str:
        return self.raw["s3"]["bucket"]["name"]

    @property
    def key(self) -> str:
        # `+` is a space and `%2B` a plus: unquote_plus, exactly once.
        return unquote_plus(self.raw["s3"]["object"]["key"])

    @property
    def size(self) -> int | None:
        size = self.raw["s3"]["object"].get("size")
        return size if isinstance(size, int) else None

    @property
    def sequencer(self) -> str | None:
        sequencer = self.raw["s3"]["object"].get("sequencer")
        return normalise_sequencer(sequencer) if sequencer else None

    @property
    def event_time(self) -> str | None:
        return self.raw.get("eventTime")


def normalise_sequencer(sequencer: str) -> str:
    return sequencer.upper().ljust(SEQUENCER_WIDTH, "0")


def s3_records(event: Mapping[str, Any]) -> list[S3Record]:
    """The S3 records of an event; an s3:TestEvent or any non-S3 event has none."""
    return [
        S3Record(record)
        for record in event.get("Records") or []
        if isinstance(record, Mapping) and record.get("eventSource") == "aws:s3"
    ]


def s3_event(bucket: str, key: str, size: int, sequencer: str, event_name: str) -> dict[str, Any]:
    """An S3-shaped event for one object, as `reprocess` and redrive send it."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": event_name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "sequencer": sequencer,
                    },
                },
            }
        ]
    }
