"""The local stack's state on disk: what the emulator holds for one stack (both buckets'
objects, the metadata table's items, the event queue's and the dead-letter queue's
messages), snapshotted on a timer and at shutdown, restored at start-up.

A snapshot is taken with every emulator request held at the door (`emulator.RequestGate`),
so it is a state that whole requests made: an upload always with its queued event, an item
always with the delete of the message that produced it. It is written so that a process
killed at any instant leaves a readable one behind: object bodies go to content-addressed
blob files first (each written once: temp file, fsync, rename), then a small manifest that
names them (temp, fsync, rename over the previous one, which is kept as the fallback).

The manifest holds plain data (bytes by hash, DynamoDB JSON, message bodies), not moto's
objects, and is restored into the resources `provision` has just created for the current
settings: an edited profile, other routes or another visibility timeout do not matter.
A message a worker held at the moment of the snapshot is restored visible, so the event is
delivered again and the handler (idempotent by design) finishes the image.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambda_pkg.events import s3_records
from lambda_pkg.profiles import PipelineConfig
from pipeline.local import emulator
from pipeline.program.names import ResourceNames

logger = logging.getLogger("imgpipe.local")

# A SIGKILL loses what changed since the last snapshot: at most this plus one snapshot's
# time (README: measured).
SNAPSHOT_INTERVAL_S = 2.0
HEADER = "imgpipe-local-state 1"
MANIFEST = "manifest.json"
PREVIOUS = "manifest.previous.json"
BLOBS = "blobs"
ACCOUNT = "123456789012"  # moto's default account, as in provision


class StateError(RuntimeError):
    """The saved state cannot be restored: what is wrong, and what to do about it."""


@dataclass(frozen=True)
class Saved:
    """A snapshot read back whole; `fallback` says why it is the previous one, if it is."""

    body: dict[str, Any]
    fallback: str = ""


@dataclass(frozen=True)
class Roles:
    """This stack's resources by role: a snapshot restores into other names if they change."""

    buckets: dict[str, str]
    table: str
    queues: dict[str, str]

    @classmethod
    def of(cls, names: ResourceNames) -> Roles:
        return cls(
            buckets={"input": names.input_bucket, "output": names.output_bucket},
            table=names.metadata_table,
            queues={"events": names.event_queue, "dead_letters": names.dead_letter_queue},
        )


@dataclass
class Restored:
    """What a start-up brought back, for one line on the terminal."""

    path: Path
    written_at: str
    objects: int = 0
    items: int = 0
    queued: dict[str, int] = field(default_factory=dict)
    unaccounted: list[str] = field(default_factory=list)
    fallback: str = ""  # why the previous snapshot was used, if it was
    seconds: float = 0.0

    def summary(self) -> str:
        line = (
            f"Restored the state saved at {self.written_at} from {self.path} in "
            f"{self.seconds:.1f} s: {self.objects} objects, {self.items} items, "
            f"{self.queued.get('events', 0)} queued events, "
            f"{self.queued.get('dead_letters', 0)} dead letters"
        )
        if self.fallback:
            line += f" (the newest snapshot was unreadable: {self.fallback}; used the previous)"
        if self.unaccounted:
            line += (
                f"; {len(self.unaccounted)} routed input(s) have no item and no pending "
                "event: `imgpipe reprocess` processes them"
            )
        return line


