"""A hard budget per image: the work runs in a forked child that the OS holds to it.

Header checks refuse what is plainly too big; whatever they miss (a decoder's worst case, a
bug on hostile bytes) must still end as a `failed` item inside the invocation. A timeout or
an out-of-memory kill instead makes Lambda retry twice and then dead-letter the event, and
a redrive fails the same way. So the work runs in a child process:
- memory: RLIMIT_AS on the child: its address space when forked plus what the function's
  memory leaves after the parent's resident set and a reserve. What a process maps anew
  bounds what it can make resident, so an allocation past that fails in the child
  (MemoryError) and only the child ends; the parent also kills a child whose resident
  memory grows past it some other way (`_Child._watch_resident`);
- time: the parent waits on the pipe until the deadline, then kills the child;
- a crash (a decoder's segfault or abort) ends the child, never the function.
The child is kept for the next call while calls return normally: a child per call costs
half again the time of a 12 MP thumbnail (the fork and exit of a process with boto3
loaded, then the cold caches and first-touch page faults of a fresh one), a kept child
under 5% (benchmarks/budget.py). Any other end (a budget exceeded, a crash) ends the
child, and the next call forks a new one. Calls and results go through a pipe as pickles,
inputs through memory both processes map: Lambda has no /dev/shm, so multiprocessing's
queues and pools cannot work there. Linux only (pidfd, /proc), as Lambda.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import mmap
import os
import pickle
import resource
import select
import signal
import struct
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

MAX_TIMEOUT_S = 900.0  # Lambda's longest timeout: the deadline when there is no context
# Kept back from the invocation's time for what follows the render: writing the renditions
# and the item (or the failed item) with botocore's retries. A fifth, within 1-10 s.
RESERVE_FRACTION, RESERVE_MIN_S, RESERVE_MAX_S = 0.2, 1.0, 10.0
# Kept back from the function's memory besides the parent's resident set: the parent's
# pages the child copies on write (2-4 MB measured with the parent's objects frozen, 20 MB
# without), the parent's copies of the outputs while it unpickles and uploads them, the
# page cache Lambda also counts, and what the child loads as it starts (Worker's `warm`:
# pyspng and numpy for PNGs, 12-14 MB resident measured).
MEMORY_RESERVE_MB = 80
MIB = 1024 * 1024
_HEADER = struct.Struct("!Q")  # each pickle's length: a child that died mid-send is a crash
_REQUESTS_FD, _RESULTS_FD = 3, 4  # the child's ends of the pipes, after it closes the rest
_EXIT_OUT_OF_MEMORY = 86  # the child's MemoryError: reported without allocating anything
_M_ARENA_MAX = -8  # glibc mallopt()
_PIPE_BYTES = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size
_WATCH_S = 0.1  # how often the parent looks at the child's resident memory during a call
# Inputs cross in memory both processes map: 64 MiB of address space (over the profiles'
# default max_bytes); what an input wrote over 16 MiB is given back after its call.
_SHARED_BYTES, _SHARED_KEPT_BYTES = 64 * MIB, 16 * MIB


class BudgetExceeded(Exception):
    """The work needed more memory or time than the invocation has left for it."""


class ChildCrashed(Exception):
    """The work's process died (a signal, an exit) without a result: a retry gets the same."""


class Unavailable(RuntimeError):
    """No child could be started (no memory or processes left to fork, no pipes): the
    function's own trouble, which a retry may not have."""


@dataclass(frozen=True)
class Budget:
    """What one call may use: until `deadline` (time.monotonic()), within the function's
    memory (`memory_mb`; None when not on Lambda: no memory limit)."""

    deadline: float
    memory_mb: int | None = None

    @classmethod
    def for_invocation(cls, remaining_ms: int | None, memory_mb: int | None) -> Budget:
        """From the context's remaining time (None: no context, Lambda's longest timeout),
        less the reserve the writes after the render need."""
        remaining_s = MAX_TIMEOUT_S if remaining_ms is None else max(remaining_ms, 0) / 1000
        reserve_s = min(max(remaining_s * RESERVE_FRACTION, RESERVE_MIN_S), RESERVE_MAX_S)
        return cls(time.monotonic() + remaining_s - reserve_s, memory_mb)

    def child_memory_mb(self) -> int | None:
        """What a child may map beyond what it had when forked: the function's memory less
        the parent's resident set (now) and the reserve."""
        if self.memory_mb is None:
            return None
        parent_mb = _status_kb("VmRSS") // 1024
        return max(self.memory_mb - parent_mb - MEMORY_RESERVE_MB, 0)


