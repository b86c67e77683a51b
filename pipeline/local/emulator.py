"""moto's server on 127.0.0.1: the embedded AWS every local command talks to."""

from __future__ import annotations

import functools
import logging
import socket
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


class PortInUse(RuntimeError):
    """The port asked for is taken by another program."""


class Emulator:
    """Starts moto's ThreadedMotoServer on a loopback port (a free one unless given)."""

    HOST = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: Any = None  # moto's server, imported as it starts: a second of imports
        self.endpoint = ""

    def check_port(self) -> None:
        """Raise PortInUse if the chosen port is taken: moto's server would print a line
        in its thread and leave start() waiting for ever."""
        if not self.port:
            return
        with socket.socket() as probe:
            # As the server binds: a port left in TIME_WAIT by a stopped stack is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.HOST, self.port))
            except OSError as exc:
                raise PortInUse(
                    f"port {self.port} on {self.HOST} is in use by another program "
                    f"({exc.strerror}): pick another --port, or leave it out for a free one"
                ) from None

    def start(self) -> Emulator:
        # werkzeug logs every request at INFO; the demo's output is the table, not that.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        stamp_sequencers()
        serialise_dynamodb()
        from moto.server import ThreadedMotoServer

        self.check_port()  # again: the port may have been taken while the function built
        server = ThreadedMotoServer(ip_address=self.HOST, port=self.port, verbose=False)
        server.start()
        self._server = server
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
