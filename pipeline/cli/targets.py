"""Where the everyday commands send requests: the local emulator or a deployed stack.

Resolved once per command: `--endpoint URL` (an emulator), `--stack NAME` (a deployed
stack, read with `pulumi stack output`), or else the local stack that `imgpipe local`
or `imgpipe demo` left a state file for.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class TargetError(RuntimeError):
    """No stack to talk to, with what to do about it."""


@dataclass(frozen=True)
class Target:
    names: ResourceNames
    endpoint: str | None = None  # None: real AWS, default credential chain
    event_queue_url: str | None = None  # local only: where S3 events wait for workers
    dead_letter_queue_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
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
            "cdn": self.cdn,
        }
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Target:
        data = json.loads(text)
        return cls(
            names=ResourceNames(**data["names"]),
            endpoint=data.get("endpoint"),
            event_queue_url=data.get("event_queue_url"),
            dead_letter_queue_url=data.get("dead_letter_queue_url"),
            extra=data.get("extra", {}),
            cdn=data.get("cdn"),
        )


def state_file(stack: str = DEFAULT_LOCAL_STACK) -> Path:
    return STATE_DIR / f"{stack}.json"


def resolve(endpoint: str | None = None, stack: str | None = None) -> Target:
    if stack:
        return deployed(stack)
    path = state_file()
    if endpoint:
        if path.is_file():
            saved = Target.from_json(path.read_text())
            if saved.endpoint == endpoint:
                return saved
        return local(endpoint, DEFAULT_LOCAL_STACK)
    if path.is_file():
        return Target.from_json(path.read_text())
    raise TargetError(
        "no stack to talk to: start one with `imgpipe local` (in another terminal), "
        "or pass --endpoint URL (an emulator) or --stack NAME (a deployed stack)"
    )


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
