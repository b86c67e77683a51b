"""Where the everyday commands send requests: the local emulator or a deployed stack.

Resolved once per command: `--endpoint URL` (an emulator), `--stack NAME` (a deployed
stack, read with `pulumi stack output`), or else the local stack that `imgpipe local`
left a state file for, in its state folder (`--state-dir`; default `.build/local` of this
project, or `$IMGPIPE_STATE_DIR`, which the test suite points at a temporary folder).
A state file whose process is gone, or an endpoint nothing answers at, is one line of
error, found in milliseconds, not a client's retries.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.local.instance import Process
from pipeline.program.artifacts import DEFAULT_CACHE_DIR
from pipeline.program.names import ResourceNames, resource_names
from pipeline.program.stack import (
    OUTPUT_CDN_URL,
    OUTPUT_DEAD_LETTER_QUEUE,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_INPUT_BUCKET,
    OUTPUT_METADATA_TABLE,
    OUTPUT_OUTPUT_BUCKET,
)

PROJECT = "imgpipe"
DEFAULT_LOCAL_STACK = "local"
STATE_DIR = DEFAULT_CACHE_DIR / "local"
STATE_DIR_VARIABLE = "IMGPIPE_STATE_DIR"
PROBE_TIMEOUT_S = 1.0


class TargetError(RuntimeError):
    """No stack to talk to, with what to do about it."""


@dataclass(frozen=True)
class Target:
    names: ResourceNames
    endpoint: str | None = None  # None: real AWS, default credential chain
    event_queue_url: str | None = None  # local only: where S3 events wait for workers
    dead_letter_queue_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    server: Process | None = None  # local only: the process serving the stack
    log_dir: str | None = None  # local only: this run's log folder
    cdn: str | None = None  # where renditions are served: the local CDN, or imgpipe:cdn's URL

    @property
    def is_local(self) -> bool:
        return self.endpoint is not None

    def to_json(self) -> str:
        data = {
            "names": vars(self.names),
            "endpoint": self.endpoint,
            "event_queue_url": self.event_queue_url,
            "dead_letter_queue_url": self.dead_letter_queue_url,
            "extra": self.extra,
            "pid": self.server.pid if self.server else None,
            "pid_started": self.server.started if self.server else None,
            "log_dir": self.log_dir,
            "cdn": self.cdn,
        }
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Target:
        data = json.loads(text)
        pid = data.get("pid") or data.get("extra", {}).get("pid")  # older files: in extra
        return cls(
            names=ResourceNames(**data["names"]),
            endpoint=data.get("endpoint"),
            event_queue_url=data.get("event_queue_url"),
            dead_letter_queue_url=data.get("dead_letter_queue_url"),
            extra=data.get("extra", {}),
            server=Process(int(pid), data.get("pid_started")) if pid else None,
            log_dir=data.get("log_dir"),
            cdn=data.get("cdn"),
        )


def state_dir(chosen: Path | None = None) -> Path:
    """`--state-dir`, else $IMGPIPE_STATE_DIR, else this project's `.build/local`."""
    return chosen or Path(os.environ.get(STATE_DIR_VARIABLE) or STATE_DIR)


def state_file(stack: str = DEFAULT_LOCAL_STACK, folder: Path | None = None) -> Path:
    return state_dir(folder) / f"{stack}.json"


def save_state(target: Target, path: Path) -> None:
    """Written whole, then renamed into place: a command never reads half a file."""
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(target.to_json())
    os.replace(staged, path)


def saved_state(path: Path) -> Target | None:
    if not path.is_file():
        return None
    try:
        return Target.from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise TargetError(f"{path} is not a state file imgpipe wrote ({exc}); remove it") from None


def resolve(
    endpoint: str | None = None, stack: str | None = None, folder: Path | None = None
) -> Target:
    if stack:
        return deployed(stack)
    path = state_file(folder=folder)
    saved = saved_state(path)
    if endpoint:
        check_reachable(endpoint)
        if saved and saved.endpoint == endpoint:
            return saved
        return local(endpoint, DEFAULT_LOCAL_STACK)
    if saved is None:
        raise TargetError(
            "no stack to talk to: start one with `imgpipe local` (in another terminal), "
            "or pass --endpoint URL (an emulator) or --stack NAME (a deployed stack)"
        )
    if saved.server and not saved.server.alive():
        raise TargetError(
            f"the local stack in {path} is not running: its process {saved.server.pid} "
            f"({saved.endpoint}) is gone (killed or crashed); start it again with "
            "`imgpipe local`, which replaces the stale file"
        )
    check_reachable(saved.endpoint)
    return saved


def check_reachable(endpoint: str | None) -> None:
    """One connection attempt, under a second: a client would retry a refused connection
    for many seconds and then print a traceback."""
    if endpoint is None:
        return
    parts = urlsplit(endpoint)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), PROBE_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise TargetError(
            f"nothing answers at {endpoint} ({why}): check the URL, or start a stack "
            "with `imgpipe local`"
        ) from None


def local(endpoint: str, stack: str) -> Target:
    """An emulator started elsewhere: names are the shared ones, queues found by name."""
    from pipeline.aws import client  # boto3 only for commands that talk to a stack

    names = resource_names(PROJECT, stack)
    sqs = client("sqs", endpoint)
    urls = {}
    for queue in (names.event_queue, names.dead_letter_queue):
        try:
            urls[queue] = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        except Exception:  # an emulator without our queues: commands that need them say so
            urls[queue] = None
    return Target(
        names=names,
        endpoint=endpoint,
        event_queue_url=urls[names.event_queue],
        dead_letter_queue_url=urls[names.dead_letter_queue],
    )


def deployed(stack: str) -> Target:
    """A stack deployed with `pulumi up`: its outputs name the real resources."""
    try:
        done = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise TargetError("--stack needs the pulumi CLI on PATH (pulumi stack output)") from None
    if done.returncode != 0:
        raise TargetError(f"pulumi stack output --stack {stack} failed: {done.stderr.strip()}")
    return from_outputs(json.loads(done.stdout), stack)


def from_outputs(outputs: dict[str, Any], stack: str) -> Target:
    logical = resource_names(PROJECT, stack)
    try:
        names = ResourceNames(
            input_bucket=outputs[OUTPUT_INPUT_BUCKET],
            output_bucket=outputs[OUTPUT_OUTPUT_BUCKET],
            metadata_table=outputs[OUTPUT_METADATA_TABLE],
            function=outputs[OUTPUT_FUNCTION_NAME],
            dead_letter_queue=logical.dead_letter_queue,
            event_queue=logical.event_queue,
        )
    except KeyError as exc:
        raise TargetError(f"stack {stack} has no output {exc.args[0]!r}; run `pulumi up`") from None
    return Target(
        names=names,
        dead_letter_queue_url=outputs.get(OUTPUT_DEAD_LETTER_QUEUE),
        cdn=outputs.get(OUTPUT_CDN_URL),
    )
