"""Workers that long-poll the event queue and invoke the function like Lambda's async path.

Lambda's asynchronous invocation: at least once, on error two more attempts with back-off,
then an on-failure record (the event, the error, the attempt count) to the destination.
Here the destination is the dead-letter queue on the emulator. A message is deleted from
the event queue only once it has either succeeded or been recorded as failed, so a worker
that dies loses nothing: SQS hands the message out again after its visibility timeout.
While a worker holds a message, a heartbeat keeps it hidden (see `Heartbeat`), so one
event never runs on two workers at once, however long its retries take.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lambda_pkg.events import s3_records
from pipeline.aws import client
from pipeline.local.sandbox import FunctionProcess, InvocationError, RuntimeImage

logger = logging.getLogger("imgpipe.local")

# Lambda waits about 1 and 2 minutes between async retries; locally we scale that down.
DEFAULT_RETRY_DELAYS_S = (1.0, 2.0)


@dataclass
class PoolStats:
    invocations: int = 0
    succeeded: int = 0
    retried: int = 0
    dead_lettered: int = 0
    extended: int = 0  # heartbeats: visibility extensions of held messages
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def failure_record(
    event: dict[str, Any], error: InvocationError, attempts: int, function_arn: str
) -> dict[str, Any]:
    """The shape of Lambda's on-failure destination record for an async invocation."""
    return {
        "version": "1.0",
        "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorType": error.error_type, "errorMessage": error.message},
    }


