"""The local workers' one line per delivery names what the event was about."""

from __future__ import annotations

from pipeline.local import workers
from tests.support.aws import load_event, put_event


def test_the_line_names_the_image() -> None:
    event = put_event("imgpipe-local-input", "input/photo.jpg", 1000)
    assert workers._keys(event) == "input/photo.jpg"


def test_the_line_names_s3s_test_event_rather_than_no_records() -> None:
    # GIVEN the s3:TestEvent S3 puts on the queue when the stack sets up its notification
    event = load_event("aws_docs_s3_TestEvent")
    # THEN the worker's "... done in N ms" line at start-up says what it was
    assert workers._keys(event) == "s3:TestEvent"
