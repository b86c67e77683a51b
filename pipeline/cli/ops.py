"""What the everyday commands do, against a Target (the emulator or a deployed stack)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambda_pkg import records, wire
from lambda_pkg.events import s3_event
from lambda_pkg.profiles import OUTPUT_PREFIX, PipelineConfig
from lambda_pkg.records import TABLE_KEY, is_owner_record, owner_index_query
from lambda_pkg.settings import ENV_PROFILE_CONFIG
from pipeline.aws import client
from pipeline.cli.targets import Target

Progress = Callable[[str], None]


def aws(target: Target, service: str) -> Any:
    return client(service, target.endpoint)


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB numbers come back as Decimal; the commands show plain ints."""
    return wire.plain(wire.decode(raw))


def items(target: Target, attributes: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every image item, by key (only `attributes` of each, when given: a cheaper scan for
    polling). The table also holds the renditions' owner records (`owner#<output key>`);
    they are not images, so they are left out."""
    dynamodb = aws(target, "dynamodb")
    scan: dict[str, Any] = {"TableName": target.names.metadata_table}
    if attributes:
        wanted = (TABLE_KEY, "record_type", *attributes)
        names = {f"#a{i}": name for i, name in enumerate(wanted)}
        scan.update(ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
    found = []
    for page in dynamodb.get_paginator("scan").paginate(**scan):
        found.extend(_item(raw) for raw in page.get("Items", []))
    images = [entry for entry in found if not is_owner_record(entry)]
    return sorted(images, key=lambda item: item["image_name"])


def item(target: Target, key: str) -> dict[str, Any] | None:
    raw = aws(target, "dynamodb").get_item(
        TableName=target.names.metadata_table,
        Key=wire.key(key),
        ConsistentRead=True,
    )
    return _item(raw["Item"]) if "Item" in raw else None


def input_objects(target: Target, prefix: str = "") -> Iterator[dict[str, Any]]:
    s3 = aws(target, "s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=target.names.input_bucket, Prefix=prefix
    )
    for page in pages:
        yield from page.get("Contents", [])


def output_keys(target: Target) -> set[str]:
    """Every rendition key in the output bucket. One listing request covers 1,000 keys,
    where checking each item's renditions would cost a request per rendition."""
    return set(output_etags(target))


def output_etags(target: Target) -> dict[str, str]:
    """Every rendition key in the output bucket with its ETag (the MD5 of its bytes, for a
    single-part upload such as the function's), from the same listing."""
    s3 = aws(target, "s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=target.names.output_bucket, Prefix=OUTPUT_PREFIX
    )
    return {obj["Key"]: obj["ETag"] for page in pages for obj in page.get("Contents", [])}


def missing_renditions(entry: dict[str, Any], present: set[str]) -> list[str]:
    """The rendition keys an `ok` item lists that are not in `present` (the output bucket's
    keys). Other items own no renditions: a `deleted` item's list is what was removed."""
    if entry.get("status") != records.STATUS_OK:
        return []
    return [r["key"] for r in entry.get("renditions", []) if r["key"] not in present]


def rendition_exists(target: Target, key: str) -> bool | None:
    """Whether one rendition is in the output bucket; None when S3 will not say (403:
    without s3:ListBucket a missing object is a 403, not a 404)."""
    try:
        aws(target, "s3").head_object(Bucket=target.names.output_bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            return None
        raise
    return True


# -- upload -------------------------------------------------------------------------------


def files_to_upload(paths: Iterable[Path], prefix: str = "") -> list[tuple[Path, str]]:
    """(file, key) pairs: files as their name, folders recursively by relative path."""
    pairs = []
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                pairs.append((file, prefix + file.relative_to(path).as_posix()))
        elif path.is_file():
            pairs.append((path, prefix + path.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return pairs


def upload(target: Target, pairs: list[tuple[Path, str]], progress: Progress) -> None:
    s3 = aws(target, "s3")
    for file, key in pairs:
        s3.upload_file(str(file), target.names.input_bucket, key)
        progress(key)


def upload_bytes(target: Target, objects: dict[str, bytes]) -> None:
    s3 = aws(target, "s3")
    for key, data in objects.items():
        s3.put_object(Bucket=target.names.input_bucket, Key=key, Body=data)


# -- reprocess ----------------------------------------------------------------------------


def current_config(target: Target) -> PipelineConfig:
    """The profile configuration the function runs with now: its own environment."""
    if "profile_config" in target.extra:
        text = target.extra["profile_config"]
    else:
        configuration = aws(target, "lambda").get_function_configuration(
            FunctionName=target.names.function
        )
        text = configuration["Environment"]["Variables"][ENV_PROFILE_CONFIG]
    return PipelineConfig.from_json(text)


@dataclass(frozen=True)
class ReprocessPlan:
    events: list[dict[str, Any]]
    current: int  # already processed with the current profile: skipped
    unrouted: int  # no profile route matches the key
    missing: int = 0  # of the events: current profile, but renditions gone from the bucket
    retried: int = 0  # of the events: lost a key collision, or marked deleted but present


# Failures a re-run can fix without a profile change: the colliding key may be free now.
RETRYABLE_ERRORS = ("OutputKeyTaken",)


def plan_reprocess(target: Target, config: PipelineConfig, everything: bool) -> ReprocessPlan:
    """Events for the inputs whose item is older than the current profile, or whose listed
    renditions are missing from the output bucket; every routed input if `everything`."""
    stored = {entry["image_name"]: entry for entry in items(target)}
    present = set() if everything else output_keys(target)
    events, current, unrouted, missing, retried = [], 0, 0, 0, 0
    for obj in input_objects(target):
        key = obj["Key"]
        profile = config.profile_for(key)
        if profile is None or key.endswith("/"):
            unrouted += 1
            continue
        entry = stored.get(key)
        if not everything and entry and entry.get("profile_hash") == profile.content_hash():
            if _retryable(entry):
                retried += 1
            elif missing_renditions(entry, present):
                missing += 1
            else:
                current += 1
                continue
        # The stored sequencer lets the conditional write accept this re-run. With no item,
        # an attempt that died after claiming its keys left its sequencer on their records.
        sequencer = (entry or {}).get("sequencer") or claimed_sequencer(target, key)
        events.append(
            s3_event(target.names.input_bucket, key, obj["Size"], sequencer, "ObjectCreated:Put")
        )
    return ReprocessPlan(events, current, unrouted, missing, retried)


def claimed_sequencer(target: Target, source_key: str) -> str:
    """The newest sequencer on the owner records of `source_key` ("" when none): a re-run
    must carry it, or it counts as older than the claims and steps aside."""
    query = owner_index_query(target.names.metadata_table, source_key)
    pages = aws(target, "dynamodb").get_paginator("query").paginate(**query)
    records = (item(target, name) or {} for name in wire.names(pages))
    return max((r.get("sequencer", "") for r in records), default="")


def _retryable(entry: dict[str, Any]) -> bool:
    """An item a re-run may change with the same profile: it lost a key collision (the key
    may be free now), or it says `deleted` while its original is there (an undelete)."""
    if entry.get("status") == records.STATUS_FAILED:
        return entry.get("error_type") in RETRYABLE_ERRORS
    return entry.get("status") == records.STATUS_DELETED


def send_events(
    target: Target, events: list[dict[str, Any]], progress: Progress, parallel: int = 8
) -> None:
    """Locally onto the event queue (as S3 would); in AWS as async Lambda invocations."""
    if target.is_local:
        if not target.event_queue_url:
            raise RuntimeError("the local stack has no event queue; is `imgpipe local` running?")
        sqs = aws(target, "sqs")
        for start in range(0, len(events), 10):  # SQS batches hold at most 10 messages
            batch = events[start : start + 10]
            sqs.send_message_batch(
                QueueUrl=target.event_queue_url,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(e)} for i, e in enumerate(batch)],
            )
            for event in batch:
                progress(_event_key(event))
        return
    lambda_client = aws(target, "lambda")

    def invoke(event: dict[str, Any]) -> str:
        lambda_client.invoke(
            FunctionName=target.names.function,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        return _event_key(event)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for key in pool.map(invoke, events):
            progress(key)


def _event_key(event: dict[str, Any]) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(event["Records"][0]["s3"]["object"]["key"])


# -- waiting ------------------------------------------------------------------------------


def wait_for(
    target: Target,
    keys: Iterable[str],
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any] | None]:
    """Poll the table until every key's item satisfies `done`, or the time is up."""
    pending = set(keys)
    results: dict[str, dict[str, Any] | None] = dict.fromkeys(pending)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for key in sorted(pending):
            entry = item(target, key)
            if entry is not None and done(entry):
                results[key] = entry
                pending.discard(key)
                if progress:
                    progress(key)
        if pending:
            time.sleep(0.25)
    for key in pending:
        results[key] = item(target, key)
    return results


# -- dead-letter queue --------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    receipt_handle: str
    record: dict[str, Any]

    @property
    def event(self) -> dict[str, Any]:
        return self.record.get("requestPayload", {})

    @property
    def keys(self) -> list[str]:
        from lambda_pkg.events import s3_records

        return [r.key for r in s3_records(self.event)]

    @property
    def error(self) -> str:
        response = self.record.get("responsePayload") or {}
        return f"{response.get('errorType', '?')}: {response.get('errorMessage', '')}"

    @property
    def attempts(self) -> int:
        return int(self.record.get("requestContext", {}).get("approximateInvokeCount", 0))

    @property
    def timestamp(self) -> str:
        return str(self.record.get("timestamp", ""))


def dead_letters(target: Target, hold_s: int = 30) -> list[DeadLetter]:
    """Everything on the DLQ. Messages stay hidden for `hold_s` (0 to peek and release)."""
    if not target.dead_letter_queue_url:
        raise RuntimeError("this stack has no dead-letter queue output")
    sqs = aws(target, "sqs")
    letters: dict[str, DeadLetter] = {}
    for _ in range(100):  # bounded: 1,000 messages at most per call
        messages = sqs.receive_message(
            QueueUrl=target.dead_letter_queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=max(hold_s, 1),
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            letters[message["MessageId"]] = DeadLetter(
                message["ReceiptHandle"], json.loads(message["Body"])
            )
    if hold_s == 0:
        for letter in letters.values():
            sqs.change_message_visibility(
                QueueUrl=target.dead_letter_queue_url,
                ReceiptHandle=letter.receipt_handle,
                VisibilityTimeout=0,
            )
    return list(letters.values())


def dead_lettered(target: Target) -> dict[str, DeadLetter]:
    """Each key on the dead-letter queue with its latest failure record. A peek: the
    records stay on the queue for `dlq redrive`. A stack without a DLQ output has none."""
    if not target.dead_letter_queue_url:
        return {}
    latest: dict[str, DeadLetter] = {}
    for letter in sorted(dead_letters(target, hold_s=0), key=lambda letter: letter.timestamp):
        latest.update(dict.fromkeys(letter.keys, letter))
    return latest


def redrive(target: Target, progress: Progress, letters: list[DeadLetter] | None = None) -> int:
    """Send every dead letter's original event through the function again, then drop it.

    `letters` read beforehand (held hidden, e.g. to size a progress bar) saves a re-read."""
    if letters is None:
        letters = dead_letters(target, hold_s=60)
    sqs = aws(target, "sqs")
    for letter in letters:
        send_events(target, [letter.event], progress=lambda _key: None)
        sqs.delete_message(
            QueueUrl=target.dead_letter_queue_url, ReceiptHandle=letter.receipt_handle
        )
        progress(", ".join(letter.keys) or "(event without S3 records)")
    return len(letters)