def _backends() -> tuple[Any, Any, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    from pipeline.aws import REGION  # boto3: not for `imgpipe --help`, which imports this

    return (
        s3_backends[ACCOUNT]["aws"],
        dynamodb_backends[ACCOUNT][REGION],
        sqs_backends[ACCOUNT][REGION],
    )


# -- writing ------------------------------------------------------------------------------


def _write_file(path: Path, data: bytes) -> None:
    """Whole or not at all, whenever the process dies: temp file, fsync, rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:  # a full disk: the part written would only take more room
        temporary.unlink(missing_ok=True)
        raise


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def encode_manifest(body: dict[str, Any]) -> bytes:
    text = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return f"{HEADER} sha256={hashlib.sha256(text).hexdigest()}\n".encode() + text


class Snapshotter:
    """Writes the stack's state to `directory` every `interval_s` when a request changed
    something, and once more at `stop()`."""

    def __init__(
        self, directory: Path, names: ResourceNames, interval_s: float = SNAPSHOT_INTERVAL_S
    ) -> None:
        self.directory = directory
        self.roles = Roles.of(names)
        self.interval_s = interval_s
        self.written = 0
        self.last_pause_s = 0.0  # how long the last snapshot held every request back
        self._gate = emulator.request_gate()
        self._seen_changes = -1
        # (bucket, key) -> the moto object last saved and its manifest entry: moto makes a
        # new object on every write, so the same object means the same bytes and entry.
        self._saved: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        self._kept: dict[str, set[str]] = {MANIFEST: set(), PREVIOUS: set()}
        self._failure = ""  # why the last snapshot failed, said once until it changes
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the timer's snapshot and stop()'s never interleave
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)

    def start(self) -> Snapshotter:
        self._kept = kept_blobs(self.directory)
        self._thread.start()
        return self

    def stop(self) -> None:
        """The last snapshot, if snapshots were started (never of a start-up that failed
        half-way: that would replace a good snapshot)."""
        if self._thread.ident is None:
            return
        self._stop.set()
        self._thread.join()
        self.save_or_say_why()

    def restore(self, saved: Saved, config: PipelineConfig) -> Restored:
        """Put a loaded snapshot into the freshly provisioned, empty resources. Goes to
        moto's backends directly: no S3 event fires for a restored object (its event, if
        it was still pending, comes back with the queue)."""
        started = time.monotonic()
        s3, dynamodb, sqs = _backends()
        body = saved.body
        restored = Restored(self.directory, body["written_at"], fallback=saved.fallback)
        for role, entries in body["buckets"].items():
            for entry in entries:
                self._restore_object(s3, self.roles.buckets[role], entry)
            restored.objects += len(entries)
        for attributes in body["items"]:
            dynamodb.put_item(self.roles.table, attributes)
        restored.items = len(body["items"])
        for role, messages in body["queues"].items():
            for message in messages:
                queue = self.roles.queues[role]
                sqs.send_message(queue, message["body"], message["attributes"] or None)
            restored.queued[role] = len(messages)
        emulator.sequencers_after(body["sequencer"])
        restored.unaccounted = unaccounted(body, config)
        restored.seconds = time.monotonic() - started
        return restored

    def _restore_object(self, s3: Any, bucket: str, entry: dict[str, Any]) -> None:
        data = (self.directory / BLOBS / entry["blob"]).read_bytes()
        key = s3.put_object(bucket, entry["key"], data, disable_notification=True)
        key.set_metadata(dict(entry["metadata"]))
        key.last_modified = dt.datetime.fromisoformat(entry["last_modified"])
        self._saved[(bucket, entry["key"])] = (key, entry)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.save_or_say_why()

    def save_or_say_why(self) -> None:
        """A snapshot if anything changed; a failure (a full disk) is one line, said once
        until it changes or passes: the one before stays, and the next tick tries again."""
        try:
            self.snapshot()
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
            if failure != self._failure:
                logger.error(
                    "Could not save the local state to %s (%s); the last saved state stays, "
                    "trying again every %.0f s",
                    self.directory,
                    failure,
                    self.interval_s,
                )
            self._failure = failure
            return
        if self._failure:
            logger.info("The local state is saved again in %s.", self.directory)
            self._failure = ""

    def snapshot(self) -> bool:
        """Write one if anything changed since the last; True if it did."""
        with self._lock:
            with self._gate.paused():
                if self._gate.changes == self._seen_changes:
                    return False
                paused = time.monotonic()
                self._seen_changes = self._gate.changes
                body, pending = self._capture()
                self.last_pause_s = time.monotonic() - paused
            try:
                self._write(body, pending)
            except BaseException:
                self._seen_changes = -1  # not written: the next tick tries again
                raise
            self.written += 1
            return True

    def _capture(self) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """Everything the snapshot keeps, read while no request runs. Bodies not yet on
        disk are copied out here and hashed after the gate opens again."""
        s3, dynamodb, sqs = _backends()
        pending: dict[str, list[dict[str, Any]]] = {}
        buckets: dict[str, list[dict[str, Any]]] = {}
        for role, name in self.roles.buckets.items():
            buckets[role] = [self._object_entry(name, key, pending) for key in _keys(s3, name)]
        items = [
            item.to_json()["Attributes"] for item in _items(dynamodb.get_table(self.roles.table))
        ]
        queues = {
            role: [_message_entry(m) for m in sqs.get_queue(name)._messages]
            for role, name in self.roles.queues.items()
        }
        body = {
            "written_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "sequencer": emulator.last_sequencer(),
            "buckets": buckets,
            # Copies now: moto's items and messages change once the gate opens.
            **json.loads(json.dumps({"items": items, "queues": queues})),
        }
        return body, pending

    def _object_entry(
        self, bucket: str, key: Any, pending: dict[str, list[dict[str, Any]]]
    ) -> dict[str, Any]:
        known = self._saved.get((bucket, key.name))
        if known and known[0] is key:
            return known[1]
        entry = {
            "key": key.name,
            "size": key.contentsize,
            "last_modified": key.last_modified.isoformat(),
            "metadata": dict(key.metadata),
            "data": key.value,  # a copy, read while the key cannot change
            "object": key,
        }
        pending.setdefault(bucket, []).append(entry)
        return entry

    def _write(self, body: dict[str, Any], pending: dict[str, list[dict[str, Any]]]) -> None:
        blobs = self.directory / BLOBS
        blobs.mkdir(parents=True, exist_ok=True)
        for bucket, entries in pending.items():
            for entry in entries:
                data = entry.pop("data")
                digest = hashlib.sha256(data).hexdigest()
                if not (blobs / digest).exists():
                    _write_file(blobs / digest, data)
                entry["blob"] = digest
                self._saved[(bucket, entry["key"])] = (entry.pop("object"), entry)
        _sync_directory(blobs)
        manifest = self.directory / MANIFEST
        temporary = self.directory / f".{MANIFEST}.tmp"
        _write_file(temporary, encode_manifest(body))
        if manifest.exists():
            os.replace(manifest, self.directory / PREVIOUS)
        os.replace(temporary, manifest)
        _sync_directory(self.directory)
        self._collect(blob_names(body))

    def _collect(self, current: set[str]) -> None:
        """Delete blobs neither the new manifest nor the previous one (the fallback) names."""
        dropped = self._kept[PREVIOUS] - self._kept[MANIFEST] - current
        self._kept = {MANIFEST: current, PREVIOUS: self._kept[MANIFEST]}
        for digest in dropped:
            (self.directory / BLOBS / digest).unlink(missing_ok=True)


def _keys(s3: Any, bucket: str) -> Iterator[Any]:
    """The current version of every object (a versioned bucket's delete markers are not
    objects)."""
    for key in s3.get_bucket(bucket).keys.values():
        if hasattr(key, "contentsize"):
            yield key


def _items(table: Any) -> Iterator[Any]:
    """Every item, unsorted (moto's all_items() sorts: most of a snapshot's time)."""
    for value in table.items.values():
        if isinstance(value, dict):  # a table with a sort key: sort key -> item
            yield from value.values()
        else:
            yield value


def _message_entry(message: Any) -> dict[str, Any]:
    return {"body": message.body, "attributes": message.message_attributes}


def blob_names(body: dict[str, Any]) -> set[str]:
    return {entry["blob"] for entries in body["buckets"].values() for entry in entries}


# -- reading ------------------------------------------------------------------------------


def decode_manifest(path: Path) -> dict[str, Any]:
    """The manifest's body, or StateError saying in one line what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: {exc.strerror}") from None
    header, _, text = raw.partition(b"\n")
    words = header.decode(errors="replace").split()
    if " ".join(words[:2]) != HEADER or len(words) != 3:
        raise StateError(f"{path}: not an imgpipe state file of this version")
    if words[2] != f"sha256={hashlib.sha256(text).hexdigest()}":
        raise StateError(f"{path}: checksum mismatch (cut short or changed)")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StateError(f"{path}: {exc}") from None


