"""After a run: is every upload accounted for, and is anything half-written?

Accounted for: an item with status ok or failed (with a reason), or a record on the
dead-letter queue, or (for keys the pipeline must ignore, such as folder markers) nothing.
Half-written: an ok item whose rendition is missing or has another size than recorded, a
failed item with renditions, or an object under processed/ that no item points to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline import ops
from pipeline.targets import Target

FINAL = ("ok", "failed")


@dataclass
class Accounting:
    uploaded: int = 0
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    missing: list[str] = field(default_factory=list)
    half_written: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # outputs no item points to
    dead_letter_orphans: list[str] = field(default_factory=list)  # of DLQ'd keys: redrive

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


def output_sizes(target: Target) -> dict[str, int]:
    s3 = ops.aws(target, "s3")
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.names.output_bucket):
        sizes.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return sizes


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
        items = {i["image_name"]: i for i in ops.items(target)}
        done = {k for k in wanted if items.get(k, {}).get("status") in FINAL}
        letters = dead_lettered_keys(target) if wanted - done else set()
        if not wanted - done - letters or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    if idle is not None:
        idle()
        items = {i["image_name"]: i for i in ops.items(target)}
        letters = dead_lettered_keys(target)
    return items, letters


def account(
    target: Target,
    images: Iterable[str],
    ignored: Iterable[str] = (),
    items: dict[str, dict[str, Any]] | None = None,
    letters: set[str] | None = None,
) -> Accounting:
    """Check the invariants over what the stack holds now."""
    images, ignored = list(images), list(ignored)
    items = items if items is not None else {i["image_name"]: i for i in ops.items(target)}
    letters = letters if letters is not None else dead_lettered_keys(target)
    outputs = output_sizes(target)
    result = Accounting(uploaded=len(images) + len(ignored))
    referenced: set[str] = set()
    for key in images:
        item = items.get(key)
        status = (item or {}).get("status")
        if status == "ok":
            result.processed += 1
            for rendition in item["renditions"]:
                referenced.add(rendition["key"])
                if outputs.get(rendition["key"]) != rendition["bytes"]:
                    result.half_written.append(f"{key}: rendition {rendition['key']} missing")
        elif status == "failed":
            result.failed += 1
            if item.get("renditions") or not item.get("error"):
                result.half_written.append(f"{key}: failed item with renditions or no reason")
        elif key in letters:
            result.dead_lettered += 1
        else:
            result.missing.append(key)
    for key in ignored:
        if key in items:
            result.half_written.append(f"{key}: must be ignored but has an item")
        else:
            result.skipped += 1
    dead = [k for k in images if k in letters and items.get(k, {}).get("status") not in FINAL]
    for output in sorted(set(outputs) - referenced):
        if any(_belongs(output, key) for key in dead):
            result.dead_letter_orphans.append(output)
        else:
            result.orphans.append(output)
    return result


def _belongs(output_key: str, source_key: str) -> bool:
    """Whether an output key was made from this source (the profiles in use keep the name)."""
    name = source_key.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0]
    return source_key in output_key or output_key.rsplit("/", 1)[-1].startswith(f"thumb_{stem}")
