"""After a run: is every upload accounted for, and do the renditions match the record?

Accounted for: an item with status ok or failed (with a reason), or a record on the
dead-letter queue, or (for keys the pipeline must ignore, such as folder markers) nothing.

The integrity invariants (`violations`), checked over a snapshot of the whole stack:
- every `ok` item's listed renditions exist, decode, and have the recorded width, height
  and bytes; its original still exists;
- every object under processed/ has exactly one owning source: its owner record names the
  source, whose `ok` item lists it, and no other item lists it;
- a `deleted` or `failed` item lists no rendition and owns no key.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lambda_pkg import wire
from lambda_pkg.records import current_owner, is_owner_record
from pipeline.cli import ops
from pipeline.cli.targets import Target


@dataclass
class Snapshot:
    """What a stack holds at one moment: image items, owner records, outputs, originals."""

    items: dict[str, dict[str, Any]]
    owners: dict[str, str]  # output key -> owning source key (released keys absent)
    outputs: dict[str, bytes]
    originals: set[str]


def snapshot(s3: Any, dynamodb: Any, input_bucket: str, output_bucket: str, table: str) -> Snapshot:
    items: dict[str, dict[str, Any]] = {}
    owners: dict[str, str] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for raw in page.get("Items", []):
            entry = wire.decode(raw)
            if not is_owner_record(entry):
                items[entry["image_name"]] = entry
            elif current_owner(entry):
                owners[entry["output_key"]] = entry["owner"]
    outputs = {
        key: s3.get_object(Bucket=output_bucket, Key=key)["Body"].read()
        for key in _keys(s3, output_bucket)
    }
    return Snapshot(items, owners, outputs, set(_keys(s3, input_bucket)))


def _keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def target_snapshot(target: Target) -> Snapshot:
    names = target.names
    return snapshot(
        ops.aws(target, "s3"),
        ops.aws(target, "dynamodb"),
        names.input_bucket,
        names.output_bucket,
        names.metadata_table,
    )


def violations(state: Snapshot, in_flight: Iterable[str] = ()) -> list[str]:
    """Every broken invariant, one line each. Sources in `in_flight` (dead-lettered, so
    their last attempt may have stopped half-way) may own keys no item lists yet."""
    from PIL import Image  # reliability only: the pipeline package never imports Pillow

    problems: list[str] = []
    listed_by: Counter[str] = Counter()
    for key, item in sorted(state.items.items()):
        status = item.get("status")
        renditions = item.get("renditions") or []
        if status != "ok":
            if renditions:
                problems.append(f"{key}: {status} item lists renditions")
            continue
        if key not in state.originals:
            problems.append(f"{key}: ok item, but the original is gone")
        for rendition in renditions:
            output_key = rendition["key"]
            listed_by[output_key] += 1
            data = state.outputs.get(output_key)
            if data is None:
                problems.append(f"{key}: rendition {output_key} missing")
                continue
            if len(data) != rendition["bytes"]:
                problems.append(
                    f"{key}: {output_key} is {len(data)} bytes, item says {rendition['bytes']}"
                )
            try:
                with Image.open(io.BytesIO(data)) as picture:
                    size = picture.size
                    picture.load()
            except Exception as exc:  # whatever it is, the rendition is broken
                problems.append(f"{key}: {output_key} does not decode: {exc}")
                continue
            if size != (rendition["width"], rendition["height"]):
                problems.append(
                    f"{key}: {output_key} is {size}, item says "
                    f"{rendition['width']}x{rendition['height']}"
                )
            if state.owners.get(output_key) != key:
                problems.append(
                    f"{key}: lists {output_key}, owned by {state.owners.get(output_key)!r}"
                )
    for output_key, count in listed_by.items():
        if count > 1:
            problems.append(f"{output_key}: listed by {count} ok items")
    waiting = set(in_flight)
    for output_key in sorted(set(state.outputs) - set(listed_by)):
        if state.owners.get(output_key) not in waiting:
            problems.append(
                f"{output_key}: no ok item lists it (owner {state.owners.get(output_key)!r})"
            )
    for output_key, owner in sorted(state.owners.items()):
        if owner in waiting:
            continue
        if (state.items.get(owner) or {}).get("status") != "ok":
            problems.append(f"{owner}: not ok, but owns {output_key}")
        elif output_key not in listed_by:
            problems.append(f"{owner}: owns {output_key} without listing it")
    return problems


FINAL = ("ok", "failed")


@dataclass
class Accounting:
    uploaded: int = 0
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    missing: list[str] = field(default_factory=list)
    half_written: list[str] = field(default_factory=list)  # broken invariants (violations)
    orphans: list[str] = field(default_factory=list)  # outputs no ok item lists
    dead_letter_orphans: list[str] = field(default_factory=list)  # owned by DLQ'd keys

    @property
    def clean(self) -> bool:
        return not (self.missing or self.half_written or self.orphans)

    def summary(self) -> dict[str, Any]:
        return {
            "uploaded": self.uploaded,
            "processed": self.processed,
            "failed": self.failed,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "missing": len(self.missing),
            "half_written": len(self.half_written) + len(self.orphans),
            "dlq_partial_outputs": len(self.dead_letter_orphans),
        }


def dead_lettered_keys(target: Target) -> set[str]:
    return {key for letter in ops.dead_letters(target, hold_s=0) for key in letter.keys}


def settle(
    target: Target,
    images: Iterable[str],
    timeout_s: float,
    idle: Callable[[], bool] | None = None,
    poll_s: float = 0.5,
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Wait until every image has a final item or a dead letter (then for the stack to go
    idle, so no retry is still in flight); returns the items and the dead-lettered keys."""
    wanted = set(images)
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = {i["image_name"]: i.get("status") for i in ops.items(target, ("status",))}
        done = {k for k in wanted if statuses.get(k) in FINAL}
        letters = dead_lettered_keys(target) if wanted - done else set()
        if not wanted - done - letters or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    if idle is not None:
        idle()
        letters = dead_lettered_keys(target)
    return {i["image_name"]: i for i in ops.items(target)}, letters


def account(
    target: Target,
    images: Iterable[str],
    ignored: Iterable[str] = (),
    items: dict[str, dict[str, Any]] | None = None,
    letters: set[str] | None = None,
) -> Accounting:
    """Account for every upload, and check the integrity invariants over the whole stack."""
    images, ignored = list(images), list(ignored)
    state = target_snapshot(target)
    items = items if items is not None else state.items
    letters = letters if letters is not None else dead_lettered_keys(target)
    result = Accounting(uploaded=len(images) + len(ignored))
    for key in images:
        item = items.get(key)
        status = (item or {}).get("status")
        if status == "ok":
            result.processed += 1
        elif status == "failed":
            result.failed += 1
            if not item.get("error"):
                result.half_written.append(f"{key}: failed item without a reason")
        elif key in letters:
            result.dead_lettered += 1
        else:
            result.missing.append(key)
    for key in ignored:
        if key in items:
            result.half_written.append(f"{key}: must be ignored but has an item")
        else:
            result.skipped += 1
    # A dead-lettered event may have stopped after claiming and writing, before its item:
    # what it owns waits for the redrive, which finishes or removes it.
    dead = {k for k in images if k in letters and items.get(k, {}).get("status") not in FINAL}
    result.dead_letter_orphans = sorted(k for k, owner in state.owners.items() if owner in dead)
    for problem in violations(state, in_flight=dead):
        is_orphan = problem.startswith("processed/")
        (result.orphans if is_orphan else result.half_written).append(problem)
    return result
