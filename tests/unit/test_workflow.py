"""The record workflow's pure pieces and the handler's summary, without AWS or images."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lambda_pkg import handler, imaging, workflow
from lambda_pkg.events import S3Record, s3_event, s3_records
from lambda_pkg.profiles import PipelineConfig, Rendition, Resize, load_named
from lambda_pkg.settings import Settings
from lambda_pkg.workflow import Outcome

OUTPUT = "imgpipe-unit-output"


def settings() -> Settings:
    return Settings(OUTPUT, "imgpipe-unit-metadata", PipelineConfig.single(load_named("thumbnail")))


def record(key: str, event_name: str = "ObjectCreated:Put", bucket: str = "in") -> S3Record:
    (only,) = s3_records(s3_event(bucket, key, 10, "00AA", event_name))
    return only


def event(*keys: str) -> dict[str, Any]:
    records = [s3_event("in", key, 10, "00AA", "ObjectCreated:Put")["Records"][0] for key in keys]
    return {"Records": records}


def test_outcome_values_are_the_summary_names_the_handler_returns() -> None:
    assert [outcome.value for outcome in Outcome] == ["processed", "failed", "skipped"]
    assert f"{Outcome.FAILED}" == "failed"  # a StrEnum: logs and JSON show the plain name
    assert handler.Summary().as_dict() == {"processed": 0, "failed": 0, "skipped": 0}


def test_the_summary_counts_each_record_by_its_outcome(monkeypatch) -> None:
    # GIVEN a workflow that ends four records in three ways
    ends = iter([Outcome.PROCESSED, Outcome.SKIPPED, Outcome.PROCESSED, Outcome.FAILED])
    monkeypatch.setattr(handler, "process_record", lambda *args: next(ends))
    # WHEN the handler processes the event, THEN it returns how many ended each way
    result = handler.process_event(event("a", "b", "c", "d"), settings(), None, None)
    assert result == {"processed": 2, "failed": 1, "skipped": 1}
    assert list(result) == ["processed", "failed", "skipped"]


def test_a_raising_record_does_not_stop_the_others_and_is_raised_last(monkeypatch, caplog):
    # GIVEN a workflow that raises for the first record only
    seen: list[str] = []

    def process_record(record: S3Record, *args: Any) -> Outcome:
        seen.append(record.key)
        if record.key == "a":
            raise TimeoutError("slow")
        return Outcome.PROCESSED

    monkeypatch.setattr(handler, "process_record", process_record)
    caplog.set_level(logging.INFO, logger="imgpipe")
    # WHEN the handler processes both, THEN the second still ran and the error is raised
    with pytest.raises(TimeoutError, match="slow"):
        handler.process_event(event("a", "b"), settings(), None, None)
    assert seen == ["a", "b"]
    assert "Record for key 'a' failed; it will be retried" in caplog.messages


@pytest.mark.parametrize(
    ("key", "event_name", "bucket", "reason"),
    [
        ("a.jpg", "ObjectRestore:Completed", "in", "neither an object creation nor a removal"),
        ("folder/", "ObjectCreated:Put", "in", "a folder marker"),
        ("processed/a.jpg", "ObjectCreated:Put", OUTPUT, "one of our own outputs"),
        ("owner#processed/a.jpg", "ObjectCreated:Put", "in", "reserved for the metadata"),
        ("released#a.jpg", "ObjectRemoved:Delete", "in", "reserved for the metadata"),
    ],
)
def test_records_the_workflow_skips_say_why(key, event_name, bucket, reason) -> None:
    found = workflow._skip_reason(record(key, event_name, bucket), key, settings())
    assert found is not None and reason in found


def test_records_for_images_are_not_skipped() -> None:
    assert workflow._skip_reason(record("processed/a.jpg"), "processed/a.jpg", settings()) is None
    assert (
        workflow._skip_reason(record("a.jpg", "ObjectRemoved:Delete"), "a.jpg", settings()) is None
    )


def output(name: str) -> imaging.Output:
    rendition = Rendition(name, Resize("width", width=10), "jpeg", "processed/{rendition}/{name}")
    return imaging.Output(rendition, b"x", 10, 10, "jpeg")


def test_key_problem_names_renditions_that_meet_at_one_key_and_keys_s3_refuses() -> None:
    outputs = [output("a"), output("b")]
    assert workflow._key_problem(outputs, ["processed/a", "processed/b"]) is None
    shared = workflow._key_problem(outputs, ["processed/x", "processed/x"])
    assert shared is not None and shared.startswith("renditions a and b both come out at")
    long_key = "processed/" + "k" * workflow.S3_MAX_KEY_BYTES
    too_long = workflow._key_problem(outputs, ["processed/a", long_key])
    assert too_long is not None and "over S3's 1,024-byte key limit" in too_long


def test_size_check_refuses_empty_and_oversized_objects() -> None:
    profile = load_named("thumbnail")
    workflow._check_size(profile.max_bytes, profile)
    with pytest.raises(imaging.ImageRejected, match=r"the object is empty \(0 bytes\)"):
        workflow._check_size(0, profile)
    with pytest.raises(imaging.ImageRejected, match="over the profile's max_bytes"):
        workflow._check_size(profile.max_bytes + 1, profile)
