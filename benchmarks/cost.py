"""What a million images cost on AWS: Lambda time from this run, the rest counted.

The AWS requests per image are not assumed: one image goes through the real handler code
(lambda_pkg.handler.process_event) against moto, and every request it makes is recorded,
with each DynamoDB item's size, so write and read units follow DynamoDB's own rounding
(1 WRU per started KB written, 1 RRU per started 4 KB read strongly consistent, half
that eventually consistent). Memory and architecture are the stack's defaults
(pipeline.program.stack.StackSettings), not restated here.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# us-east-1 list prices, USD (on-demand, first tier).
PRICE_GB_S = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
PRICE_REQUEST = 0.20 / 1e6
PRICE_S3_PUT = 0.005 / 1000  # PUT, COPY, POST, LIST
PRICE_S3_GET = 0.0004 / 1000  # GET, HEAD and the rest
PRICE_WRU = 0.625 / 1e6
PRICE_RRU = 0.125 / 1e6
PRICE_LOG_GB = 0.50  # CloudWatch Logs ingestion
# START, END and REPORT lines Lambda writes per invocation (measured from real logs: ~260 B).
PLATFORM_LOG_BYTES = 260
S3_PUT_CLASS = {"PutObject", "CopyObject", "ListObjectsV2", "DeleteObjects"}
INPUT, OUTPUT, TABLE = "bench-input", "bench-output", "bench-metadata"


def item_bytes(value: Any) -> int:
    """DynamoDB's size of one attribute value in wire form ({"S": ...}, {"M": {...}}...)."""
    (kind, inner), *_ = value.items()
    if kind in ("S", "B"):
        return len(inner.encode() if isinstance(inner, str) else inner)
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + item_bytes(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(item_bytes(v) + 1 for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(item_bytes({kind[0]: v}) for v in inner)
    return 1  # BOOL, NULL


def size_of(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + item_bytes(value) for name, value in item.items())


@dataclass
class Requests:
    """What one image's processing asked AWS for."""

    calls: Counter = field(default_factory=Counter)
    wru: float = 0.0
    rru: float = 0.0
    item_sizes: list[int] = field(default_factory=list)
    log_bytes: int = 0

    def on_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = model.name
        self.calls[name] += 1
        if name == "PutItem":
            self.item_sizes.append(size_of(params["Item"]))
            self.wru += math.ceil(self.item_sizes[-1] / 1024)
        elif name in ("UpdateItem", "DeleteItem"):
            self.wru += 1  # owner records: a key and a few short attributes, under 1 KB
        if name in ("PutItem", "UpdateItem", "DeleteItem") and _indexed(params):
            self.wru += 1  # the owner index (KEYS_ONLY) is written too, and billed
        elif name == "TransactWriteItems":
            self.wru += 2 * len(params["TransactItems"])  # transactions cost double
        elif name == "GetItem":
            self.rru += 1 if params.get("ConsistentRead") else 0.5
        elif name == "Query":
            self.rru += 0.5  # the owner index: eventually consistent, one short page


def _indexed(params: dict[str, Any]) -> bool:
    """Whether a write touches the owner index's key attribute (records.OWNER_ATTRIBUTE)."""
    from lambda_pkg.records import OWNER_ATTRIBUTE

    names = set(params.get("Item", {})) | set(params.get("ExpressionAttributeNames", {}).values())
    return OWNER_ATTRIBUTE in names


class _LogBytes(logging.Handler):
    def __init__(self, requests: Requests) -> None:
        super().__init__(logging.INFO)
        self.requests = requests

    def emit(self, record: logging.LogRecord) -> None:
        # Lambda's Python runtime prefixes level, time and request id (~60 bytes).
        self.requests.log_bytes += len(record.getMessage().encode()) + 61


def requests_per_image(profile_name: str, data: bytes) -> Requests:
    """Run one upload of `data` through the handler code under moto; what it requested."""
    import boto3
    from moto import mock_aws

    from lambda_pkg.events import s3_event
    from lambda_pkg.handler import process_event
    from lambda_pkg.profiles import PipelineConfig, load_named
    from lambda_pkg.records import table_definition
    from lambda_pkg.settings import Settings

    requests = Requests()
    log = logging.getLogger("imgpipe")
    counter, level = _LogBytes(requests), log.level
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        s3, dynamodb = session.client("s3"), session.client("dynamodb")
        s3.create_bucket(Bucket=INPUT)
        s3.create_bucket(Bucket=OUTPUT)
        dynamodb.create_table(TableName=TABLE, **table_definition())
        s3.put_object(Bucket=INPUT, Key="input/photo.jpg", Body=data)
        for client in (s3, dynamodb):
            client.meta.events.register("before-parameter-build.*.*", requests.on_call)
        settings = Settings(OUTPUT, TABLE, PipelineConfig.single(load_named(profile_name)))
        event = s3_event(
            INPUT, "input/photo.jpg", len(data), "0055AED6DCD90281E5", "ObjectCreated:Put"
        )
        log.addHandler(counter)
        log.setLevel(logging.INFO)
        try:
            process_event(event, settings, s3, dynamodb)
        finally:
            log.removeHandler(counter)
            log.setLevel(level)
    return requests


@dataclass(frozen=True)
class Stack:
    memory_mb: int
    architecture: str


def stack_defaults() -> Stack:
    from pipeline.program.stack import StackSettings

    settings = StackSettings()
    return Stack(settings.memory_mb, settings.architecture)


def line_items(ms: float, requests: Requests, stack: Stack) -> list[tuple[str, float]]:
    """(what, USD per million images) for one profile."""
    gb_s = ms / 1000 * stack.memory_mb / 1024
    s3_puts = sum(n for name, n in requests.calls.items() if name in S3_PUT_CLASS)
    s3_gets = sum(requests.calls.values()) - s3_puts
    s3_gets -= sum(n for name, n in requests.calls.items() if name in _DYNAMODB)
    logs = (requests.log_bytes + PLATFORM_LOG_BYTES) / 1e9
    return [
        (f"Lambda compute ({gb_s:.4f} GB-s)", 1e6 * gb_s * PRICE_GB_S[stack.architecture]),
        ("Lambda requests (1)", 1e6 * PRICE_REQUEST),
        (f"S3 PUT-class ({s3_puts})", 1e6 * s3_puts * PRICE_S3_PUT),
        (f"S3 GET-class ({s3_gets})", 1e6 * s3_gets * PRICE_S3_GET),
        (f"DynamoDB writes ({requests.wru:g} WRU)", 1e6 * requests.wru * PRICE_WRU),
        (f"DynamoDB reads ({requests.rru:g} RRU)", 1e6 * requests.rru * PRICE_RRU),
        (f"CloudWatch Logs ({logs * 1e9:.0f} B)", 1e6 * logs * PRICE_LOG_GB),
    ]


_DYNAMODB = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "GetItem",
    "Query",
    "TransactWriteItems",
    "BatchGetItem",
}
