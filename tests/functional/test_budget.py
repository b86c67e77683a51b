"""The per-image budget: work past the memory or the deadline, or a crash, ends the child
only; through the handler the image is `failed` with the reason, and the invocation returns.
"""

from __future__ import annotations

import ctypes
import io
import mmap
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from PIL import Image

from lambda_pkg import budget, imaging, transforms
from lambda_pkg.budget import Budget, BudgetExceeded, ChildCrashed, Worker
from lambda_pkg.handler import handler, process_event
from lambda_pkg.settings import function_environment
from tests.support import REPO, images
from tests.support.aws import INPUT_BUCKET, OUTPUT_BUCKET, TABLE, fresh_container, put_event
from tests.support.budget_probe import allocate_until_refused, leaving, rss_mb, soon

MIB = 1024 * 1024
ROOT = REPO
SLACK_S = 1.0  # past the deadline: the kill and the reaping, on a busy machine


# -- what the child runs: module functions, so a kept child finds them by name -------------


_INHERITED: mmap.mmap | None = None


def fill_inherited_and_hold() -> None:
    """Touch every page of `_INHERITED`, then hold them a while."""
    assert _INHERITED is not None
    for offset in range(0, len(_INHERITED), mmap.PAGESIZE):
        _INHERITED[offset] = 1
    time.sleep(2)


def spin() -> None:
    while True:
        pass


def pid() -> int:
    return os.getpid()


def later(seconds: float, value: str) -> str:
    time.sleep(seconds)
    return value


def refuse(text: str) -> None:
    raise imaging.ImageRejected(text)


def abort() -> None:
    os.abort()


def segfault() -> None:
    ctypes.string_at(0)


@pytest.fixture
def worker():
    made = Worker()
    yield made
    made.stop()


# -- the worker --------------------------------------------------------------------------


def test_memory_past_the_budget_ends_the_child_with_the_reason(worker):
    # GIVEN a function whose memory leaves 300 MB past this process and the reserve
    memory_mb = leaving(300)
    worker.start(memory_mb)
    first = worker.call(soon(30, memory_mb), pid)
    # WHEN a call keeps allocating
    with pytest.raises(BudgetExceeded) as raised:
        worker.call(soon(30, memory_mb), allocate_until_refused)
    # THEN it is refused at those 300 MB, and says so
    message = str(raised.value)
    assert message.startswith("exceeded the memory budget (")
    assert abs(int(message.split("(")[1].split()[0]) - 300) <= 2
    assert f"of the function's {memory_mb} MB" in message
    # AND the next call runs in a new child, normally
    assert worker.call(soon(30, memory_mb), pid) not in (first, os.getpid())


def test_what_the_child_may_touch_keeps_the_function_within_its_memory():
    # GIVEN a process shaped like the function's (one thread, none of this test run's
    # leftovers) whose memory leaves 150 MB, and a child that allocates until refused
    code = "from tests.support.budget_probe import touch_report; print(*touch_report(150))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    parent_mb, memory_mb, started_mb, peak_mb = map(int, done.stdout.split())
    # THEN that process plus what the child added stayed within the memory less the reserve
    assert parent_mb + (peak_mb - started_mb) <= memory_mb - budget.MEMORY_RESERVE_MB
    # AND the child was allowed most of it (what it maps but never touches is the rest)
    assert peak_mb - started_mb >= 150 - 40


def test_memory_the_child_inherited_unused_counts_against_its_budget_too(worker):
    # GIVEN 512 MB mapped here and never touched, and a function leaving a child 150 MB
    global _INHERITED
    _INHERITED = mmap.mmap(-1, 512 * MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        memory_mb = leaving(150)
        worker.start(memory_mb)
        # WHEN the child fills the mapping it inherited (RLIMIT_AS sees nothing new mapped)
        with pytest.raises(BudgetExceeded, match="exceeded the memory budget"):
            worker.call(soon(30, memory_mb), fill_inherited_and_hold)
    finally:
        _INHERITED.close()


@pytest.mark.slow
def test_work_past_the_deadline_is_killed_at_the_deadline(worker):
    worker.start(None)
    started = time.monotonic()
    with pytest.raises(BudgetExceeded, match=r"exceeded the time budget \(1\.\d s\)"):
        worker.call(soon(1.5), spin)
    assert 1.5 <= time.monotonic() - started < 1.5 + SLACK_S


def test_no_time_left_fails_without_forking(worker):
    with (
        mock.patch.object(os, "fork", side_effect=AssertionError("forked")),
        pytest.raises(BudgetExceeded, match="no time left"),
    ):
        worker.call(soon(-1), pid)


@pytest.mark.parametrize(("crash", "name"), [(abort, "SIGABRT"), (segfault, "SIGSEGV")])
def test_a_crash_ends_the_child_only(worker, crash, name):
    worker.start(None)
    with pytest.raises(ChildCrashed, match=f"crashed \\({name}\\)"):
        worker.call(soon(30), crash)
    # THEN this process carries on, and so does the next call
    assert worker.call(soon(30), pid) != os.getpid()


def test_what_the_child_raises_comes_back_with_where_it_was_raised(worker):
    worker.start(None)
    kept = worker.call(soon(30), pid)
    with pytest.raises(imaging.ImageRejected, match="not a picture") as raised:
        worker.call(soon(30), refuse, "not a picture")
    assert any("in refuse" in note for note in raised.value.__notes__)
    # AND an exception is an ordinary end: the child is kept
    assert worker.call(soon(30), pid) == kept


def test_a_kept_child_that_died_between_calls_is_replaced_for_the_call(worker):
    worker.start(None)
    kept = worker.call(soon(30), pid)
    os.kill(kept, signal.SIGKILL)
    time.sleep(0.1)
    assert worker.call(soon(30), pid) not in (kept, os.getpid())


def test_a_call_interrupted_here_never_hands_its_result_to_the_next(worker):
    # GIVEN a call that this process gives up on halfway (a signal's exception)
    worker.start(None)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            worker.call(soon(30), later, 0.5, "the first call's")
    finally:
        signal.signal(signal.SIGALRM, previous)
    # THEN the next call gets its own result, not the abandoned one's
    assert worker.call(soon(30), later, 0, "the second call's") == "the second call's"


def test_the_child_s_share_shrinks_as_this_process_grows():
    before = Budget(0, 2048).child_memory_mb()
    held = b"x" * (64 * MIB)
    after = Budget(0, 2048).child_memory_mb()
    del held
    assert 60 <= before - after <= 68
    assert Budget(0, None).child_memory_mb() is None


def test_the_invocation_s_time_less_a_reserve_is_the_deadline():
    now = time.monotonic()
    assert Budget.for_invocation(60_000, 1024).deadline == pytest.approx(now + 50, abs=0.5)
    assert Budget.for_invocation(3_000, 1024).deadline == pytest.approx(now + 2, abs=0.5)
    assert Budget.for_invocation(None, None).deadline == pytest.approx(now + 890, abs=0.5)


# -- through the handler -------------------------------------------------------------------


def run(aws, key, data, budget_=None, profile="thumbnail"):
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, key, len(data))
    return process_event(event, aws.settings(profile), aws.s3, aws.dynamodb, budget_)


