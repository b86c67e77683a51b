"""A CloudFront Function run under node: one long-lived child speaking JSON lines (host.js).

Starting node costs ~40 ms; a call through the pipe costs well under a millisecond, so the
local CDN keeps one child and sends it every request. Calls are serialised: one at a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

HOST = Path(__file__).with_name("host.js")


class EdgeFunctionFailed(RuntimeError):
    """node is missing, or the function failed to load or raised."""


def viewer_request(
    uri: str, accept: str | None = None, method: str = "GET", ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """A viewer-request event as CloudFront hands it to a function (event structure 1.0):
    header names lower-cased, each with a `value`."""
    headers = {} if accept is None else {"accept": {"value": accept}}
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": ip},
        "request": {
            "method": method,
            "uri": uri,
            "querystring": {},
            "headers": headers,
            "cookies": {},
        },
    }


class NodeFunction:
    """`NodeFunction(code)(event)` returns what the function's handler returns."""

    def __init__(self, code: str) -> None:
        node = shutil.which("node")
        if node is None:
            raise EdgeFunctionFailed(
                "node is not installed: the CloudFront Function runs under node locally "
                "(Debian: apt-get install nodejs)"
            )
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [node, str(HOST)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._exchange(json.dumps(code))

    def __call__(self, event: dict[str, Any]) -> Any:
        return self._exchange(json.dumps(event))

    def _exchange(self, line: str) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        with self._lock:
            try:
                self._process.stdin.write(line + "\n")
                self._process.stdin.flush()
            except BrokenPipeError:
                raise EdgeFunctionFailed("the node process has exited") from None
            answer = self._process.stdout.readline()
        if not answer:
            raise EdgeFunctionFailed(f"node exited ({self._process.poll()})")
        reply = json.loads(answer)
        if "error" in reply:
            raise EdgeFunctionFailed(reply["error"])
        return reply["result"]

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()  # host.js ends with its input
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> NodeFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
