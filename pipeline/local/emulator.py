"""moto's server on 127.0.0.1: the embedded AWS every local command talks to."""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

_sequencer_lock = threading.Lock()
_last_sequencer = [0]


def last_sequencer() -> int:
    """The newest sequencer handed out: a restored stack starts above it."""
    with _sequencer_lock:
        return _last_sequencer[0]


def sequencers_after(value: int) -> None:
    """Every later event compares greater than `value`, even if the clock went back: items
    restored from disk carry sequencers, and a new event must never lose to an old one."""
    with _sequencer_lock:
        _last_sequencer[0] = max(_last_sequencer[0], value)


@functools.cache
def stamp_sequencers() -> None:
    """Give moto's S3 event records a `sequencer`, as S3's carry: without one the handler
    cannot tell an older event from a newer one, so a delete racing a create (or two
    uploads of one key) would end locally in states AWS never shows. Hex of a clock that
    only moves forward, so later operations always compare greater."""
    from moto.s3 import notifications

    make_event = notifications._get_s3_event

    def with_sequencer(*args: Any, **kwargs: Any) -> dict[str, Any]:
        event = make_event(*args, **kwargs)
        with _sequencer_lock:
            _last_sequencer[0] = max(_last_sequencer[0] + 1, time.time_ns())
            sequencer = f"{_last_sequencer[0]:016X}"
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


def _moto_server(host: str, port: int) -> Any:
    """moto's ThreadedMotoServer, except that a port it cannot bind ends start(): moto's
    waits for ever for a server that never came up (werkzeug prints two lines and raises
    SystemExit in moto's thread)."""
    from moto.server import ThreadedMotoServer

    class Server(ThreadedMotoServer):
        bound = True

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except (OSError, SystemExit):
                if self._server is None:  # make_server failed: nothing serves
                    self.bound = False
                    self._server_ready_event.set()

    return Server(ip_address=host, port=port, verbose=False)


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
                raise self._in_use(exc.strerror) from None

    def _in_use(self, why: str) -> PortInUse:
        return PortInUse(
            f"port {self.port} on {self.HOST} is in use by another program "
            f"({why}): pick another --port, or leave it out for a free one"
        )

    def start(self) -> Emulator:
        # werkzeug logs every request at INFO; the demo's output is the table, not that.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        stamp_sequencers()
        serialise_dynamodb()
        request_gate()
        self.check_port()  # again: the port may have been taken while the function built
        server = _moto_server(self.HOST, self.port)
        server.start()
        if not server.bound:  # taken since the check: by another stack's server, say
            raise self._in_use("Address already in use")
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


# Requests that leave nothing a snapshot keeps: reads, and the SQS calls that only hide a
# message for a while (a restored message is visible again anyway).
_KEEPS_STATE = frozenset(
    {
        "ReceiveMessage",
        "ChangeMessageVisibility",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListQueues",
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "DescribeTable",
        "ListTables",
    }
)


class RequestGate:
    """Requests pass side by side; `paused()` lets those inside finish, holds new ones at
    the door and lets them in again after. Inside the pause the emulator's state is one
    that whole requests made: an S3 upload together with the event it queued, an item
    together with the delete of the message that produced it."""

    def __init__(self) -> None:
        self._door = threading.Condition()
        self._inside = 0
        self._pausing = 0
        self.changes = 0  # finished requests that may have changed what a snapshot keeps

    @contextlib.contextmanager
    def request(self, changes_state: bool) -> Iterator[None]:
        with self._door:
            self._door.wait_for(lambda: not self._pausing)
            self._inside += 1
        try:
            yield
        finally:
            with self._door:
                self._inside -= 1
                self.changes += changes_state
                self._door.notify_all()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._door:
            self._pausing += 1
            self._door.wait_for(lambda: not self._inside)
        try:
            yield
        finally:
            with self._door:
                self._pausing -= 1
                self._door.notify_all()


def _changes_state(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return False
    action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    return action not in _KEEPS_STATE


@functools.cache
def request_gate() -> RequestGate:
    """The one gate every emulator request in this process passes (moto's backends are
    per process, so a consistent snapshot has to hold all of them at once)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    gate = RequestGate()
    dispatch = DomainDispatcherApplication.__call__

    def gated(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        with gate.request(_changes_state(environ)):
            return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = gated
    return gate