class Heartbeat:
    """Keeps one received message hidden while its worker holds it.

    Three attempts of up to the function's timeout plus the back-off between them outlast
    any fixed visibility timeout worth having: without this, SQS hands the message to a
    second worker mid-retry, the event runs twice at once and is dead-lettered twice (and
    redriven twice). Every third of the visibility timeout the message is hidden for a full
    timeout again. The thread lives in the worker's process, so if that dies the extensions
    stop and the message comes back within one visibility timeout: nothing is lost.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        receipt_handle: str,
        visibility_timeout_s: int,
        stats: PoolStats | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._receipt_handle = receipt_handle
        self._visibility_timeout_s = visibility_timeout_s
        self._interval_s = max(visibility_timeout_s / 3, 0.1)
        self._stats = stats or PoolStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A call stuck in an emulator outage must not hold the worker up; at worst it
        # hides a message that is already deleted or given up, once more.
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=self._receipt_handle,
                    VisibilityTimeout=self._visibility_timeout_s,
                )
            except Exception:  # an outage: keep beating; a message lost to it comes back
                logger.warning("heartbeat: extending visibility failed", exc_info=True)
                continue
            self._stats.add(extended=1)


class WorkerPool:
    def __init__(
        self,
        endpoint: str,
        event_queue_url: str,
        dead_letter_queue_url: str,
        image: RuntimeImage,
        environment: dict[str, str],
        function_arn: str,
        workers: int,
        timeout_s: float,
        log_dir: Path,
        visibility_timeout_s: int,
        retry_delays_s: Sequence[float] = DEFAULT_RETRY_DELAYS_S,
        memory_mb: int | None = None,
        pin_cores: bool = False,
    ) -> None:
        self._endpoint = endpoint
        self._pin_cores = pin_cores
        self._event_queue_url = event_queue_url
        self._dead_letter_queue_url = dead_letter_queue_url
        self._image = image
        self._environment = environment
        self._function_arn = function_arn
        self._timeout_s = timeout_s
        self._memory_mb = memory_mb
        self._retry_delays_s = tuple(retry_delays_s)
        self._visibility_timeout_s = visibility_timeout_s
        self._log_dir = log_dir
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"worker-{n}", daemon=True)
            for n in range(workers)
        ]
        self._functions: list[FunctionProcess] = []
        self._functions_lock = threading.Lock()
        self.stats = PoolStats()

    @property
    def size(self) -> int:
        return len(self._threads)

    def start(self) -> WorkerPool:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 30) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        with self._functions_lock:
            for function in self._functions:
                function.stop()

    def function_pids(self) -> list[int]:
        with self._functions_lock:
            return [f.pid for f in self._functions if f.pid is not None]

    def _run(self, number: int) -> None:
        sqs = client("sqs", self._endpoint)
        with open(self._log_dir / f"worker-{number}.log", "a", buffering=1) as log:
            function = FunctionProcess(
                self._image,
                self._environment,
                self._timeout_s,
                log,
                self._memory_mb,
                cpu=worker_core(number) if self._pin_cores else None,
            )
            with self._functions_lock:
                self._functions.append(function)
            while not self._stopping.is_set():
                try:
                    messages = sqs.receive_message(
                        QueueUrl=self._event_queue_url,
                        MaxNumberOfMessages=1,
                        WaitTimeSeconds=1,
                    ).get("Messages", [])
                except Exception:  # the emulator restarting: keep polling, lose nothing
                    logger.warning("worker-%d: receive failed; retrying", number, exc_info=True)
                    time.sleep(0.5)
                    continue
                for message in messages:
                    try:
                        with Heartbeat(
                            sqs,
                            self._event_queue_url,
                            message["ReceiptHandle"],
                            self._visibility_timeout_s,
                            self.stats,
                        ):
                            self._deliver(number, sqs, function, message)
                    except Exception:  # the message stays queued and comes back: keep going
                        logger.exception("worker-%d: delivery failed; SQS will redeliver", number)

    def _deliver(self, number: int, sqs: Any, function: FunctionProcess, message: dict) -> None:
        event = json.loads(message["Body"])
        attempts, error = 0, None
        for delay in (0.0, *self._retry_delays_s):
            if delay:
                self.stats.add(retried=1)
                if self._stopping.wait(delay):
                    return  # shutting down: the message stays on the queue for next time
            attempts += 1
            self.stats.add(invocations=1)
            started = time.monotonic()
            try:
                function.invoke(event)
            except InvocationError as exc:
                error = exc
                logger.warning("worker-%d: attempt %d failed: %s", number, attempts, exc)
                continue
            self.stats.add(succeeded=1)
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.info("worker-%d: %s done in %.0f ms", number, _keys(event), elapsed_ms)
            break
        else:
            assert error is not None
            record = json.dumps(failure_record(event, error, attempts, self._function_arn))
            send = partial(
                sqs.send_message, QueueUrl=self._dead_letter_queue_url, MessageBody=record
            )
            if not self._persist(send):
                return  # shutting down before the DLQ took it: the event stays queued
            self.stats.add(dead_lettered=1)
            logger.warning("worker-%d: %s sent to the dead-letter queue", number, _keys(event))
        receipt = message["ReceiptHandle"]
        self._persist(
            partial(sqs.delete_message, QueueUrl=self._event_queue_url, ReceiptHandle=receipt)
        )

    def _persist(self, call: Callable[[], Any]) -> bool:
        """Retry an SQS call through an emulator outage until it succeeds or we stop.

        Losing a DLQ write would lose the event; a lost delete only means a duplicate
        delivery later, which the handler is built to absorb."""
        delay = 0.2
        while True:
            try:
                call()
                return True
            except Exception:
                logger.warning("SQS call failed; retrying in %.1f s", delay, exc_info=True)
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, 5.0)


def worker_core(number: int) -> int:
    """The core worker `number` is pinned to: from the last one down, so one worker leaves
    the first core to the emulator and the caller."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1 - number % len(cores)]


def _keys(event: dict[str, Any]) -> str:
    # S3 sends an s3:TestEvent to the queue when its notification is set up, at every start:
    # naming it says why a worker ran with no image
    keys = ", ".join(record.key for record in s3_records(event))
    return keys or event.get("Event") or "(no S3 records)"