def _check_blobs(directory: Path, body: dict[str, Any]) -> None:
    for digest in blob_names(body):
        path = directory / BLOBS / digest
        if not path.is_file():
            raise StateError(f"{path}: missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise StateError(f"{path}: its content does not match its name")


def load(directory: Path) -> Saved | None:
    """The newest readable snapshot and, if it is the previous one, why; None if there is
    none at all. StateError if there are snapshots and none is whole."""
    candidates = [directory / name for name in (MANIFEST, PREVIOUS)]
    if not any(path.exists() for path in candidates):
        return None
    problems = []
    for path in candidates:
        if not path.exists():
            continue
        try:
            body = decode_manifest(path)
            _check_blobs(directory, body)
        except StateError as exc:
            problems.append(str(exc))
            continue
        return Saved(body, "; ".join(problems))
    raise StateError(
        f"the saved local state is unreadable ({'; '.join(problems)}); "
        "start with --fresh to set it aside and begin empty"
    )


def unaccounted(body: dict[str, Any], config: PipelineConfig) -> list[str]:
    """Routed inputs with no item, no queued event and no dead letter. A snapshot never
    holds an upload without its event (one request made both), so these are inputs the
    routes did not cover when they were uploaded; AWS would not process them either."""
    accounted = {attributes["image_name"]["S"] for attributes in body["items"]}
    for role, messages in body["queues"].items():
        for message in messages:
            event = json.loads(message["body"])
            if role == "dead_letters":
                event = event.get("requestPayload", {})
            accounted.update(record.key for record in s3_records(event))
    return sorted(
        entry["key"]
        for entry in body["buckets"]["input"]
        if entry["key"] not in accounted
        and not entry["key"].endswith("/")
        and config.profile_for(entry["key"]) is not None
    )


def kept_blobs(directory: Path) -> dict[str, set[str]]:
    """The blobs each readable manifest names; blobs no manifest names (a snapshot killed
    before its manifest was renamed) are deleted."""
    kept = {}
    for name in (MANIFEST, PREVIOUS):
        try:
            kept[name] = blob_names(decode_manifest(directory / name))
        except StateError:
            kept[name] = set()
    blobs = directory / BLOBS
    if blobs.is_dir():
        named = kept[MANIFEST] | kept[PREVIOUS]
        for path in blobs.iterdir():
            if path.name not in named:
                path.unlink(missing_ok=True)
    return kept


def set_aside(directory: Path) -> Path | None:
    """`--fresh`: move the saved state out of the way (one generation is kept beside it)."""
    if not directory.exists() or not any(directory.iterdir()):
        return None
    aside = directory.with_name(directory.name + ".before-fresh")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(directory, aside)
    return aside
