"""The hostile shapes (reliability/hostile_costs.py) against the function's memory and time.

Each shape runs twice over:
- through `imaging.process` alone, in a fresh interpreter with no limit but a safety cap,
  to show what it costs;
- through the handler, in a fresh interpreter that is the function: its S3 and DynamoDB
  are moto's server in this process, and it is held to Lambda's limits. Memory: the
  process tree's resident memory (PSS once it has children, as Lambda's sandbox counts
  each page once), sampled every few milliseconds, plus the function's own VmHWM at exit;
  over the limit, it is killed, as Lambda kills a sandbox. Time: the configured timeout
  scaled to this machine (Lambda gives memory/1769 of a vCPU, one vCPU being about one
  core here, so 60 s at 1024 MB are ~35 CPU s here), counted in CPU seconds of the tree
  after the cold start's imports, so other work on a shared machine does not count.

An outcome is `ok` or `failed` (the item says why) when the invocation ended on its own
within both limits; `killed` (out of memory / timed out) or `raised` means Lambda would
retry the event and, three times later, put it on the dead-letter queue.

    python -m reliability report --budget      # runs every shape, rewrites RELIABILITY.md's table
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lambda_pkg import wire
from lambda_pkg.events import s3_event
from lambda_pkg.profiles import PipelineConfig, load_named
from lambda_pkg.records import table_definition
from lambda_pkg.settings import function_environment
from pipeline.program.guards import FULL_VCPU_MB
from reliability.hostile_costs import SHAPES, Shape

ROOT = Path(__file__).resolve().parent.parent
INPUT_BUCKET, OUTPUT_BUCKET, TABLE = "budget-input", "budget-output", "budget-metadata"
SAMPLE_S = 0.005
# `imaging.process` alone has no limit to respect, but must not take the machine down.
CAP = {"memory_mb": 8192, "cpu_s": 240.0}


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    timeout_s: int  # as configured on the function, in Lambda's seconds

    @property
    def cpu_s_here(self) -> float:
        """The timeout in CPU seconds of one core of this machine (see the module's doc)."""
        return self.timeout_s * min(self.memory_mb, FULL_VCPU_MB) / FULL_VCPU_MB


@dataclass(frozen=True)
class Run:
    outcome: str  # ok / failed / killed / raised
    reason: str
    peak_mb: float
    cpu_s: float  # after the cold start's imports
    wall_s: float

    @property
    def within_budget(self) -> bool:
        return self.outcome in ("ok", "failed")


# -- watching a process tree --------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids, index = [pid], 0
    while index < len(pids):
        task = Path(f"/proc/{pids[index]}/task")
        with contextlib.suppress(OSError):
            for thread in task.iterdir():
                pids += [int(p) for p in (thread / "children").read_text().split()]
        index += 1
    return pids


def _field_kb(path: str, name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def _memory_mb(pids: list[int]) -> float:
    if len(pids) == 1:
        return _field_kb(f"/proc/{pids[0]}/status", "VmRSS") / 1024
    # Forked children share their parent's pages until they write them: count each once.
    return sum(_field_kb(f"/proc/{p}/smaps_rollup", "Pss") for p in pids) / 1024


def _cpu_s(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for index, pid in enumerate(pids):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime; for the root also its reaped children's (forks that ended).
            total += sum(int(v) for v in fields[11 : 15 if index == 0 else 13])
    return total / ticks


@dataclass
class _Watch:
    peak_mb: float = 0.0
    cpu_s: float = 0.0
    killed: str = ""


def supervise(
    command: list[str], env: dict[str, str], stdin: str, memory_mb: float, cpu_s: float
) -> tuple[dict[str, Any], _Watch, float]:
    """Run `command`, kill its tree when it goes over `memory_mb` or `cpu_s` (counted from
    the child's `ready` line); return its last JSON line, what was watched, and wall time."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, text=True, start_new_session=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        lines: list[str] = []
        reader = threading.Thread(target=_read_lines, args=(process, lines), daemon=True)
        reader.start()
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
        watch = _watch(process, lines, memory_mb, cpu_s, started)
        reader.join(5)
        errors.seek(0)
        tail = errors.read()[-600:]
    reports = [json.loads(line) for line in lines if line.startswith("{")]
    reports = [r for r in reports if "ready" not in r]
    report = reports[-1] if reports else {"error": f"exited {process.returncode}: {tail}"}
    return report, watch, time.perf_counter() - started


def _read_lines(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)  # seen by _watch as they come: the first is `ready`


def _watch(
    process: subprocess.Popen[str], lines: list[str], memory_mb: float, cpu_s: float, started: float
) -> _Watch:
    watch = _Watch()
    ready_cpu: float | None = None
    while process.poll() is None:
        pids = _tree(process.pid)
        used, spent = _memory_mb(pids), _cpu_s(pids)
        watch.peak_mb = max(watch.peak_mb, used)
        if ready_cpu is None and lines:
            ready_cpu = spent  # the cold start is over: Lambda's timeout starts now
        watch.cpu_s = 0.0 if ready_cpu is None else spent - ready_cpu
        if used > memory_mb:
            watch.killed = f"out of memory: {used:,.0f} MB over the {memory_mb:,.0f} MB limit"
        elif watch.cpu_s > cpu_s:
            watch.killed = f"timed out: over {cpu_s:.0f} CPU s"
        elif time.perf_counter() - started > 3 * cpu_s + 60:
            watch.killed = "timed out: wall clock (the machine is too busy to judge)"
        if watch.killed:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
        time.sleep(SAMPLE_S)
    return watch


def _pinned() -> list[str]:
    """One core, as Lambda gives at most ~1 vCPU below 1769 MB."""
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    return {k: os.environ[k] for k in keep if k in os.environ} | {"PYTHONPATH": str(ROOT)}


def _judge(report: dict[str, Any], watch: _Watch, wall_s: float, memory_mb: float) -> Run:
    peak = max(watch.peak_mb, float(report.get("peak_mb", 0)))
    if watch.killed:
        return Run("killed", watch.killed, peak, watch.cpu_s, wall_s)
    if peak > memory_mb:  # a spike between two samples: Lambda would have killed it
        return Run("killed", f"out of memory: peak {peak:,.0f} MB", peak, watch.cpu_s, wall_s)
    cpu = max(watch.cpu_s, float(report.get("cpu_s", 0)))  # the samples miss the last ms
    if "error" in report:
        return Run("raised", str(report["error"])[:300], peak, cpu, wall_s)
    return Run(report["outcome"], report.get("reason", ""), peak, cpu, wall_s)


# -- imaging.process alone ----------------------------------------------------------------


def run_imaging(shape: Shape, data: bytes) -> Run:
    with tempfile.NamedTemporaryFile(suffix=".bin") as file:
        file.write(data)
        file.flush()
        command = [*_pinned(), sys.executable, "-m", "reliability.budget", "--imaging"]
        request = json.dumps({"path": file.name, "profile": shape.profile})
        report, watch, wall = supervise(
            command, _base_env(), request, CAP["memory_mb"], CAP["cpu_s"]
        )
    return _judge(report, watch, wall, CAP["memory_mb"])


def _imaging_child(request: dict[str, Any]) -> dict[str, Any]:
    from lambda_pkg import imaging

    profile = load_named(request["profile"])
    data = Path(request["path"]).read_bytes()
    print(json.dumps({"ready": True}), flush=True)
    started = time.process_time()
    try:
        _, outputs = imaging.process(data, profile)
        outcome, reason = "ok", f"{len(outputs)} renditions"
    except imaging.ImageRejected as exc:
        outcome, reason = "failed", str(exc)
    except MemoryError:
        outcome, reason = "raised", "MemoryError (the workflow re-raises it: Lambda retries)"
    except Exception as exc:  # the workflow records any other error as `failed`
        outcome, reason = "failed", f"{type(exc).__name__}: {exc}"
    return {"outcome": outcome, "reason": reason, "cpu_s": time.process_time() - started}


# -- the handler under Lambda's limits ----------------------------------------------------


@dataclass
class FunctionWorld:
    endpoint: str
    s3: Any
    dynamodb: Any
    runs: int = 0

    def item(self, key: str) -> dict[str, Any]:
        raw = self.dynamodb.get_item(TableName=TABLE, Key=wire.key(key))
        return wire.decode(raw.get("Item", {}))


@contextlib.contextmanager
def function_world() -> Iterator[FunctionWorld]:
    """moto's server in this process, with the stack's buckets and table."""
    from pipeline.aws import client
    from pipeline.local.emulator import Emulator

    with Emulator() as emulator:
        s3, dynamodb = client("s3", emulator.endpoint), client("dynamodb", emulator.endpoint)
        for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
            s3.create_bucket(Bucket=bucket)
        dynamodb.create_table(TableName=TABLE, **table_definition())
        yield FunctionWorld(emulator.endpoint, s3, dynamodb)


def run_handler(world: FunctionWorld, shape: Shape, data: bytes, limits: Limits) -> Run:
    """Upload the shape and deliver its S3 event to the handler in a child held to `limits`."""
    from pipeline.aws import CREDENTIALS, REGION

    world.runs += 1
    key = f"{limits.memory_mb}mb-{world.runs}/{shape.key}"  # a fresh key: no older item
    world.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=data)
    event = s3_event(INPUT_BUCKET, key, len(data), f"{world.runs:016X}", "ObjectCreated:Put")
    config = PipelineConfig.single(load_named(shape.profile))
    env = _base_env() | function_environment(OUTPUT_BUCKET, TABLE, config) | CREDENTIALS
    env |= {
        "AWS_ENDPOINT_URL": world.endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(limits.memory_mb),
    }
    request = {"event": event, "memory_mb": limits.memory_mb, "timeout_s": limits.cpu_s_here}
    command = [*_pinned(), sys.executable, "-m", "reliability.budget", "--handler"]
    report, watch, wall = supervise(
        command, env, json.dumps(request), limits.memory_mb, limits.cpu_s_here
    )
    if "error" not in report and not watch.killed:
        item = world.item(key)
        report |= {"outcome": item.get("status", "no item"), "reason": item.get("error", "")}
    return _judge(report, watch, wall, limits.memory_mb)


class _Context:
    """What Lambda passes the handler: the remaining time counts down from the timeout."""

    def __init__(self, timeout_s: float, memory_mb: int) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.memory_limit_in_mb = memory_mb
        self.function_name = "imgpipe-budget"
        self.aws_request_id = "budget"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _handler_child(request: dict[str, Any]) -> dict[str, Any]:
    import logging

    from lambda_pkg import handler

    logging.disable(logging.INFO)  # the event JSON and progress lines: not this report
    context = _Context(request["timeout_s"], request["memory_mb"])
    print(json.dumps({"ready": True}), flush=True)
    started = time.process_time()
    try:
        result = handler.handler(request["event"], context)
    except Exception as exc:  # Lambda would retry it
        return {"error": f"{type(exc).__name__}: {exc}", "cpu_s": time.process_time() - started}
    return {"result": result, "cpu_s": time.process_time() - started}


def _child(mode: str) -> None:
    request = json.loads(sys.stdin.read())
    report = _imaging_child(request) if mode == "--imaging" else _handler_child(request)
    report["peak_mb"] = _field_kb("/proc/self/status", "VmHWM") / 1024
    print(json.dumps(report, default=str), flush=True)


# -- every shape, and the table -----------------------------------------------------------

LIMITS = (Limits(512, 60), Limits(1024, 60))
REPORT = ROOT / "RELIABILITY.md"
RAW = ROOT / ".build" / "reliability" / "budget.json"
BEGIN, END = "<!-- BEGIN BUDGET -->", "<!-- END BUDGET -->"


def run_all(progress: Callable[[str], None] = print) -> dict[str, Any]:
    rows = []
    with function_world() as world:
        for shape in SHAPES:
            data = shape.make()
            row = {"shape": shape.name, "profile": shape.profile, "bytes": len(data)}
            row["imaging"] = asdict(run_imaging(shape, data))
            for limits in LIMITS:
                row[str(limits.memory_mb)] = asdict(run_handler(world, shape, data, limits))
            progress(f"{shape.name}: " + "; ".join(_cell(row[k]) for k in _columns()))
            rows.append(row)
    finished = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} CPUs, {platform.platform(terse=True)}"
    return {"rows": rows, "finished": finished, "machine": machine}


def _columns() -> list[str]:
    return ["imaging", *(str(limits.memory_mb) for limits in LIMITS)]


def _cell(run: dict[str, Any]) -> str:
    text = f"**{run['outcome']}** {run['peak_mb']:,.0f} MB, {run['cpu_s']:.1f} s"
    if run["outcome"] != "ok" and run["reason"]:
        reason = run["reason"].replace("|", "\\|").replace("\n", " ")
        text += f": {reason[:110]}{'…' if len(reason) > 110 else ''}"
    return text


def render(results: dict[str, Any]) -> str:
    rows = results["rows"]
    within = {
        str(limits.memory_mb): sum(
            1 for r in rows if r[str(limits.memory_mb)]["outcome"] in ("ok", "failed")
        )
        for limits in LIMITS
    }
    heads = " | ".join(
        f"handler, {limits.memory_mb} MB, {limits.timeout_s} s ({limits.cpu_s_here:.0f} CPU s here)"
        for limits in LIMITS
    )
    lines = [
        BEGIN,
        "## Budget: hostile shapes against the function's memory and time",
        "",
        f"Generated by `python -m reliability report --budget` ({results['finished']}, "
        f"{results['machine']}). Every shape is under the default limits (max_bytes 50 MiB, "
        "max_pixels 50,000,000) and uses the `web` profile. Each runs through `imaging.process` "
        f"alone (no limit; capped at {CAP['memory_mb']:,} MB and {CAP['cpu_s']:.0f} CPU s), then "
        "through the handler in a fresh process held to Lambda's limits (reliability/budget.py): "
        "killed when its resident memory (PSS of the process tree) passes the function's memory, "
        "or its CPU time passes the timeout scaled to this machine (memory/1769 of a vCPU, one "
        "vCPU about one core here). Peak = MB resident; time = CPU seconds on one core here. "
        "`killed` and `raised` mean Lambda would retry the event and then dead-letter it.",
        "",
        "Within budget (`ok` or `failed`): "
        + ", ".join(f"{within[k]} of {len(rows)} at {k} MB" for k in within)
        + ". tests/reliability/test_budget_inputs.py asserts the 1024 MB column in CI. "
        "At 512 MB the "
        "per-image budget ends the large pictures as `failed`: images the sizing model admits "
        '(README "Sizing": max_pixels 50 M needs 1,229 MB) do not fit, and preview refuses '
        "such a stack.",
        "",
        f"| Shape | File | `imaging.process` | {heads} |",
        "|---|---:|---|" + "---|" * len(LIMITS),
    ]
    for r in rows:
        size = f"{r['bytes'] / 1e6:.2f} MB" if r["bytes"] >= 1e6 else f"{r['bytes'] / 1e3:.0f} KB"
        cells = " | ".join(_cell(r[k]) for k in _columns())
        lines.append(f"| {r['shape']} | {size} | {cells} |")
    return "\n".join([*lines, END])


def splice(document: str, section: str) -> str:
    """`document` with its budget section replaced, or inserted before ## Commands."""
    if BEGIN in document and END in document:
        before, rest = document.split(BEGIN, 1)
        return before + section + rest.split(END, 1)[1]
    at = document.find("## Commands")
    at = len(document) if at < 0 else at
    return document[:at] + section + "\n\n" + document[at:]


def main() -> int:
    results = run_all(progress=lambda line: print(line, file=sys.stderr, flush=True))
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(json.dumps(results, indent=1))
    REPORT.write_text(splice(REPORT.read_text(), render(results)))
    print(f"wrote the budget table into {REPORT}")
    return 0


if __name__ == "__main__":
    _child(sys.argv[1])