class Worker:
    """Runs calls one at a time in a forked child, each within a Budget.

    A child forked by `start` is kept for the next call as long as calls return normally.
    A call without one forks a child for that call only: forked while the image's bytes
    are in memory, it would keep a copy of them for as long as it lived. A module whose
    state a child must not inherit (a thread pool: its threads stay in the parent) drops
    it with an os.register_at_fork hook. `warm` runs in each child as it starts, before any
    call's limit: what it imports is the child's baseline, not a call's budget."""

    def __init__(self, warm: Callable[[], object] | None = None) -> None:
        self._lock = threading.Lock()  # one call at a time, whatever thread asks
        self._child: _Child | None = None
        self._warm = warm

    def start(self, memory_mb: int | None) -> None:
        """Fork the child to keep now, unless there is one for this memory size."""
        with self._lock:
            child = self._child
            if child is None or child.memory_mb != memory_mb:
                self._drop()
                self._child = _Child.fork(memory_mb, keep=True, warm=self._warm)

    def stop(self) -> None:
        """End the kept child (the next `start` forks a new one)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.end()

    def call(self, budget: Budget, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in a child: returns what it returns, raises what it raises, or
        BudgetExceeded / ChildCrashed when the child ends without either."""
        request = _Request.of(fn, args)
        with self._lock:
            try:
                return self._call(budget, request)
            except _Stale:
                return self._call(budget, request)

    def _call(self, budget: Budget, request: _Request) -> Any:
        if time.monotonic() >= budget.deadline:
            raise BudgetExceeded("exceeded the time budget (no time left in the invocation)")
        child = self._child
        if child is None or child.memory_mb != budget.memory_mb:
            self._drop()
            child = _Child.fork(budget.memory_mb, keep=False, warm=self._warm)
        try:
            payload = child.exchange(request, budget.child_memory_mb(), budget.deadline)
        except BaseException:
            # Interrupted mid-call (Ctrl-C, a signal's exception): the child may still be
            # working on it, and its result must never be taken for the next call's.
            self._child = None
            child.end()
            raise
        if payload is None or not child.keep:
            self._child = None
            status, usage = child.end()
            if payload is None:
                raise _why(child, budget, status, usage)
        ok, value = pickle.loads(payload)
        if ok:
            return value
        raise value


def _why(child: _Child, budget: Budget, status: int, usage: resource.struct_rusage) -> Exception:
    if child.timed_out:
        return BudgetExceeded(f"exceeded the time budget ({budget.deadline - child.since:.1f} s)")
    reason = _death(status, usage, budget.memory_mb, child.limit_mb)
    # A kept child also holds what earlier calls left mapped, or may have died between
    # calls: the call gets one new child before the image is blamed.
    if child.keep and (isinstance(reason, BudgetExceeded) or not child.sent):
        return _Stale()
    return reason


