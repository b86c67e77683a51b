"""`imgpipe events`: the outcomes the function published, read from the local stack's bus.

EventBridge has no API to read a bus, so the local stack puts a rule on its bus that copies
every outcome to an SQS queue (pipeline/local/provision.py); this long-polls that queue.
Each event is printed once: it is deleted from the queue once printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from lambda_pkg.records import STATUS_DELETED, STATUS_FAILED, STATUS_OK
from pipeline.cli import report
from pipeline.cli.targets import Target, TargetError

LONG_POLL_S = 20  # SQS's longest wait: one request per 20 s while nothing happens
DRAIN_POLL_S = 1  # without --follow: what arrived so far, then stop


def events(target: Target, follow: bool) -> Iterator[dict[str, Any]]:
    """Every event on the tail queue, oldest first; with `follow`, until interrupted."""
    if not target.is_local:
        raise TargetError(
            "imgpipe events reads the local stack's bus; for a deployed stack, put a rule on "
            "its bus (stack output eventBusName) with a target you can read, e.g. an SQS queue"
        )
    from pipeline.aws import client

    sqs = client("sqs", target.endpoint)
    queue = target.names.event_tail_queue
    try:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        raise TargetError(
            f"the stack at {target.endpoint} has no queue {queue!r}: it was started by an "
            "imgpipe without events; restart `imgpipe local`"
        ) from None
    wait_s = LONG_POLL_S if follow else DRAIN_POLL_S
    while True:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s)
        messages = response.get("Messages", [])
        if not messages and not follow:
            return
        for message in messages:
            yield json.loads(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def line(event: dict[str, Any]) -> str:
    """One line per event: when, what, which image, and the gist of its item."""
    detail = event.get("detail") or {}
    what = f"{event.get('detail-type', '?'):<15}"
    return "  ".join((event.get("time", "?"), what, detail.get("image_name", "?"), _gist(detail)))


def _gist(detail: dict[str, Any]) -> str:
    status = detail.get("status")
    gist: Callable[[dict[str, Any]], str] = _GISTS.get(status, lambda d: str(status))
    return gist(detail)


def _processed(detail: dict[str, Any]) -> str:
    # Each size once, as `imgpipe ls` shows it: a multi-format rendition lists one entry per
    # format, and "800x450, 800x450" reads like two renditions of the same size
    renditions = detail.get("renditions") or []
    return f"{len(renditions)} rendition(s): {report.renditions_summary(detail)}"


def _deleted(detail: dict[str, Any]) -> str:
    return f"{len(detail.get('removed_renditions') or [])} rendition(s) removed"


_GISTS: dict[Any, Callable[[dict[str, Any]], str]] = {
    STATUS_OK: _processed,
    STATUS_FAILED: lambda detail: f"failed: {detail.get('error', '')}",
    STATUS_DELETED: _deleted,
}
