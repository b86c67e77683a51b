"""Lambda entry point: a thin adapter from the S3 event to `workflow.process_record`.

Errors are split in two. A bad image (not an image, truncated, too big) can never succeed,
so it becomes a `failed` item and the handler returns normally. Anything else (throttling,
5xx, timeouts, permissions) is raised so Lambda retries and, in the end, the failure
destination keeps the event. The input object is only ever read.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lambda_pkg import clients
from lambda_pkg.budget import Budget
from lambda_pkg.events import S3Record, s3_records
from lambda_pkg.metadata import MetadataStore
from lambda_pkg.outcomes import Publisher
from lambda_pkg.settings import Settings
from lambda_pkg.workflow import Outcome, process_record

logger = logging.getLogger("imgpipe")
logger.setLevel(logging.INFO)


@dataclass
class Summary:
    """What the invocation returns: how many records ended each way."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {outcome.value: self.outcomes[outcome] for outcome in Outcome}


@functools.cache
def _settings() -> Settings:
    """Read once per container (cold start), not per event."""
    return Settings.from_env()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("Event received: %s", json.dumps(event))
    settings = _settings()
    s3, dynamodb = clients.client("s3"), clients.client("dynamodb")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = Budget.for_invocation(remaining() if remaining else None, settings.memory_mb)
    return process_event(event, settings, s3, dynamodb, budget)


def process_event(
    event: dict[str, Any],
    settings: Settings,
    s3: Any,
    dynamodb: Any,
    budget: Budget | None = None,
    events: Any = None,
) -> dict[str, Any]:
    """Process every record; one record's failure never stops the others. Each image is
    rendered within `budget` (by default: Lambda's longest timeout, the settings' memory);
    each stored outcome is published to `settings.event_bus` with `events` (by default the
    function's EventBridge client, made on the first publish) when the settings name a bus."""
    budget = budget or Budget.for_invocation(None, settings.memory_mb)
    summary = Summary()
    store = MetadataStore(dynamodb, settings.metadata_table)
    publisher = None
    if settings.event_bus:
        publisher = Publisher(events, settings.event_bus)
    first_error: BaseException | None = None
    records = s3_records(event)
    if not records:
        logger.info("No S3 records in the event (for example s3:TestEvent); nothing to do.")
    for record in records:
        try:
            outcome = process_record(record, settings, s3, store, budget, publisher)
        except Exception as exc:  # transient or unexpected: raise after the other records
            logger.exception("Record for key %r failed; it will be retried", _safe_key(record))
            first_error = first_error or exc
            continue
        summary.outcomes[outcome] += 1
    if first_error is not None:
        raise first_error
    return summary.as_dict()


def _safe_key(record: S3Record) -> str:
    try:
        return record.key
    except (KeyError, TypeError):
        return "<no key>"