@dataclass(frozen=True)
class _Request:
    """A call as it crosses to the child: the pickle through the pipe, its bytes arguments
    through the memory the two share (through the pipe when they do not fit). A 12 MP JPEG
    costs 0.45 ms of CPU that way against 1.2 ms through the pipe (and 2 ms pickled), where
    its whole thumbnail costs 40."""

    payload: bytes
    buffers: tuple[pickle.PickleBuffer, ...]

    @classmethod
    def of(cls, fn: Callable[..., Any], args: tuple) -> _Request:
        buffers: list[pickle.PickleBuffer] = []
        beside = tuple(pickle.PickleBuffer(a) if isinstance(a, bytes) else a for a in args)
        payload = pickle.dumps((fn, beside), protocol=5, buffer_callback=buffers.append)
        return cls(payload, tuple(buffers))

    def send(self, fd: int, shared: mmap.mmap, limit_mb: int | None) -> None:
        limit = -1 if limit_mb is None else limit_mb
        message = [_REQUEST.pack(len(self.payload), limit, len(self.buffers)), self.payload]
        piped, offset = [], 0
        for buffer in self.buffers:
            raw = buffer.raw()
            if offset + raw.nbytes <= len(shared):
                shared[offset : offset + raw.nbytes] = raw
                message.append(_BUFFER.pack(raw.nbytes, offset))
                offset += raw.nbytes
            else:
                message.append(_BUFFER.pack(raw.nbytes, -1))
                piped.append(raw)
        # One write: each write wakes the child, and each wake-up is a hand-over of the CPU.
        _write_all(fd, b"".join(message))
        for raw in piped:  # the child reads them in order, after their descriptions
            _write_all(fd, raw)


class _Stale(Exception):
    """A kept child failed in a way a new child may not."""


class _Child:
    """The parent's handle on one forked child: its pid and its pipes."""

    def __init__(
        self,
        pid: int,
        pipes: tuple[int, int],
        shared: mmap.mmap,
        memory_mb: int | None,
        keep: bool,
    ) -> None:
        self.pid, (self.requests, self.results), self.shared = pid, pipes, shared
        self.memory_mb, self.keep = memory_mb, keep
        self.pidfd = os.pidfd_open(pid)
        self.limit_mb: int | None = None
        self.since = 0.0  # when the current call was sent (time.monotonic())
        self.resident_kb: int | None = None  # the child's resident set before its first call
        self.sent = self.timed_out = False

    @classmethod
    def fork(
        cls, memory_mb: int | None, keep: bool, warm: Callable[[], object] | None = None
    ) -> _Child:
        try:
            return cls._fork(memory_mb, keep, warm)
        except OSError as exc:
            raise Unavailable(f"cannot start the process that renders: {exc}") from exc

    @classmethod
    def _fork(cls, memory_mb: int | None, keep: bool, warm: Callable[[], object] | None) -> _Child:
        requests_r, requests_w = os.pipe()
        results_r, results_w = os.pipe()
        for fd in (requests_w, results_w):
            # 1 MB instead of 64 kB: a 12 MP JPEG crosses in 2 hand-overs instead of 26, each
            # a wait for the other process to be scheduled (on Lambda's one vCPU, too).
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        shared = mmap.mmap(-1, _SHARED_BYTES)  # address space only, until written
        # Frozen objects are left out of the child's collections: a full collection would
        # otherwise write to (and so copy) every page of the parent's objects, 20 MB measured.
        gc.freeze()
        try:
            pid = os.fork()
            if pid == 0:
                _serve(requests_r, results_w, shared, warm)
        finally:
            gc.unfreeze()
            os.close(requests_r)
            os.close(results_w)
        return cls(pid, (requests_w, results_r), shared, memory_mb, keep)

    def exchange(
        self, request: _Request, limit_mb: int | None, deadline: float
    ) -> bytearray | None:
        """Send one call, return its result's pickle; None when the child ended first or
        the deadline came (`timed_out`)."""
        self.since, self.limit_mb = time.monotonic(), limit_mb
        if self.resident_kb is None:  # idle, waiting for its first call: its baseline
            with contextlib.suppress(OSError):
                self.resident_kb = _status_kb("VmRSS", self.pid)
        try:
            request.send(self.requests, self.shared, limit_mb)
        except BrokenPipeError:
            return None
        self.sent = True
        try:
            header = self._read(_HEADER.size, deadline)
            if header is None:
                return None
            (size,) = _HEADER.unpack(header)
            return self._read(size, deadline)
        finally:
            # A large input leaves its pages to neither process once the call is over.
            used = sum(buffer.raw().nbytes for buffer in request.buffers)
            if used > _SHARED_KEPT_BYTES:
                end = min(used, len(self.shared))
                self.shared.madvise(mmap.MADV_REMOVE, _SHARED_KEPT_BYTES, end - _SHARED_KEPT_BYTES)

    def _read(self, size: int, deadline: float) -> bytearray | None:
        buffer = bytearray(size)
        view, done = memoryview(buffer), 0
        while done < size:
            if not self._readable(deadline):
                return None
            count = os.readv(self.results, [view[done:]])
            if not count:
                return None
            done += count
        return buffer

    def _readable(self, deadline: float) -> bool:
        """Whether `results` has more to read: False at the deadline (`timed_out`) or once
        the child has ended without writing more."""
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.results, self.pidfd], [], [], min(left, _WATCH_S))
            if self.results in ready:
                return True
            if ready:  # it ended: what it wrote before is in the pipe by now
                return bool(select.select([self.results], [], [], 0)[0])
            self._watch_resident()
        self.timed_out = True
        return False

    def _watch_resident(self) -> None:
        """Kill the child once it holds more resident memory than its call may add.

        RLIMIT_AS bounds what the child maps anew; what it inherited mapped but not
        resident (the arenas of a parent's other threads, which glibc hands to the child's
        threads) it can fill without mapping anything. A single-threaded parent, as
        Lambda's runtime is, leaves next to none; this holds the budget whatever the parent.
        """
        if self.limit_mb is None or self.resident_kb is None:
            return
        with contextlib.suppress(OSError):
            if _status_kb("VmRSS", self.pid) - self.resident_kb > self.limit_mb * 1024:
                os.kill(self.pid, signal.SIGKILL)  # reported as out of memory (`_death`)

    def end(self) -> tuple[int, resource.struct_rusage]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        _, status, usage = os.wait4(self.pid, 0)
        for fd in (self.requests, self.results, self.pidfd):
            os.close(fd)
        self.shared.close()
        return status, usage


