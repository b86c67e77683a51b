"""moto's server on 127.0.0.1: the embedded AWS every local command talks to."""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any


@functools.cache
def stamp_sequencers() -> None:
    """Give moto's S3 event records a `sequencer`, as S3's carry: without one the handler
    cannot tell an older event from a newer one, so a delete racing a create (or two
    uploads of one key) would end locally in states AWS never shows. Hex of a clock that
    only moves forward, so later operations always compare greater."""
    from moto.s3 import notifications

    lock = threading.Lock()
    last = [0]
    make_event = notifications._get_s3_event

    def with_sequencer(*args: Any, **kwargs: Any) -> dict[str, Any]:
        event = make_event(*args, **kwargs)
        with lock:
            last[0] = max(last[0] + 1, time.time_ns())
            sequencer = f"{last[0]:016X}"
        for record in event["Records"]:
            record["s3"]["object"].setdefault("sequencer", sequencer)
        return event

    notifications._get_s3_event = with_sequencer


@functools.cache
def serialise_dynamodb() -> None:
    """One DynamoDB request at a time, as each is atomic in AWS: moto's server evaluates a
    ConditionExpression and applies the write without a lock, so two racing conditional
    writes (two sources claiming one output key) could both succeed, which AWS never
    allows. The table is tiny and requests are short: a lock costs nothing here."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def atomic(self: Any) -> Any:
        with lock:
            return call_action(self)

    DynamoHandler.call_action = atomic


class Emulator:
    """Starts moto's ThreadedMotoServer on a loopback port (a free one unless given)."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> Emulator:
        # werkzeug logs every request at INFO; the demo's output is the table, not that.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        stamp_sequencers()
        serialise_dynamodb()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
