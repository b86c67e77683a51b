"""Renditions match their item: ownership, overwrites and deletes, in every delivery order.

A scenario is a list of S3 operations (put bytes at a key, delete a key, change the
profile and reprocess). Each runs through the handler (moto in-process) in four deliveries:
- `sequential`: each operation's event is handled before the next operation;
- `duplicated`: the same, every event delivered twice;
- `burst`: every operation happens first, then the events arrive in order;
- `reversed`: every operation first, then the events newest first (S3 may do that).
After each, the invariants of invariants.py hold, and per key the newest event's result is
the one recorded: gone => `deleted`; junk => `failed`; an image => `ok`, or `failed` as the
loser of a key collision.

Two more ways in: `run_with_fault` fails the scenario's n-th AWS call once (throttling, a
5xx, a timeout) and retries the event as Lambda does; `during_render` handles a second
event for the key while a create is between its render, its claims and its writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError

from lambda_pkg import workflow
from lambda_pkg.events import normalise_sequencer, s3_event
from lambda_pkg.handler import process_event
from lambda_pkg.metadata import MetadataStore
from lambda_pkg.profiles import Profile, load_named, profile_from_dict
from reliability import images as image_sets
from reliability.invariants import snapshot, violations
from reliability.world import INPUT_BUCKET, OUTPUT_BUCKET, TABLE, World

DELIVERIES = ("sequential", "duplicated", "burst", "reversed")
COLLISION = "already holds the rendition of"


def same_format_profile() -> Profile:
    """`format: same`: the extension follows the bytes, so a PNG replacing a JPEG at one key
    moves the rendition to another key."""
    return profile_from_dict(
        {
            "name": "same",
            "renditions": [
                {
                    "name": "small",
                    "resize": {"mode": "fit", "width": 160, "height": 160},
                    "format": "same",
                    "key": "processed/{key}.{ext}",
                }
            ],
        },
        source="reliability/integrity.py",
    )


def two_renditions() -> Profile:
    """The smallest profile with the interesting middle states (one rendition written, the
    other not): what the fault sweeps use, where `web`'s seven would only repeat them."""
    return profile_from_dict(
        {
            "name": "pair",
            "renditions": [
                {
                    "name": name,
                    "resize": {"mode": "width", "width": width},
                    "format": fmt,
                    "key": "processed/{key}/{rendition}.{ext}",
                }
                for name, width, fmt in (("large", 320, "webp"), ("small", 120, "jpeg"))
            ],
        },
        source="reliability/integrity.py (pair)",
    )


def hashed_profile() -> Profile:
    """One rendition in two formats at {hash} keys: new bytes at a key move both objects."""
    return profile_from_dict(
        {
            "name": "hashed",
            "renditions": [
                {
                    "name": "w",
                    "resize": {"mode": "width", "width": 200},
                    "format": ["webp", "jpeg"],
                    "key": "processed/{key}/{hash}/{rendition}.{ext}",
                }
            ],
        },
        source="reliability/integrity.py (hashed)",
    )


def _moved_web() -> Profile:
    """`web` after an edit that moves every rendition to other keys."""
    data = load_named("web").to_dict()
    for rendition in data["renditions"]:
        rendition["key"] = rendition["key"].replace("processed/", "processed/v2/")
    return profile_from_dict(data, source="reliability/integrity.py (web, keys moved)")


@dataclass(frozen=True)
class Op:
    kind: str  # put | delete | reprocess
    key: str = ""
    data: bytes = b""
    profile: Callable[[], Profile] | None = None  # reprocess: the profile from now on


@dataclass
class Scenario:
    name: str
    profile: Callable[[], Profile]
    ops: list[Op]
    collisions: set[str] = field(default_factory=set)  # keys that may lose a collision


