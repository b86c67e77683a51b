"""Where an image's time goes: the `Image timings:` line the handler logs per image."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from lambda_pkg import timings
from lambda_pkg.handler import process_event
from tests.support import images
from tests.support.aws import INPUT_BUCKET, put_event

PREFIX = "Image timings: "
RENDERED = {"get", "decode", "render", "handoff", "claim", "put", "item", "other", "total"}


def timing_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    messages = [r.getMessage() for r in caplog.records if r.name == "imgpipe"]
    return [json.loads(m.removeprefix(PREFIX)) for m in messages if m.startswith(PREFIX)]


def run(aws, caplog, key: str, data: bytes, profile: str) -> dict:
    caplog.set_level(logging.INFO, logger="imgpipe")
    aws.upload(key, data)
    event = put_event(INPUT_BUCKET, key, len(data))
    return process_event(event, aws.settings(profile), aws.s3, aws.dynamodb)


def test_a_processed_image_logs_every_phase_it_went_through(aws, caplog):
    # GIVEN a photo and the seven-rendition profile
    # WHEN the handler processes it
    result = run(aws, caplog, "input/photo.jpg", images.jpeg(1200, 800), "web")

    # THEN one line says where its time went: every phase, none negative
    assert result["processed"] == 1
    (line,) = timing_lines(caplog)
    assert (line["key"], line["outcome"]) == ("input/photo.jpg", "processed")
    ms = line["ms"]
    assert set(ms) == RENDERED
    assert all(value >= 0 for value in ms.values())
    # AND the phases and the rest add up to the record's time (each rounded to 0.1 ms)
    parts = sum(value for name, value in ms.items() if name != "total")
    assert parts == pytest.approx(ms["total"], abs=1.0)
    assert ms["decode"] > 0 and ms["render"] > 0


def test_a_failed_image_still_logs_what_it_measured(aws, caplog):
    # GIVEN bytes that claim to be a JPEG and are cut off mid-header
    data = images.jpeg(640, 480)[:300]

    # WHEN the handler processes them
    result = run(aws, caplog, "input/cut.jpg", data, "thumbnail")

    # THEN the image fails, and its line still has the download, the decode it tried (in
    # the render's child) and the failed item's write; nothing rendered, nothing put
    assert result["failed"] == 1
    (line,) = timing_lines(caplog)
    assert line["outcome"] == "failed"
    ms = line["ms"]
    assert {"get", "decode", "handoff", "item", "other", "total"} <= set(ms)
    assert not {"render", "put", "claim"} & set(ms)
    assert all(value >= 0 for value in ms.values())


def test_a_record_skipped_before_any_work_logs_no_timings(aws, caplog):
    caplog.set_level(logging.INFO, logger="imgpipe")
    data = images.jpeg(64, 48)
    aws.upload("input/", data)
    process_event(put_event(INPUT_BUCKET, "input/", len(data)), aws.settings(), aws.s3, None)
    assert timing_lines(caplog) == []


def test_a_phase_is_timed_when_it_raises_and_the_figures_survive_the_child():
    measured = timings.Timings()
    with pytest.raises(ValueError) as raised, measured.phase(timings.DECODE):
        raise ValueError("bad bytes")
    timings.attach(raised.value, measured)
    # The child's exception crosses to the parent as a pickle.
    crossed = pickle.loads(pickle.dumps(raised.value))
    assert timings.attached(crossed) == measured.ms
    assert measured.ms[timings.DECODE] >= 0
    assert timings.attached(ValueError()) == {}
