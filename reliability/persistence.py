"""Does the local stack's state survive a restart, and a SIGKILL? Two ways measured side by
side, each with the stack in a process of its own:

- `snapshot`: the stack's own snapshots (pipeline/local/state.py), restored at start-up;
- `recorder`: moto's recorder (MOTO_ENABLE_RECORDING appends every request to a file),
  replayed into a new emulator (what /moto-api/recorder/replay-recording does).

Each round starts a stack, uploads a burst (one upload at a time, each acknowledged), kills
the stack with SIGKILL at a random moment of the burst, and starts again: what an
acknowledged upload lost, what came back with other bytes, how old the oldest loss was,
and (snapshot) whether the invariants hold once the restarted stack has drained its queue.
Then the restart time with N processed images behind it.

    python -m reliability.persistence measure [--rounds 5] [--burst 80] [--sizes 200 1000]
    python -m reliability.persistence serve DIR [--fresh] [--fault-raise KEY] [--recorder]
    python -m reliability.persistence replay DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cli import ops
from pipeline.cli.targets import DEFAULT_LOCAL_STACK, Target, local
from pipeline.program.artifacts import REPO_ROOT

RECORDING = "recording.jsonl"
FAST_RETRIES = (0.1, 0.2)
REPLAY_LIMIT_S = 300  # a replay slower than this is reported as such, not waited for


# -- the stack in a process of its own ----------------------------------------------------


def _wait_for_sigterm() -> None:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def serve(directory: Path, fresh: bool, fault_raise: str, recorder: bool) -> None:
    """`imgpipe local`, with its state (or moto's recording) and logs under `directory`."""
    from pipeline.local.runner import LocalStack

    faults = {"IMGPIPE_FAULT_RAISE": fault_raise} if fault_raise else {}
    stack = LocalStack(
        workers=2,
        retry_delays_s=FAST_RETRIES,
        fault_environment=faults,
        state_folder=directory,  # never the project's .build/
        persist=not recorder,
        fresh=fresh,
    )
    with stack:
        print(json.dumps({"endpoint": stack.endpoint}), flush=True)
        _wait_for_sigterm()


def replay(directory: Path) -> None:
    """A bare emulator (no workers: what comes back is what the recording holds), and the
    recording replayed into it."""
    from moto.moto_api import recorder

    from pipeline.local.emulator import Emulator

    server = Emulator().start()
    started = time.monotonic()
    errors: list[str] = []

    def run() -> None:
        try:
            recorder.replay_recording(target_host=server.endpoint)
        except Exception as exc:  # a line the kill cut short: the replay stops there
            errors.append(f"{type(exc).__name__}: {exc}"[:200])

    replaying = threading.Thread(target=run, daemon=True)
    replaying.start()
    replaying.join(REPLAY_LIMIT_S)
    if replaying.is_alive():
        errors.append(f"not finished within {REPLAY_LIMIT_S} s")
    seconds = time.monotonic() - started
    error = "; ".join(errors)
    print(json.dumps({"endpoint": server.endpoint, "replay_s": seconds, "error": error}))
    sys.stdout.flush()
    _wait_for_sigterm()
    server.stop()


class StackProcess:
    """`python -m reliability.persistence serve|replay` as a child: start, stop, kill."""

    def __init__(self, directory: Path, *options: str, recorder: bool = False) -> None:
        self.directory = directory
        self.options = options
        self.recorder = recorder
        self.started_s = 0.0
        self.line: dict[str, Any] = {}
        self._log = directory / f"stack-{time.time_ns()}.log"
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Target:
        env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(self.directory / RECORDING)}
        if self.recorder:
            env["MOTO_ENABLE_RECORDING"] = "true"
        command = [sys.executable, "-m", "reliability.persistence", *self.options]
        began = time.monotonic()
        with open(self._log, "w") as log:
            self._process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True, env=env
            )
        first = self._process.stdout.readline() if self._process.stdout else ""
        if not first:
            raise RuntimeError(f"the stack did not start:\n{self.log()[-3000:]}")
        self.started_s = time.monotonic() - began
        self.line = json.loads(first)
        return local(self.line["endpoint"], DEFAULT_LOCAL_STACK)

    def log(self) -> str:
        return self._log.read_text()

    def stop(self) -> int:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(120)

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(60)


def serving(directory: Path, *options: str, recorder: bool = False) -> StackProcess:
    """The stack; with `recorder`, moto records every request and the stack saves nothing."""
    flags = ("--recorder",) if recorder else ()
    return StackProcess(directory, "serve", str(directory), *options, *flags, recorder=recorder)


# -- measuring ----------------------------------------------------------------------------


def unique_jpeg(base: bytes, number: int) -> bytes:
    """A decodable JPEG of its own: bytes after the end-of-image marker are ignored by
    decoders but make every upload (and its saved body) distinct."""
    return base + number.to_bytes(8, "big")


@dataclass
class Burst:
    sent: dict[str, bytes] = field(default_factory=dict)  # attempted, including the last
    acked: dict[str, float] = field(default_factory=dict)  # key -> acknowledged at (epoch)