def scenarios() -> list[Scenario]:
    payloads = image_sets.payloads()
    big, small = payloads["jpeg 1600x1200"], payloads["jpeg 640x480"]
    png = payloads["png 800x600 rgba"]
    junk = b"this is not an image" * 40
    thumbnail, web = (lambda: load_named("thumbnail")), (lambda: load_named("web"))

    def put(key: str, data: bytes) -> Op:
        return Op("put", key, data)

    def delete(key: str) -> Op:
        return Op("delete", key)

    pair = ("in/a/photo.jpg", "in/b/photo.jpg")
    return [
        Scenario("same name in two folders", thumbnail, [put(pair[0], big), put(pair[1], small)],
                 collisions=set(pair)),
        Scenario("collision, then the owner is deleted", thumbnail,
                 [put(pair[0], big), put(pair[1], small), delete(pair[0])], collisions=set(pair)),
        Scenario("collision, then the loser is deleted", thumbnail,
                 [put(pair[0], big), put(pair[1], small), delete(pair[1])], collisions=set(pair)),
        Scenario("good image, then junk at the same key", web,
                 [put("over/a.jpg", big), put("over/a.jpg", junk)]),
        Scenario("junk, then a good image at the same key", web,
                 [put("over/b.jpg", junk), put("over/b.jpg", small)]),
        Scenario("JPEG replaced by a PNG (format same: the extension changes)",
                 same_format_profile, [put("ext/c.jpg", big), put("ext/c.jpg", png)]),
        Scenario("profile edit that moves keys, then reprocess", web,
                 [put("edit/d.jpg", small), Op("reprocess", profile=_moved_web)]),
        Scenario("delete before the create is handled", thumbnail,
                 [put("early/e.jpg", small), delete("early/e.jpg")]),
        Scenario("upload, delete, upload again", thumbnail,
                 [put("again/f.jpg", small), delete("again/f.jpg"), put("again/f.jpg", big)]),
        Scenario("{hash} keys in two formats, then other bytes at the same key",
                 hashed_profile, [put("hash/h.jpg", big), put("hash/h.jpg", small)]),
    ]  # fmt: skip


@dataclass
class Outcome:
    scenario: str
    delivery: str
    problems: list[str]
    calls: int = 0  # AWS calls the handler made (those a fault can be injected into)

    @property
    def passed(self) -> bool:
        return not self.problems


class _Run:
    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world, self.scenario = world, scenario
        self.profile = scenario.profile()
        self.last: dict[str, tuple[str, Op]] = {}  # key -> (sequencer, operation)
        self._numbers = iter(range(1, 1_000_000))

    def apply(self, op: Op) -> list[dict[str, Any]]:
        """Do the S3 side of an operation; returns the events S3 (or reprocess) sends."""
        if op.kind == "reprocess":
            assert op.profile is not None
            self.profile = op.profile()
            return [self._event(key, last[1], last[0]) for key, last in self.last.items()]
        sequencer = f"0055AED6DCD9{next(self._numbers):06X}"
        if op.kind == "put":
            self.world.upload(op.key, op.data)
        else:
            self.world.s3.delete_object(Bucket=INPUT_BUCKET, Key=op.key)
        self.last[op.key] = (sequencer, op)
        return [self._event(op.key, op, sequencer)]

    def _event(self, key: str, op: Op, sequencer: str) -> dict[str, Any]:
        name = "ObjectCreated:Put" if op.kind == "put" else "ObjectRemoved:Delete"
        return s3_event(INPUT_BUCKET, key, len(op.data), sequencer, name)

    def deliver(self, event: dict[str, Any]) -> None:
        process_event(event, self.world.settings(self.profile), self.world.s3, self.world.dynamodb)

    def check(self) -> list[str]:
        state = snapshot(self.world.s3, self.world.dynamodb, INPUT_BUCKET, OUTPUT_BUCKET, TABLE)
        problems = violations(state)
        for key, (sequencer, op) in sorted(self.last.items()):
            item = state.items.get(key) or {}
            status, error = item.get("status"), item.get("error", "")
            if item.get("sequencer") != normalise_sequencer(sequencer):
                problems.append(f"{key}: item is not the newest event's ({item.get('sequencer')})")
            if op.kind == "delete":
                expected = status == "deleted"
            elif op.data.startswith(b"this is not"):
                expected = status == "failed"
            else:
                lost = key in self.scenario.collisions and COLLISION in error
                expected = status == "ok" or (status == "failed" and lost)
            if not expected:
                problems.append(f"{key}: {status} after its last {op.kind} ({error[:80]})")
        return problems


def run(world: World, scenario: Scenario, delivery: str) -> Outcome:
    run_ = _Run(world, scenario)
    if delivery in ("sequential", "duplicated"):
        for op in scenario.ops:
            for event in run_.apply(op):
                for _ in range(2 if delivery == "duplicated" else 1):
                    run_.deliver(event)
    else:
        events = [event for op in scenario.ops for event in run_.apply(op)]
        for event in reversed(events) if delivery == "reversed" else events:
            run_.deliver(event)
    return Outcome(scenario.name, delivery, run_.check())


