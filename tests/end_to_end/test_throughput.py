"""benchmarks/throughput.py on two tiny images: it runs, every phase is read back from the
function's own log lines, and the report names each case (slow: it starts the local stack)."""

from __future__ import annotations

import os

from benchmarks import throughput
from lambda_pkg import timings
from pipeline.local import workers


def test_the_throughput_benchmark_measures_every_phase_of_every_image():
    # GIVEN two tiny photos and the thumbnail profile on one pinned worker
    # WHEN the benchmark runs
    result = throughput.run(
        profiles=("thumbnail",), sizes={"tiny": (64, 48)}, counts={"tiny": 2}, workers=(1,)
    )

    # THEN both images were processed and each has its phases from its log line
    (case,) = result.cases
    assert (case.count, case.failed, len(case.per_image)) == (2, 0, 2)
    for ms in case.per_image:
        assert {*timings.PHASES, timings.OTHER, timings.TOTAL} == set(ms)
    assert case.per_worker > 0 and case.wall_ms >= case.mean(timings.TOTAL)
    # AND the report has its row and the phase split
    text = throughput.report(result)
    assert "thumbnail  tiny" in text and "outside" in text


def test_workers_are_pinned_from_the_last_core_down():
    cores = sorted(os.sched_getaffinity(0))
    assert workers.worker_core(0) == cores[-1]
    assert workers.worker_core(len(cores)) == cores[-1]