def assert_failed(aws, key, error_type, reason):
    item = aws.item(key)
    assert item["status"] == "failed"
    assert item["error_type"] == error_type
    assert reason in item["error"]
    assert item["renditions"] == []
    assert aws.output_keys() == []


@pytest.mark.slow
def test_an_image_that_needs_more_memory_than_is_left_fails_with_the_reason(aws):
    # GIVEN a 5000x4000 RGB PNG (60 MB decoded) and a function with 40 MB left past this
    # process and the reserve
    photo = Image.new("RGB", (5000, 4000), (30, 120, 200))
    buffer = io.BytesIO()
    photo.save(buffer, "PNG", compress_level=1)
    memory_mb = rss_mb() + budget.MEMORY_RESERVE_MB + 40
    # WHEN its event is handled
    result = run(aws, "big.png", buffer.getvalue(), Budget.for_invocation(60_000, memory_mb))
    # THEN it is failed with the budget named, and the invocation returned normally
    assert result == {"processed": 0, "failed": 1, "skipped": 0}
    assert_failed(aws, "big.png", "BudgetExceeded", "exceeded the memory budget (")
    assert f"of the function's {memory_mb} MB" in aws.item("big.png")["error"]


def test_a_render_that_allocates_without_end_fails_and_the_next_image_is_fine(aws, monkeypatch):
    monkeypatch.setattr(imaging, "process", lambda data, profile, timings: allocate_until_refused())
    limits = Budget.for_invocation(60_000, leaving(300))
    assert run(aws, "hog.jpg", images.jpeg(64, 48), limits)["failed"] == 1
    assert_failed(aws, "hog.jpg", "BudgetExceeded", "exceeded the memory budget")
    monkeypatch.undo()
    assert run(aws, "fine.jpg", images.jpeg(640, 480), limits)["processed"] == 1


@pytest.mark.slow
def test_a_render_past_the_deadline_fails_within_the_invocation(aws, monkeypatch):
    # GIVEN a render that never ends, and a context with 3 s left (1 s kept for the writes)
    data = images.jpeg(64, 48)
    aws.upload("spin.jpg", data)
    monkeypatch.setattr(imaging, "process", lambda data, profile, timings: spin())
    context = mock.Mock(get_remaining_time_in_millis=mock.Mock(return_value=3_000))
    env = function_environment(OUTPUT_BUCKET, TABLE, aws.settings().config)
    # WHEN the entry point handles its event
    fresh_container()
    started = time.monotonic()
    memory = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(leaving(300))}
    with mock.patch.dict("os.environ", {**env, **memory}):
        result = handler(put_event(INPUT_BUCKET, "spin.jpg", len(data)), context)
    elapsed = time.monotonic() - started
    fresh_container()
    # THEN it returned before the invocation's 3 s, the image failed on the time budget
    assert result == {"processed": 0, "failed": 1, "skipped": 0}
    assert elapsed < 3.0, f"took {elapsed:.1f} s"
    assert_failed(aws, "spin.jpg", "BudgetExceeded", "exceeded the time budget (")


@pytest.mark.parametrize(("crash", "name"), [(abort, "SIGABRT"), (segfault, "SIGSEGV")])
def test_a_crashing_render_fails_the_image_not_the_function(aws, monkeypatch, crash, name):
    monkeypatch.setattr(imaging, "process", lambda data, profile, timings: crash())
    limits = Budget.for_invocation(60_000, leaving(300))
    assert run(aws, "crash.jpg", images.jpeg(64, 48), limits)["failed"] == 1
    assert_failed(aws, "crash.jpg", "ChildCrashed", f"crashed ({name})")
    # AND the event is not retried into a crash loop: the image is done; others go on
    monkeypatch.undo()
    assert run(aws, "next.jpg", images.jpeg(640, 480), limits)["processed"] == 1


def test_a_forked_child_makes_its_own_thread_pools(monkeypatch):
    # GIVEN this process's pools, with threads that a fork does not copy
    imaging._executor().submit(int).result()
    monkeypatch.setattr(transforms, "_strip_pool", ThreadPoolExecutor(max_workers=1))
    # WHEN a child is forked, THEN it holds none of them (work handed to one would hang)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if imaging._pool is None and transforms._strip_pool is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert imaging._pool is not None  # the parent keeps its own