# -- in the child --------------------------------------------------------------------------


def _serve(
    requests: int, results: int, shared: mmap.mmap, warm: Callable[[], object] | None
) -> NoReturn:
    """The child's loop: one call per request until the parent closes the pipe. Never
    returns: os._exit skips atexit handlers and flushing the parent's buffered output."""
    code = 0
    try:
        # Out of the way first: either end may sit on the number the other goes to.
        requests = fcntl.fcntl(requests, fcntl.F_DUPFD, _RESULTS_FD + 1)
        results = fcntl.fcntl(results, fcntl.F_DUPFD, _RESULTS_FD + 1)
        os.dup2(requests, _REQUESTS_FD)
        os.dup2(results, _RESULTS_FD)
        # The parent's sockets and files are not the child's: held open here, a connection
        # the parent closes would stay open as long as the child lives.
        os.closerange(_RESULTS_FD + 1, os.sysconf("SC_OPEN_MAX"))
        if warm is not None:
            with contextlib.suppress(Exception):  # a call does without what it could not load
                warm()
        _limit_self()
        while (request := _read_request(_REQUESTS_FD, shared)) is not None:
            limit_mb, payload, buffers = request
            _set_memory_limit(limit_mb)
            # What the call freed stays mapped for the next (no malloc_trim): returned to
            # the kernel, every call would fault its pages in again, 3 ms on a thumbnail.
            _write_all(_RESULTS_FD, _run(payload, buffers))
    except MemoryError:
        code = _EXIT_OUT_OF_MEMORY
    except BaseException:
        code = _EXIT_FAILED
    finally:
        os._exit(code)


def _run(payload: bytes, buffers: list[bytes]) -> bytes:
    try:
        # Fails for a function defined after the fork: sent back like any exception.
        fn, args = pickle.loads(payload, buffers=buffers)
        message = (True, fn(*args))
    except MemoryError:
        raise
    except Exception as exc:
        message = (False, _portable(exc))
    result = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(result)) + result


