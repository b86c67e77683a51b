"""An HTTP proxy on 127.0.0.1 that injects AWS throttling and 5xx errors in front of moto.

The function's AWS_ENDPOINT_URL points here; each request is either answered with an error
body exactly as the service sends it (so botocore parses and retries it as it would in
AWS), or forwarded to the emulator unchanged. Decisions come from a seeded generator, one
per service, so a run injects the same faults in the same order of requests.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    message: str


# What each service really answers when it throttles or fails (codes botocore retries).
S3_FAULTS = (
    Fault(503, "SlowDown", "Please reduce your request rate."),
    Fault(500, "InternalError", "We encountered an internal error. Please try again."),
    Fault(503, "ServiceUnavailable", "Service is unable to handle request."),
)
DYNAMODB_FAULTS = (
    Fault(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    Fault(
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    Fault(500, "InternalServerError", "Internal server error"),
)
# EventBridge (PutEvents, the function's outcomes) speaks JSON 1.1 with error types.
EVENTS_FAULTS = (
    Fault(400, "ThrottlingException", "Rate exceeded"),
    Fault(500, "InternalException", "Internal service error"),
)
# Not forwarded: hop-by-hop headers, and Expect (this proxy already answered the 100).
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
_NOT_FORWARDED = _HOP_BY_HOP | {"expect"}


def service_of(headers: dict[str, str]) -> str:
    """DynamoDB and EventBridge speak JSON with an X-Amz-Target; the function's other
    service is S3."""
    target = headers.get("x-amz-target", "")
    if target.startswith("DynamoDB"):
        return "dynamodb"
    if target.startswith("AWSEvents"):
        return "events"
    if target.startswith("AmazonSQS"):
        return "sqs"
    return "s3"


_FAULTS = {"dynamodb": DYNAMODB_FAULTS, "events": EVENTS_FAULTS}


@dataclass
class FaultPlan:
    """Per-service fraction of requests to fail, and the seed that picks which."""

    rates: dict[str, float]
    seed: int = 7
    injected: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rngs: dict[str, random.Random] = field(default_factory=dict, repr=False)

    def decide(self, service: str) -> Fault | None:
        with self._lock:
            rng = self._rngs.setdefault(service, random.Random(f"{self.seed}:{service}"))
            roll, pick = rng.random(), rng.random()
            rate = self.rates.get(service, 0.0)
            if roll >= rate:
                self.forwarded[service] += 1
                return None
            faults = _FAULTS.get(service, S3_FAULTS)
            fault = faults[int(pick * len(faults))]
            self.injected[f"{service}:{fault.code}"] += 1
            return fault


def error_body(service: str, fault: Fault) -> tuple[bytes, str]:
    if service == "events":
        body = {"__type": fault.code, "message": fault.message}
        return json.dumps(body).encode(), "application/x-amz-json-1.1"
    if service == "dynamodb":
        body = {
            "__type": f"com.amazonaws.dynamodb.v20120810#{fault.code}",
            "message": fault.message,
        }
        return json.dumps(body).encode(), "application/x-amz-json-1.0"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return xml.encode(), "application/xml"


class FaultProxy:
    """`with FaultProxy(upstream, plan) as proxy:` then point clients at `proxy.endpoint`."""

    def __init__(self, upstream: str, plan: FaultPlan) -> None:
        self.upstream = urlsplit(upstream)
        self.plan = plan
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

            def log_message(self, *args: object) -> None:  # quiet: thousands of requests
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                service = service_of(headers)
                fault = proxy.plan.decide(service)
                if fault is not None:
                    payload, content_type = error_body(service, fault)
                    self._reply(fault.status, {"Content-Type": content_type}, payload)
                    return
                try:
                    status, reply_headers, payload = proxy._forward(
                        self.command, self.path, self.headers.items(), body
                    )
                except OSError:  # the emulator is down: what a dropped connection looks like
                    self.close_connection = True
                    return
                self._reply(status, reply_headers, payload)

            def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._local = threading.local()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _forward(
        self, method: str, path: str, headers: object, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.upstream.hostname, self.upstream.port, timeout=60
            )
            self._local.connection = connection
        forwarded = {k: v for k, v in headers if k.lower() not in _NOT_FORWARDED}  # type: ignore[attr-defined]
        try:
            connection.request(method, path, body=body, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self._local.connection = None
            raise OSError("upstream unavailable") from None
        return response.status, dict(response.getheaders()), payload

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