class TransientError(ClientError):
    def __init__(self, operation: str) -> None:
        super().__init__({"Error": {"Code": "SlowDown", "Message": "injected"}}, operation)


class _Faulty:
    """A boto3 client whose `fail_at`-th call (counted across the clients sharing `calls`)
    raises a transient error instead of reaching the service; 0 counts calls only."""

    def __init__(self, client: Any, calls: list[int], fail_at: int) -> None:
        self._client, self._calls, self._fail_at = client, calls, fail_at

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith(("get_paginator", "meta")):
            return attribute

        def call(**kwargs: Any) -> Any:
            self._calls[0] += 1
            if self._calls[0] == self._fail_at:
                raise TransientError(name)
            return attribute(**kwargs)

        return call


def run_with_fault(world: World, scenario: Scenario, fail_at: int) -> Outcome:
    """The scenario, sequential, with its `fail_at`-th AWS call failing once; each event is
    delivered as Lambda's async invocation does (an error: up to two more attempts)."""
    calls = [0]
    s3, dynamodb = _Faulty(world.s3, calls, fail_at), _Faulty(world.dynamodb, calls, fail_at)
    run_ = _Run(world, scenario)
    for op in scenario.ops:
        for event in run_.apply(op):
            _deliver_like_lambda(event, world.settings(run_.profile), s3, dynamodb)
    return Outcome(scenario.name, f"fault at call {fail_at}", run_.check(), calls[0])


# Where in the first create the second event is handled: after its render (before it
# claims any key), or after its claims, just before its first rendition is written.
# The render is patched where the handler calls it, in its own process: the child it
# renders in (lambda_pkg/isolated.py) could not handle an event on the parent's emulator.
INTERLEAVINGS = {"render": (workflow.isolated, "process"), "write": (workflow, "_put_rendition")}


def during_render(
    world: World,
    profile: Profile,
    second: Op,
    at: str = "render",
    fail_at: int = 0,
    lagging_index: bool = False,
) -> Outcome:
    """A create is under way when `second` happens to the same key and its event is
    handled to the end: a delete (the create then finds a tombstone) or another upload
    (junk, or a picture whose rendition keys differ, whose cleanup may release the older
    event's claims). Whatever the older create then writes, it must remove, and the newer
    event's result must stand. With `fail_at`, the create's n-th AWS call fails once and
    Lambda retries it; with `lagging_index`, the second event's cleanup sees an owner index
    that does not show the create's claims yet (DynamoDB's GSIs are eventually consistent)."""
    key = "race/g.jpg"
    run_ = _Run(world, Scenario(f"{second.kind} during a create ({at})", lambda: profile, []))
    create = run_.apply(Op("put", key, image_sets.payloads()["jpeg 1600x1200"]))[0]
    module, name = INTERLEAVINGS[at]
    real = getattr(module, name)
    done: list[bool] = []

    def second_first(*args: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(True)
            result = real(*args, **kwargs) if at == "render" else None
            lag = mock.patch.object(MetadataStore, "owned_by", return_value=set())
            with lag if lagging_index else contextlib.nullcontext():
                for event in run_.apply(Op(second.kind, key, second.data)):
                    run_.deliver(event)
            if at == "render":
                return result
        return real(*args, **kwargs)

    calls = [0]
    s3, dynamodb = _Faulty(world.s3, calls, fail_at), _Faulty(world.dynamodb, calls, fail_at)
    with mock.patch.object(module, name, side_effect=second_first):
        _deliver_like_lambda(create, world.settings(profile), s3, dynamodb)
    fault = f", fault at call {fail_at}" if fail_at else ""
    delivery = f"second event mid-create ({at}{fault})"
    return Outcome(run_.scenario.name, delivery, run_.check(), calls[0])


def _deliver_like_lambda(event: dict[str, Any], settings: Any, s3: Any, dynamodb: Any) -> None:
    """Lambda's asynchronous invocation: on an error, two more attempts."""
    for attempt in range(3):
        try:
            process_event(event, settings, s3, dynamodb)
            return
        except ClientError:
            if attempt == 2:
                raise


def cases() -> Iterator[tuple[Scenario, str]]:
    for scenario in scenarios():
        for delivery in DELIVERIES:
            yield scenario, delivery
