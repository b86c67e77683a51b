"""Faults through the local stack (reliability/scenarios.py, short forms): throttling and
5xx from an injecting proxy, SIGKILL mid-image, the emulator restarted mid-run, and
duplicate / out-of-order S3 events. After each: nothing missing, nothing half-written."""

from __future__ import annotations

import http.client
import json

from reliability import scenarios
from reliability.proxy import EVENTS_FAULTS, FaultPlan, FaultProxy, error_body, service_of


def _assert_clean(result: scenarios.RunResult) -> None:
    accounting = result.accounting
    assert (accounting["missing"], accounting["half_written"]) == (0, 0), result.problems
    assert result.clean, result.problems


def test_the_proxy_answers_as_the_services_do_and_is_deterministic():
    plan = FaultPlan({"s3": 1.0, "dynamodb": 1.0}, seed=1)
    with FaultProxy("http://127.0.0.1:9", plan) as proxy:
        host, port = proxy.endpoint.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request(
            "POST", "/", body=b"{}", headers={"X-Amz-Target": "DynamoDB_20120810.PutItem"}
        )
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status in (400, 500) and "#" in body["__type"]
        connection.request("GET", "/bucket/key")
        response = connection.getresponse()
        assert response.status in (500, 503) and b"<Code>" in response.read()
    # AND the same seed injects the same faults in the same order of requests
    decisions = [FaultPlan({"s3": 0.5}, seed=3) for _ in range(2)]
    runs = [[plan.decide("s3") for _ in range(50)] for plan in decisions]
    assert runs[0] == runs[1] and 10 < sum(d is not None for d in runs[0]) < 40
    assert service_of({"x-amz-target": "DynamoDB_20120810.GetItem"}) == "dynamodb"
    # AND EventBridge's PutEvents is told apart and answered in its own JSON error shape
    assert service_of({"x-amz-target": "AWSEvents.PutEvents"}) == "events"
    body, content_type = error_body("events", EVENTS_FAULTS[0])
    assert json.loads(body)["__type"] == "ThrottlingException"
    assert content_type == "application/x-amz-json-1.1"


def test_throttling_and_5xx_are_absorbed_by_retries():
    result = scenarios.throttling(count=24, rate=0.2)
    _assert_clean(result)
    assert result.extra["faults_injected"] > 0
    assert result.accounting["dead_lettered"] == 0  # botocore + Lambda retries absorb 20%


def test_a_worker_killed_mid_image_loses_nothing():
    result = scenarios.sigkill(count=10, kills=3)
    _assert_clean(result)
    assert result.extra["kills"] == 3
    assert result.accounting["processed"] == 10  # after redrive of anything on the DLQ


def test_an_emulator_restart_mid_run_loses_nothing():
    result = scenarios.emulator_restart(count=30, restarts=1, down_s=2.0)
    _assert_clean(result)
    assert result.accounting["processed"] + result.accounting["failed"] == 30


def test_duplicates_and_out_of_order_events_keep_the_newest():
    result = scenarios.ordering(keys=8)
    _assert_clean(result)
    assert result.extra["newer_won"] == 8
    assert (result.accounting["skipped"], result.accounting["failed"]) == (1, 1)


def test_collisions_overwrites_and_racing_deletes_through_the_queue_keep_every_invariant():
    # GIVEN back-to-back uploads, overwrites and deletes racing through two workers,
    # THEN each collision has one winner, junk overwrites fail and remove the old
    # renditions, deletes win, and every invariant holds at the end
    result = scenarios.integrity(groups=4)
    _assert_clean(result)
