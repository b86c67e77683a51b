"""Run the handler from the deployment artifacts, the way Lambda would.

The function zip and the layer zip are the very files `pulumi up` uploads (built by
pipeline/program/artifacts.py, the layer for this machine's interpreter). They are unpacked and the
handler runs in a separate interpreter that sees only them, boto3 (which Lambda's runtime
provides) and the standard library. A file missing from the zip fails here.

Lambda's limits hold as in AWS: the handler's context says how much of the timeout is
left, and past the timeout the invocation is `Task timed out`. The function's memory is
checked every 50 ms over the process and what it forked (pipeline/local/memory.py says how
it is counted, and why not RLIMIT_AS): past it the biggest process is killed, as the
kernel's out-of-memory killer does in Lambda. When that is the function's own process, the
invocation ends as Lambda reports it: `Runtime.OutOfMemory`, `signal: killed`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from pipeline.local import memory
from pipeline.program.artifacts import (
    DEFAULT_CACHE_DIR,
    build_function_zip,
    build_layer_for_host,
    function_zip_path,
    host_layer_path,
)

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
MEMORY_CHECK_S = 0.05  # a process allocating 4 GB/s overshoots by 200 MB before it is seen
EXACT_CHECK_S = 0.5  # at most this often the page-table walk that counts shared pages once
STARTUP_TIMEOUT_S = 60
logger = logging.getLogger("imgpipe.local")


class InvocationError(Exception):
    """The function raised, crashed or timed out: what Lambda would report."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class RuntimeImage:
    """The unpacked artifacts: what sys.path holds inside the sandbox, in Lambda's order."""

    function_dir: Path
    layer_dir: Path
    runtime_dir: Path

    @property
    def paths(self) -> list[str]:
        return [str(self.function_dir), str(self.layer_dir / "python"), str(self.runtime_dir)]


def pending_builds(cache_dir: Path = DEFAULT_CACHE_DIR) -> list[str]:
    """What `prepare` would have to build, as words for a person; empty when all is cached."""
    pending = []
    if not function_zip_path(cache_dir).is_file():
        pending.append("the function zip")
    if not host_layer_path(cache_dir).is_file():
        pending.append("the layer (pip downloads its wheels)")
    if not _boto3_runtime_dir(Path(cache_dir) / "sandbox").is_dir():
        pending.append("the runtime's boto3 (pip)")
    return pending


def prepare(cache_dir: Path = DEFAULT_CACHE_DIR) -> RuntimeImage:
    """Build (or reuse) the artifacts and unpack them under .build/sandbox/. Says so first
    when something is built: that can take a minute, and a cached start takes none."""
    pending = pending_builds(cache_dir)
    if pending:
        *others, last = pending
        logger.info("Building %s...", f"{', '.join(others)} and {last}" if others else last)
    function_zip = build_function_zip(cache_dir)
    layer_zip = build_layer_for_host(cache_dir)
    root = Path(cache_dir) / "sandbox"
    return RuntimeImage(
        function_dir=_unpack(function_zip, root),
        layer_dir=_unpack(layer_zip, root),
        runtime_dir=_boto3_runtime(root),
    )


def _unpack(archive: Path, root: Path) -> Path:
    target = root / archive.stem
    if not target.is_dir():
        partial = root / f".{archive.stem}.{os.getpid()}"
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(partial)
        try:
            partial.rename(target)
        except OSError:  # another process unpacked it first
            _remove_tree(partial)
    return target


def _boto3_runtime(root: Path) -> Path:
    """boto3 alone, at the version this project pins: what the Lambda runtime provides."""
    version = metadata.version("boto3")
    target = _boto3_runtime_dir(root)
    if not target.is_dir():
        partial = root / f".boto3-{version}.{os.getpid()}"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(partial)]
        done = subprocess.run([*command, f"boto3=={version}"], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"installing boto3=={version} for the sandbox failed:\n{done.stderr}"
            )
        try:
            partial.rename(target)
        except OSError:
            _remove_tree(partial)
    return target


