"""Renditions match their item (reliability/integrity.py): key collisions, overwrites,
extension changes, profile edits, deletes that overtake creates; each in four deliveries
(sequential, duplicated, burst, reversed), with every invariant checked after each."""

from __future__ import annotations

import pytest

from lambda_pkg.profiles import load_named
from reliability import images as image_sets
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
@pytest.mark.parametrize("at", integrity.INTERLEAVINGS)
def test_a_delete_handled_during_the_first_create_leaves_nothing(profile, at):
    with world() as fresh:
        outcome = integrity.during_render(
            fresh, load_named(profile), integrity.Op("delete", "race/g.jpg"), at
        )
        # THEN the create found the tombstone: no rendition, the item says deleted
        assert fresh.output_sizes() == {}
        assert fresh.item("race/g.jpg")["status"] == "deleted"
    assert outcome.passed, "\n".join(outcome.problems)


@pytest.mark.parametrize("scenario", integrity.scenarios(), ids=lambda s: s.name[:40])
def test_a_transient_error_at_any_aws_call_ends_in_the_same_invariants(scenario):
    # GIVEN the number of AWS calls the scenario's handlers make when nothing fails
    with world() as fresh:
        calls = integrity.run_with_fault(fresh, scenario, fail_at=0).calls
    # WHEN each of those calls in turn fails once (throttling, 5xx, a timeout) and Lambda
    # retries the event, THEN every invariant holds and the newest event won, every time
    broken = []
    for fail_at in range(1, calls + 1):
        with world() as fresh:
            outcome = integrity.run_with_fault(fresh, scenario, fail_at)
        broken += [f"call {fail_at}: {problem}" for problem in outcome.problems]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("profile", "second"),
    [
        ("web", integrity.Op("put", data=b"this is not an image" * 40)),
        ("same", integrity.Op("put", data=image_sets.payloads()["png 800x600 rgba"])),
        ("thumbnail", integrity.Op("put", data=image_sets.payloads()["jpeg 640x480"])),
    ],
    ids=["junk-over-it", "png-over-it-new-extension", "another-jpeg-over-it"],
)
@pytest.mark.parametrize("at", integrity.INTERLEAVINGS)
def test_an_upload_handled_during_an_older_create_leaves_only_its_own_result(profile, second, at):
    # GIVEN a create under way (rendered, or its keys claimed) when the key is overwritten
    # and the newer event is handled to the end (its cleanup releases the older claims)
    chosen = integrity.same_format_profile() if profile == "same" else load_named(profile)
    with world() as fresh:
        outcome = integrity.during_render(fresh, chosen, second, at)
    # THEN whatever the older event then wrote is removed; every invariant holds
    assert outcome.passed, "\n".join(outcome.problems)


@pytest.mark.parametrize("at", integrity.INTERLEAVINGS)
@pytest.mark.parametrize("lagging_index", [False, True], ids=["index-current", "index-lagging"])
@pytest.mark.parametrize(
    "second",
    [integrity.Op("delete"), integrity.Op("put", data=b"this is not an image" * 40)],
    ids=["delete", "junk"],
)
def test_a_create_that_fails_and_loses_to_a_newer_event_leaves_nothing_behind(
    at, lagging_index, second
):
    # GIVEN a create overtaken by a delete or a junk upload (handled to the end, maybe
    # before the owner index shows the create's claims), WHEN each AWS call of the create
    # in turn fails once and Lambda retries it (the retry then finds the newer item),
    # THEN what any attempt claimed or wrote is gone and every invariant holds
    profile = integrity.two_renditions()
    with world() as fresh:
        calls = integrity.during_render(fresh, profile, second, at).calls
    broken = []
    for fail_at in range(1, calls + 1):
        with world() as fresh:
            outcome = integrity.during_render(
                fresh, profile, second, at, fail_at=fail_at, lagging_index=lagging_index
            )
        broken += [f"call {fail_at}: {problem}" for problem in outcome.problems]
    assert not broken, "\n".join(broken)