def upload_burst(target: Target, base: bytes, count: int, stop: threading.Event) -> Burst:
    burst = Burst()
    s3 = ops.aws(target, "s3")
    for number in range(count):
        if stop.is_set():
            break
        key = f"burst/{time.time_ns()}-{number:04d}.jpg"
        data = unique_jpeg(base, number)
        burst.sent[key] = data
        try:
            s3.put_object(Bucket=target.names.input_bucket, Key=key, Body=data)
        except Exception:  # the kill landed mid-request: not acknowledged
            break
        burst.acked[key] = time.time()
    return burst


def compare(target: Target, burst: Burst, killed_at: float) -> dict[str, Any]:
    """What came back of the burst: lost (acknowledged, missing), corrupted (other bytes),
    holes (a loss older than something kept: not a point in time), the oldest loss's age."""
    s3 = ops.aws(target, "s3")
    present = {o["Key"] for o in ops.input_objects(target) if o["Key"] in burst.sent}
    corrupted = [
        key
        for key in sorted(present)
        if s3.get_object(Bucket=target.names.input_bucket, Key=key)["Body"].read()
        != burst.sent[key]
    ]
    lost = [key for key in burst.acked if key not in present]
    newest_kept = max((burst.acked.get(key, 0.0) for key in present), default=0.0)
    return {
        "acked": len(burst.acked),
        "kept": len(present),
        "lost": len(lost),
        "corrupted": len(corrupted),
        "holes": sum(1 for key in lost if burst.acked[key] < newest_kept),
        "oldest_loss_s": round(max((killed_at - burst.acked[k] for k in lost), default=0), 2),
    }


def _settle(target: Target, timeout_s: float = 300) -> dict[str, Any]:
    """Wait until every routed input of the burst is final, then the invariants."""
    from reliability.invariants import dead_lettered_keys, target_snapshot, violations

    keys = [o["Key"] for o in ops.input_objects(target)]
    finished = ops.wait_for(target, keys, lambda e: e.get("status") in ("ok", "failed"), timeout_s)
    unfinished = [k for k, v in finished.items() if v is None]
    stuck = sorted(set(unfinished) - dead_lettered_keys(target))
    problems = violations(target_snapshot(target), in_flight=dead_lettered_keys(target))
    return {"unfinished": len(stuck), "violations": problems[:5], "violation_count": len(problems)}


def kill_round(directory: Path, rng: random.Random, count: int, recorder: bool) -> dict:
    from reliability.images import payloads

    base = payloads()["jpeg 640x480"]
    first = serving(directory, recorder=recorder)
    target = first.start()
    stop = threading.Event()
    result: dict[str, Burst] = {}
    uploader = threading.Thread(
        target=lambda: result.setdefault("burst", upload_burst(target, base, count, stop))
    )
    uploader.start()
    time.sleep(rng.uniform(2.0, 6.0))
    killed_at = time.time()
    first.kill()
    stop.set()
    uploader.join()
    again, target, outcome = restart(directory, recorder)
    outcome.update(compare(target, result["burst"], killed_at))
    if recorder:
        (directory / RECORDING).unlink()  # each round from empty: its own recording
    else:
        outcome.update(_settle(target))
    again.stop()
    return outcome


def _replayed(directory: Path, target: Target, replayed: StackProcess) -> dict[str, Any]:
    """What a replay costs and leaves: its time, the recording's size, and the S3 events
    it queued again (a replayed upload notifies again: each is an image processed twice)."""
    sqs = ops.aws(target, "sqs")
    url = sqs.get_queue_url(QueueName=target.names.event_queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "replay_s": round(replayed.line["replay_s"], 2),
        "replay_error": replayed.line["error"],
        "recording_bytes": (directory / RECORDING).stat().st_size,
        "events_queued_again": int(attributes["ApproximateNumberOfMessages"])
        + int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    }


def restart(directory: Path, recorder: bool) -> tuple[StackProcess, Target, dict[str, Any]]:
    """Start again from what `directory` holds: the stack restoring its snapshot, or the
    recording replayed into a bare emulator; the time it took (and the replay's cost)."""
    again = StackProcess(directory, "replay", str(directory)) if recorder else serving(directory)
    target = again.start()
    outcome: dict[str, Any] = {"restart_s": round(again.started_s, 2)}
    if recorder:
        outcome.update(_replayed(directory, target, again))
    return again, target, outcome


def idle_restart(directory: Path, idle_s: float, recorder: bool) -> dict[str, Any]:
    """A stack left idle (its workers long-poll the queue), then killed and started again."""
    first = serving(directory, "--fresh", recorder=recorder)
    first.start()
    time.sleep(idle_s)
    first.kill()
    again, _, outcome = restart(directory, recorder)
    again.stop()
    return {"idle_s": idle_s, **outcome}


