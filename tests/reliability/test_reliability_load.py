"""Load through the local stack, CI form: 200 mixed uploads, zero lost.

The benchmark form is `python -m reliability load --count 2000` (or `report --long`)."""

from __future__ import annotations

from reliability import scenarios


def test_two_hundred_mixed_uploads_all_accounted_for_with_latency_measured():
    result = scenarios.load(count=200, workers=2)
    accounting = result.accounting
    assert (accounting["missing"], accounting["half_written"]) == (0, 0), result.problems
    assert accounting["processed"] + accounting["failed"] == 200
    assert accounting["dead_lettered"] == 0 and result.extra["unexpected_status"] == 0
    assert result.extra["throughput_per_s"] > 1
    assert result.extra["latency_p50_s"] <= result.extra["latency_p95_s"]
    assert result.extra["latency_p95_s"] <= result.extra["latency_p99_s"]
