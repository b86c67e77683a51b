"""Renditions match their item (reliability/integrity.py): key collisions, overwrites,
extension changes, profile edits, deletes that overtake creates; each in four deliveries
(sequential, duplicated, burst, reversed), with every invariant checked after each."""

from __future__ import annotations

import pytest

from lambda_pkg.profiles import load_named
from reliability import integrity
from reliability.world import world

CASES = list(integrity.cases())


@pytest.mark.parametrize(
    ("scenario", "delivery"),
    CASES,
    ids=[f"{scenario.name[:40]}-{delivery}" for scenario, delivery in CASES],
)
def test_every_scenario_ends_with_renditions_matching_their_items(scenario, delivery):
    # GIVEN a fresh stack, WHEN the scenario's uploads and deletes happen and their events
    # arrive in this delivery order, THEN every invariant holds and the newest event won
    with world() as fresh:
        outcome = integrity.run(fresh, scenario, delivery)
    assert outcome.passed, "\n".join(outcome.problems)


@pytest.mark.parametrize("profile", ["thumbnail", "web"])
def test_a_delete_handled_during_the_first_render_leaves_nothing(profile):
    with world() as fresh:
        outcome = integrity.delete_during_render(fresh, load_named(profile))
        # THEN the create found the tombstone: no rendition, the item says deleted
        assert fresh.output_sizes() == {}
        assert fresh.item("race/g.jpg")["status"] == "deleted"
    assert outcome.passed, "\n".join(outcome.problems)


@pytest.mark.parametrize("scenario", integrity.scenarios(), ids=lambda s: s.name[:40])
def test_a_transient_error_at_any_aws_call_ends_in_the_same_invariants(scenario):
    # GIVEN the number of AWS calls the scenario's handlers make when nothing fails
    with world() as fresh:
        _outcome, calls = integrity.run_with_fault(fresh, scenario, fail_at=0)
    # WHEN each of those calls in turn fails once (throttling, 5xx, a timeout) and Lambda
    # retries the event, THEN every invariant holds and the newest event won, every time
    broken = []
    for fail_at in range(1, calls + 1):
        with world() as fresh:
            outcome, _ = integrity.run_with_fault(fresh, scenario, fail_at)
        broken += [f"call {fail_at}: {problem}" for problem in outcome.problems]
    assert not broken, "\n".join(broken)