def _limit_self() -> None:
    # One malloc arena: glibc reserves 64 MB of address space per thread's arena, which
    # RLIMIT_AS would count against the image (137 MB mapped for 3 MB resident measured for
    # a thumbnail); with one, mapped memory stays within ~50 MB of resident.
    with contextlib.suppress(AttributeError, OSError):
        _LIBC.mallopt(_M_ARENA_MAX, 1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not write a core file
    global _MAPPED_AT_START_KB
    _MAPPED_AT_START_KB = _status_kb("VmSize")


def _set_memory_limit(limit_mb: int | None) -> None:
    """What the child may have mapped during this call: what it mapped when it started plus
    the call's budget (what it still maps from earlier calls counts against it)."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = hard
    if limit_mb is not None:
        soft = _MAPPED_AT_START_KB * 1024 + limit_mb * MIB
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _portable(exc: Exception) -> Exception:
    """The exception as the parent can unpickle it, with the child's traceback as a note
    (the parent's log then shows where in the child it was raised)."""
    exc.add_note("In the budget's child process:\n" + "".join(traceback.format_exception(exc)))
    try:
        return pickle.loads(pickle.dumps(exc))
    except Exception:  # a constructor that does not round-trip: keep its type and text
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _read_request(fd: int, shared: mmap.mmap) -> tuple[int | None, bytes, list[bytes]] | None:
    """A request as `_Request.send` wrote it; None once the parent has closed the pipe."""
    header = _read_exactly(fd, _REQUEST.size)
    if header is None:
        return None
    size, limit_mb, count = _REQUEST.unpack(header)
    described = _read_exactly(fd, size + count * _BUFFER.size)
    if described is None:
        return None
    buffers = []
    for length, offset in _BUFFER.iter_unpack(described[size:]):
        buffer = shared[offset : offset + length] if offset >= 0 else _read_exactly(fd, length)
        if buffer is None:
            return None
        buffers.append(bytes(buffer))
    return (None if limit_mb < 0 else limit_mb), bytes(described[:size]), buffers


def _read_exactly(fd: int, size: int) -> bytearray | None:
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        count = os.readv(fd, [view[done:]])
        if not count:
            return None
        done += count
    return buffer


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# -- reasons -------------------------------------------------------------------------------


def _death(
    status: int, usage: resource.struct_rusage, memory_mb: int | None, limit_mb: int | None
) -> Exception:
    """Why the child ended without a result."""
    peak_mb = usage.ru_maxrss // 1024  # kB on Linux
    memory = f"{_MEMORY} ({limit_mb} MB of the function's {memory_mb} MB)"
    code = os.waitstatus_to_exitcode(status)
    if code == _EXIT_OUT_OF_MEMORY:
        if limit_mb is None:
            return BudgetExceeded(f"ran out of memory at {peak_mb} MB (no memory budget set)")
        return BudgetExceeded(memory)
    if code == -signal.SIGKILL:  # not the deadline's: the OOM killer or `_watch_resident`
        return BudgetExceeded(f"{memory}: killed at {peak_mb} MB")
    if code < 0:
        name = signal.Signals(-code).name
        cpu_s = usage.ru_utime + usage.ru_stime
        return ChildCrashed(f"the process rendering it crashed ({name}) after {cpu_s:.1f} s")
    return ChildCrashed(f"the process rendering it exited with status {code} and no result")


def _status_kb(field: str, pid: int | str = "self") -> int:
    """A size from /proc/<pid>/status (VmRSS, VmSize), in kB; 0 for a process that has
    ended but is not reaped yet (it has no memory left to report)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


_MEMORY = "exceeded the memory budget"
# A call: its pickle's length, its memory limit (MB, -1: none), how many buffers follow;
# then each buffer's length and offset in the shared memory (-1: it follows in the pipe).
_REQUEST = struct.Struct("!QqI")
_BUFFER = struct.Struct("!Qq")
_EXIT_FAILED = 87  # the child's own machinery failed (not the call: that is sent back)
_LIBC = ctypes.CDLL(None)
_MAPPED_AT_START_KB = 0