def populated_restart(directory: Path, images: int, recorder: bool) -> dict[str, Any]:
    """Restart time with `images` processed images (originals, renditions, items)."""
    from reliability.images import payloads

    base = payloads()["jpeg 640x480"]
    first = serving(directory, "--fresh", recorder=recorder)
    target = first.start()
    keys = [f"pop/{n:05d}.jpg" for n in range(images)]
    ops.upload_bytes(target, {key: unique_jpeg(base, n) for n, key in enumerate(keys)})
    ops.wait_for(target, keys, lambda e: e.get("status") in ("ok", "failed"), 1800)
    first.stop()
    again, target, outcome = restart(directory, recorder)
    outcome["images"] = images
    if not recorder:
        restored = re.search(r"in ([\d.]+) s: (\d+) objects", again.log())
        outcome["restore_s"] = float(restored.group(1)) if restored else None
        outcome["state_bytes"] = sum(p.stat().st_size for p in directory.rglob("state/**/*"))
    outcome["items_back"] = len(ops.items(target))
    again.stop()
    return outcome


def snapshot_cost(images: int, renditions: int = 3) -> dict[str, Any]:
    """What one snapshot costs with `images` images (an original of ~60 KB, `renditions`
    small renditions, an item and an owner record per rendition) on an emulator in this
    process: the first (every body new), then one after a single new image. `pause_ms` is
    how long every emulator request waited at the gate."""
    from lambda_pkg.profiles import Route
    from pipeline.local import provision, state
    from pipeline.local.emulator import Emulator
    from pipeline.program.names import resource_names
    from reliability.images import payloads

    base, small = payloads()["jpeg 640x480"], payloads()["jpeg truncated"]
    names = resource_names("imgpipe", f"cost{images}")
    with Emulator() as server, tempfile.TemporaryDirectory() as scratch:
        # A route no key matches: these images are done, their events long gone.
        idle = (Route("thumbnail", prefix="none/"),)
        provision.provision(server.endpoint, names, idle, visibility_timeout_s=30)
        target = local(server.endpoint, f"cost{images}")
        s3, dynamodb = ops.aws(target, "s3"), ops.aws(target, "dynamodb")

        def add(number: int) -> None:
            s3.put_object(
                Bucket=names.input_bucket, Key=f"{number}.jpg", Body=unique_jpeg(base, number)
            )
            for r in range(renditions):
                key = f"processed/{r}/{number}.jpg"
                s3.put_object(Bucket=names.output_bucket, Key=key, Body=unique_jpeg(small, number))
                dynamodb.put_item(
                    TableName=names.metadata_table, Item={"image_name": {"S": f"owner#{key}"}}
                )
            dynamodb.put_item(
                TableName=names.metadata_table,
                Item={"image_name": {"S": f"{number}.jpg"}, "status": {"S": "ok"}},
            )

        for number in range(images):
            add(number)
        snapshots = state.Snapshotter(Path(scratch), names)
        first = _timed(snapshots)
        add(images)
        return {"images": images, "first": first, "after_one_change": _timed(snapshots)}


def _timed(snapshots: Any) -> dict[str, float]:
    began = time.monotonic()
    snapshots.snapshot()
    return {
        "total_ms": round((time.monotonic() - began) * 1000),
        "pause_ms": round(snapshots.last_pause_s * 1000),
    }


def measure(rounds: int, burst: int, sizes: list[int], seed: int = 5) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for approach in ("snapshot", "recorder"):
        recorder = approach == "recorder"
        rng = random.Random(seed)
        with tempfile.TemporaryDirectory(prefix=f"persist-{approach}-") as scratch:
            directory = Path(scratch)
            kills = [kill_round(directory, rng, burst, recorder) for _ in range(rounds)]
            print(json.dumps({approach: kills}), file=sys.stderr)
        restarts = []
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix=f"persist-{approach}-") as scratch:
                restarts.append(populated_restart(Path(scratch), size, recorder))
            print(json.dumps({approach: restarts[-1]}), file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix=f"persist-{approach}-") as scratch:
            idle = idle_restart(Path(scratch), 60, recorder)
        print(json.dumps({approach: idle}), file=sys.stderr)
        report[approach] = {"kills": kills, "restarts": restarts, "idle": idle}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.persistence")
    commands = parser.add_subparsers(dest="command", required=True)
    measuring = commands.add_parser("measure", help="both approaches: SIGKILL rounds, restarts")
    measuring.add_argument("--rounds", type=int, default=5)
    measuring.add_argument("--burst", type=int, default=80, help="uploads per round at most")
    measuring.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    serving_command = commands.add_parser("serve", help="a local stack; SIGTERM stops it")
    serving_command.add_argument("directory", type=Path)
    serving_command.add_argument("--fresh", action="store_true")
    serving_command.add_argument("--fault-raise", default="")
    serving_command.add_argument("--recorder", action="store_true", help="no snapshots")
    costing = commands.add_parser("snapshot-cost", help="one snapshot's time, in process")
    costing.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    replaying = commands.add_parser("replay", help="a bare emulator, DIR's recording replayed")
    replaying.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.command == "serve":
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        serve(args.directory, args.fresh, args.fault_raise, args.recorder)
    elif args.command == "replay":
        replay(args.directory)
    elif args.command == "snapshot-cost":
        print(json.dumps([snapshot_cost(size) for size in args.sizes], indent=2))
    else:
        print(json.dumps(measure(args.rounds, args.burst, args.sizes), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