def _boto3_runtime_dir(root: Path) -> Path:
    return root / f"boto3-{metadata.version('boto3')}"


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class FunctionProcess:
    """One warm function instance: a long-lived sandbox interpreter, one invocation at a time.

    Crashes and time-outs kill the instance; the next invocation starts a fresh one (a cold
    start), as Lambda does.
    """

    def __init__(
        self,
        image: RuntimeImage,
        environment: dict[str, str],
        timeout_s: float,
        log: TextIO | None = None,
        memory_mb: int | None = None,
        cpu: int | None = None,
    ) -> None:
        self._image = image
        self._cpu = cpu
        self._environment = environment
        self._timeout_s = timeout_s
        self._log = log
        self._memory_mb = memory_mb
        self._exact_at = 0.0  # when shared pages were last counted exactly
        self._process: subprocess.Popen[str] | None = None
        self._responses: queue.Queue[str | None] = queue.Queue()
        self.cold_starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def invoke(self, event: dict[str, Any]) -> Any:
        process = self._ensure_started()
        assert process.stdin is not None
        request_id = str(uuid.uuid4())
        # As Lambda's runtime API does (Lambda-Runtime-Deadline-Ms): the context's remaining
        # time counts down to this, whatever the pipe's delay.
        deadline_ms = int((time.time() + self._timeout_s) * 1000)
        request = {"event": event, "requestId": request_id, "deadlineMs": deadline_ms}
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            self.stop()
            raise InvocationError("Runtime.ExitError", "the function process had exited") from None
        response = self._next_response(self._timeout_s, request_id)
        if response is None:
            code = self.stop()
            raise InvocationError("Runtime.ExitError", f"the function process exited ({code})")
        data = json.loads(response)
        if not data.get("ok"):
            raise InvocationError(data.get("errorType", "Error"), data.get("errorMessage", ""))
        return data.get("result")

    def _next_response(self, timeout_s: float, request_id: str = "init") -> str | None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                response = self._responses.get(timeout=min(left, MEMORY_CHECK_S))
            except queue.Empty:
                self._check_memory(request_id)
                continue
            self._check_memory(request_id)  # a peak since the last look counts too
            return response
        self.stop()
        message = f"Task timed out after {timeout_s:.2f} seconds"
        raise InvocationError("Sandbox.Timedout", message)

    def _check_memory(self, request_id: str) -> None:
        """Past the memory size, kill the biggest process; the function's own: out of memory.
        The function's peak counts as well as its present, so a spike between two looks is
        not missed."""
        process = self._process
        if self._memory_mb is None or process is None:
            return
        limit_kb = self._memory_mb * 1024
        own_peak = memory.peak_kb(process.pid)
        usage = memory.tree_kb(process.pid)
        if own_peak <= limit_kb and sum(usage.values()) > limit_kb:
            if time.monotonic() - self._exact_at < EXACT_CHECK_S:
                return  # counted exactly a moment ago: the next look comes soon enough
            self._exact_at = time.monotonic()
            usage = memory.tree_pss_kb(process.pid)
        if own_peak <= limit_kb and sum(usage.values()) <= limit_kb:
            return
        biggest = max(usage, key=usage.__getitem__, default=process.pid)
        if biggest != process.pid and own_peak <= limit_kb:
            with contextlib.suppress(ProcessLookupError):
                os.kill(biggest, signal.SIGKILL)  # a forked child: the function carries on
            return
        self._out_of_memory(request_id, max(sum(usage.values()), own_peak) // 1024)

    def _out_of_memory(self, request_id: str, used_mb: int) -> None:
        self.stop()
        if self._log is not None:
            self._log.write(
                f"REPORT RequestId: {request_id} Memory Size: {self._memory_mb} MB "
                f"Max Memory Used: {used_mb} MB\n"
            )
        message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
        raise InvocationError("Runtime.OutOfMemory", message)

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._responses = queue.Queue()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self._environment}
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(BOOTSTRAP), *self._image.paths],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal goes to us, not the function
        )
        if self._cpu is not None:
            # Before the interpreter starts any thread or forks the render's child: both
            # inherit the one core, as a function under 1769 MB has at most one vCPU.
            os.sched_setaffinity(self._process.pid, {self._cpu})
        self.cold_starts += 1
        threading.Thread(target=self._read, args=(self._process,), daemon=True).start()
        ready = self._next_response(STARTUP_TIMEOUT_S)
        if ready is None or not json.loads(ready).get("ready"):
            code = self.stop()
            raise InvocationError("Runtime.ImportError", f"the function did not start ({code})")
        return self._process

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        responses = self._responses
        for line in process.stdout:
            responses.put(line)
        responses.put(None)

    def stop(self) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return code
