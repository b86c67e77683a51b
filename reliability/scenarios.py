"""Scenarios through the local stack: sandboxed workers fed by S3 events from the emulator,
with faults injected while they run; each ends with the invariants of invariants.py."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from lambda_pkg.events import s3_event
from pipeline.aws import client
from pipeline.cli import ops
from pipeline.local.runner import LocalStack
from reliability import images as image_sets
from reliability.invariants import Accounting, account, settle
from reliability.proxy import FaultPlan, FaultProxy

FAST_RETRIES = (0.2, 0.5)  # Lambda's 1 and 2 minutes between async retries, scaled down
_numbers = itertools.count()


@dataclass
class RunResult:
    scenario: str
    injected: str
    images: int
    workers: int
    accounting: dict[str, Any]
    clean: bool
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def new_stack(**options: Any) -> LocalStack:
    # moto's backends are per process: every stack in one process needs its own names.
    name = f"rel{os.getpid() % 1000}-{next(_numbers)}"
    options.setdefault("workers", 2)
    options.setdefault("retry_delays_s", FAST_RETRIES)
    return LocalStack(stack=name, write_state=False, **options)


def _upload_all(stack: LocalStack, uploads: list[tuple[str, bytes]], threads: int = 4) -> dict:
    """Upload in parallel; returns key -> wall-clock time the upload started."""
    s3 = client("s3", stack.endpoint, max_pool_connections=threads)
    bucket = stack.names.input_bucket
    started: dict[str, float] = {}

    def put(pair: tuple[str, bytes]) -> None:
        started[pair[0]] = time.time()
        s3.put_object(Bucket=bucket, Key=pair[0], Body=pair[1])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, uploads))
    return started


def _result(
    scenario: str,
    injected: str,
    stack: LocalStack,
    accounting: Accounting,
    started: float,
    **extra: Any,
) -> RunResult:
    problems = accounting.missing[:5] + accounting.half_written[:5] + accounting.orphans[:5]
    assert stack.pool is not None
    stats = stack.pool.stats
    extra.setdefault("invocations", stats.invocations)
    extra.setdefault("retried", stats.retried)
    return RunResult(
        scenario=scenario,
        injected=injected,
        images=accounting.uploaded,
        workers=stack.workers,
        accounting=accounting.summary(),
        clean=accounting.clean,
        seconds=round(time.monotonic() - started, 1),
        extra=extra,
        problems=problems,
    )


def _mixed(count: int, prefix: str, seed: int = 1) -> list[tuple[str, bytes]]:
    return [(key, data) for key, _kind, data, _expect in image_sets.mixed(count, prefix, seed)]


# -- faults -------------------------------------------------------------------------------


def throttling(
    count: int = 30, rate: float = 0.2, seed: int = 7, workers: int = 2, timeout_s: float = 300
) -> RunResult:
    """S3, DynamoDB and EventBridge answer `rate` of the function's requests with
    throttling/5xx bodies."""
    began = time.monotonic()
    port = free_port()
    plan = FaultPlan({"s3": rate, "dynamodb": rate, "events": rate}, seed=seed)
    with FaultProxy(f"http://127.0.0.1:{port}", plan) as proxy:
        stack = new_stack(
            port=port, workers=workers, fault_environment={"AWS_ENDPOINT_URL": proxy.endpoint}
        )
        with stack:
            uploads = _mixed(count, "throttle", seed)
            _upload_all(stack, uploads)
            keys = [k for k, _ in uploads]
            items, letters = settle(stack.target(), keys, timeout_s, stack.wait_until_idle)
            accounting = account(stack.target(), keys, items=items, letters=letters)
            injected = (
                f"{rate:.0%} of the function's S3 and DynamoDB requests answered with "
                f"SlowDown/InternalError/ServiceUnavailable (S3) or Throttling/"
                f"ProvisionedThroughputExceeded/InternalServerError (DynamoDB), seed {seed}"
            )
            return _result(
                f"throttling and 5xx at {rate:.0%}",
                injected,
                stack,
                accounting,
                began,
                faults_injected=sum(plan.injected.values()),
                requests_forwarded=sum(plan.forwarded.values()),
                by_code=dict(sorted(plan.injected.items())),
                dead_lettered=stack.pool.stats.dead_lettered if stack.pool else 0,
            )


def sigkill(
    count: int = 12, kills: int = 4, seed: int = 3, workers: int = 2, timeout_s: float = 300
) -> RunResult:
    """SIGKILL a function process while it works on an image, `kills` times; then redrive
    whatever reached the dead-letter queue, and check again."""
    began = time.monotonic()
    rng = random.Random(seed)
    stack = new_stack(workers=workers)
    with stack:
        assert stack.pool is not None
        # Bigger images keep a function busy long enough to be killed mid-image.
        payloads = image_sets.payloads()
        kinds = ["jpeg 4000x3000", "jpeg 1600x1200", "tiff 640x480 cmyk", "webp 1200x800"]
        uploads = [
            (f"kill/{n:04d}-{kinds[n % 4].replace(' ', '-')}.img", payloads[kinds[n % 4]])
            for n in range(count)
        ]
        keys = [k for k, _ in uploads]
        done = threading.Event()
        landed: list[int] = []

        def killer() -> None:
            while len(landed) < kills and not done.is_set():
                time.sleep(rng.uniform(0.3, 0.8))
                pids = stack.pool.function_pids()
                if not pids:
                    continue
                pid = rng.choice(pids)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                landed.append(pid)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        _upload_all(stack, uploads)
        thread.join(timeout_s)
        done.set()
        first, final, redriven = _account_and_redrive(stack, keys, timeout_s)
        result = _result(
            "worker killed mid-image",
            f"SIGKILL to a function process {len(landed)} times while images were in flight",
            stack,
            final,
            began,
            kills=len(landed),
            # A kill between invocations costs only a cold start; one mid-image, a retry.
            kills_mid_invocation=stack.pool.stats.retried,
            dead_lettered_before_redrive=first.dead_lettered,
            partial_outputs_before_redrive=len(first.dead_letter_orphans),
            redriven=redriven,
        )
        result.clean = final.clean and not first.missing and not first.orphans
        return result


def _account_and_redrive(stack: LocalStack, keys: list[str], timeout_s: float):
    """Account for every key once things settle; redrive the DLQ and account again.
    Returns (first accounting, final accounting, events redriven)."""
    items, letters = settle(stack.target(), keys, timeout_s, stack.wait_until_idle)
    first = account(stack.target(), keys, items=items, letters=letters)
    redriven = 0
    if letters:
        redriven = ops.redrive(stack.target(), progress=lambda _key: None)
        items, letters = settle(stack.target(), keys, timeout_s, stack.wait_until_idle)
    return first, account(stack.target(), keys, items=items, letters=letters), redriven


def emulator_restart(
    count: int = 40,
    restarts: int = 2,
    down_s: float = 2.0,
    workers: int = 2,
    timeout_s: float = 300,
) -> RunResult:
    """Stop the emulator mid-run (every connection fails), start it again on its port."""
    began = time.monotonic()
    stack = new_stack(port=free_port(), workers=workers)
    with stack:
        uploads = _mixed(count, "restart", seed=5)
        keys = [k for k, _ in uploads]
        _upload_all(stack, uploads)
        for _ in range(restarts):
            time.sleep(1.0)
            stack.restart_emulator(down_s)
        first, final, redriven = _account_and_redrive(stack, keys, timeout_s)
        result = _result(
            "emulator restarted mid-run",
            f"moto stopped for {down_s:.0f} s and restarted on its port, {restarts} times",
            stack,
            final,
            began,
            dead_lettered_before_redrive=first.dead_lettered,
            redriven=redriven,
        )
        result.clean = final.clean and not first.missing and not first.orphans
        return result


# -- ordering and duplicates through the queue --------------------------------------------


def ordering(keys: int = 10, workers: int = 2, seed: int = 11, timeout_s: float = 120) -> RunResult:
    """Per key: the newer event twice, the older twice, shuffled onto the queue (S3's
    at-least-once, any-order delivery), plus an s3:TestEvent, a folder marker and a
    zero-byte object. The newer sequencer must win, every time."""
    began = time.monotonic()
    rng = random.Random(seed)
    stack = new_stack(workers=workers)
    with stack:
        target = stack.target()
        payloads = image_sets.payloads()
        uploads = [(f"order/{n:03d}.jpg", payloads["jpeg 640x480"]) for n in range(keys)]
        names = [k for k, _ in uploads]
        _upload_all(stack, uploads)
        # The uploads' own events first; then events newer and older than theirs.
        stored, _ = settle(target, names, timeout_s, stack.wait_until_idle)
        first = min(stored[k]["sequencer"] for k in names)[:16]
        last = max(stored[k]["sequencer"] for k in names)[:16]
        newer, older = f"{int(last, 16) + 1:016X}", f"{int(first, 16) - 1:016X}"
        size = len(payloads["jpeg 640x480"])
        events = [
            s3_event(target.names.input_bucket, key, size, sequencer, "ObjectCreated:Put")
            for key in names
            for sequencer in (newer, newer, older, older.lower())
        ]
        rng.shuffle(events)
        ops.send_events(target, events, progress=lambda _key: None)
        test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "x"}
        sqs = client("sqs", stack.endpoint)  # ops.send_events wants Records; this has none
        sqs.send_message(QueueUrl=target.event_queue_url, MessageBody=json.dumps(test_event))
        ignored = {"order/folder/": b"", "order/empty.jpg": b""}
        _upload_all(stack, list(ignored.items()))
        stack.wait_until_idle(timeout_s)
        items, letters = settle(target, [*names, "order/empty.jpg"], timeout_s)
        accounting = account(
            target,
            [*names, "order/empty.jpg"],
            ignored=["order/folder/"],
            items=items,
            letters=letters,
        )
        want = newer.ljust(64, "0")
        wrong = [k for k in names if items.get(k, {}).get("sequencer") != want]
        empty = items.get("order/empty.jpg", {})
        problems = [f"{k}: sequencer {items.get(k, {}).get('sequencer')}" for k in wrong]
        if "empty" not in empty.get("error", ""):
            problems.append(f"zero-byte object: {empty}")
        result = _result(
            "duplicates and out-of-order events",
            f"{len(events)} S3 events for {keys} keys (newer x2, older x2, shuffled), "
            "an s3:TestEvent, a folder marker, a zero-byte object",
            stack,
            accounting,
            began,
            newer_won=len(names) - len(wrong),
        )
        result.problems += problems
        result.clean = result.clean and not problems
        return result


# -- integrity through the queue ----------------------------------------------------------


def integrity(groups: int = 6, workers: int = 2, timeout_s: float = 300) -> RunResult:
    """Per group, back to back so the workers race: one file name in two folders (a key
    collision under `thumbnail`), a good image overwritten by junk, an upload deleted at
    once, an upload replaced by another image. Every invariant must hold at the end."""
    began = time.monotonic()
    stack = new_stack(workers=workers, profile="thumbnail")
    with stack:
        target = stack.target()
        s3 = client("s3", stack.endpoint)
        bucket = stack.names.input_bucket
        payloads = image_sets.payloads()
        big, small = payloads["jpeg 1600x1200"], payloads["jpeg 640x480"]
        present, deleted, collided = [], [], []
        for n in range(groups):
            pair = (f"integrity/a{n}/photo{n}.jpg", f"integrity/b{n}/photo{n}.jpg")
            steps = [
                ("put", pair[0], big),
                ("put", pair[1], small),
                ("put", f"integrity/over{n}.jpg", big),
                ("put", f"integrity/over{n}.jpg", b"junk, not an image" * 20),
                ("put", f"integrity/gone{n}.jpg", big),
                ("delete", f"integrity/gone{n}.jpg", b""),
                ("put", f"integrity/swap{n}.jpg", big),
                ("put", f"integrity/swap{n}.jpg", small),
            ]
            for action, key, data in steps:
                if action == "put":
                    s3.put_object(Bucket=bucket, Key=key, Body=data)
                else:
                    s3.delete_object(Bucket=bucket, Key=key)
            collided.append(pair)
            present += [*pair, f"integrity/over{n}.jpg", f"integrity/swap{n}.jpg"]
            deleted.append(f"integrity/gone{n}.jpg")
        stack.wait_until_idle(timeout_s)
        items, letters = settle(target, present, timeout_s, stack.wait_until_idle)
        accounting = account(target, present, items=items, letters=letters)
        problems = [
            f"{key}: {items.get(key, {}).get('status')} after its delete"
            for key in deleted
            if items.get(key, {}).get("status") != "deleted"
        ]
        problems += [
            f"{pair}: {[items.get(k, {}).get('status') for k in pair]}, want one ok, one failed"
            for pair in collided
            if sorted(items.get(k, {}).get("status", "") for k in pair) != ["failed", "ok"]
        ]
        problems += [
            f"integrity/over{n}.jpg: not failed after the junk overwrite"
            for n in range(groups)
            if items.get(f"integrity/over{n}.jpg", {}).get("status") != "failed"
        ]
        result = _result(
            "integrity: collisions, overwrites, deletes racing creates",
            f"{groups} groups of back-to-back uploads: one name in two folders (thumbnail "
            "flattens folders), good then junk at one key, upload then delete, upload then "
            "another image at one key",
            stack,
            accounting,
            began,
        )
        result.problems += problems
        result.clean = result.clean and not problems
        return result


# -- load ---------------------------------------------------------------------------------


def _epoch(timestamp: str) -> float:
    return (
        dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def load(
    count: int = 200, workers: int = 2, profile: str = "thumbnail", timeout_s: float = 1800
) -> RunResult:
    """`count` mixed uploads as fast as four clients can send them; zero may be lost."""
    began = time.monotonic()
    stack = new_stack(workers=workers, profile=profile)
    with stack:
        mix = image_sets.mixed(count, "load", seed=count)
        uploads = [(key, data) for key, _kind, data, _expect in mix]
        keys = [k for k, _ in uploads]
        upload_began = time.time()
        started = _upload_all(stack, uploads)
        upload_s = time.time() - upload_began
        items, letters = settle(stack.target(), keys, timeout_s, stack.wait_until_idle, poll_s=2)
        accounting = account(stack.target(), keys, items=items, letters=letters)
        finished = {k: _epoch(items[k]["timestamp"]) for k in keys if k in items}
        latencies = [finished[k] - started[k] for k in finished]
        span = max(finished.values()) - min(started.values()) if finished else float("nan")
        wrong = [k for k, _kind, _data, expect in mix if items.get(k, {}).get("status") != expect]
        result = _result(
            f"load: {count:,} mixed uploads",
            f"{count:,} uploads from 4 parallel clients "
            f"({len(image_sets.KINDS)} kinds: JPEG 0.3-12 MP, PNG, WebP, GIF, TIFF, broken)",
            stack,
            accounting,
            began,
            profile=profile,
            upload_s=round(upload_s, 1),
            throughput_per_s=round(len(finished) / span, 1) if finished else 0.0,
            latency_p50_s=round(percentile(latencies, 50), 2) if latencies else None,
            latency_p95_s=round(percentile(latencies, 95), 2) if latencies else None,
            latency_p99_s=round(percentile(latencies, 99), 2) if latencies else None,
            latency_mean_s=round(statistics.fmean(latencies), 2) if latencies else None,
            unexpected_status=len(wrong),
        )
        result.problems += [f"{k}: expected another status" for k in wrong[:5]]
        result.clean = result.clean and not wrong and not accounting.dead_lettered
        return result


@contextmanager
def quiet_logs() -> Iterator[None]:
    """The workers warn on every retry; in a fault run that is expected, not news."""
    import logging

    logger = logging.getLogger("imgpipe.local")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
