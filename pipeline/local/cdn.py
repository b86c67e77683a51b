"""The local CDN: the output bucket over HTTP on 127.0.0.1, served as the distribution serves it.

Each request goes through the same CloudFront Function the stack deploys (compiled from the
same profiles, run under node by pipeline.delivery.node), then the object is read from the
emulator and returned with its Content-Type and Cache-Control and the response-headers
policy's headers (pipeline.delivery.edge). GET and HEAD only, as the distribution allows.

Where it differs from CloudFront: no cache (every request reads the emulator), plain HTTP,
and a missing key is a 404 (CloudFront answers 403: its bucket policy grants no
s3:ListBucket, so S3 does not say whether a key exists).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from lambda_pkg.profiles import OUTPUT_PREFIX, PipelineConfig
from pipeline.aws import client
from pipeline.delivery import edge
from pipeline.delivery.node import EdgeFunctionFailed, NodeFunction, viewer_request

logger = logging.getLogger("imgpipe.local")
ALLOWED_METHODS = ("GET", "HEAD")
# What an object's S3 metadata becomes in the response.
_OBJECT_HEADERS = {
    "ContentType": "Content-Type",
    "CacheControl": "Cache-Control",
    "ETag": "ETag",
    "ContentLength": "Content-Length",
}
_MISSING = ("NoSuchKey", "404", "NotFound")


def node_available() -> bool:
    return shutil.which("node") is not None


class LocalCdn:
    """`LocalCdn(endpoint, bucket, config).start()`; `url` once started; `stop()` ends it."""

    def __init__(self, endpoint: str, bucket: str, config: PipelineConfig, port: int = 0) -> None:
        self.bucket = bucket
        self._s3 = client("s3", endpoint)
        self._code = edge.function_code(config)
        self._function: NodeFunction | None = None  # started on the first request
        self._lock = threading.Lock()
        # Objects answered (key after the function's rewrite -> times): what a page loaded here.
        self.served: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.cdn = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="local-cdn", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalCdn:
        self._thread.start()
        return self

    def redeploy(self, config: PipelineConfig) -> None:
        """The function compiled from edited profiles, as `pulumi up` would publish it."""
        code = edge.function_code(config)
        with self._lock:
            self._code = code
            old, self._function = self._function, None
        if old is not None:
            old.close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            function, self._function = self._function, None
        if function is not None:
            function.close()

    def rewrite(self, uri: str, accept: str | None, method: str) -> str:
        """The URI the function leaves for the origin."""
        with self._lock:
            if self._function is None:
                self._function = NodeFunction(self._code)
            function = self._function
        return function(viewer_request(uri, accept, method))["uri"]

    def fetch(self, key: str, head: bool) -> dict[str, Any] | None:
        """The object (its body unless `head`), or None if the bucket has no such key."""
        try:
            found = (self._s3.head_object if head else self._s3.get_object)(
                Bucket=self.bucket, Key=key
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        with self._lock:
            self.served[key] += 1
        return found


class _Handler(BaseHTTPRequestHandler):
    server_version = "imgpipe-local-cdn"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _refuse(self) -> None:
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": ", ".join(ALLOWED_METHODS)})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _serve(self, head: bool) -> None:
        cdn: LocalCdn = self.server.cdn  # type: ignore[attr-defined]
        try:
            uri = cdn.rewrite(urlsplit(self.path).path, self.headers.get("Accept"), self.command)
        except EdgeFunctionFailed as failure:
            # CloudFront answers a function that fails with 503 too.
            logger.warning("cdn: the function failed for %s: %s", self.path, failure)
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE)
            return
        key = unquote(uri.removeprefix("/"))
        if not key.startswith(OUTPUT_PREFIX):
            # The bucket policy lets the distribution read renditions only.
            self._reply(HTTPStatus.FORBIDDEN)
            return
        found = cdn.fetch(key, head)
        if found is None:
            self._reply(HTTPStatus.NOT_FOUND)
            return
        headers = {name: str(found[key]) for key, name in _OBJECT_HEADERS.items() if key in found}
        if "LastModified" in found:
            headers["Last-Modified"] = self.date_time_string(found["LastModified"].timestamp())
        self._reply(HTTPStatus.OK, headers, None if head else found["Body"].read())

    def _reply(
        self, status: HTTPStatus, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> None:
        self.send_response(status)
        for name, value in {**edge.RESPONSE_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        if self.headers.get("Origin"):  # a CORS request, as the policy's CORS config answers
            self.send_header("Access-Control-Allow-Origin", edge.CORS_ALLOW_ORIGIN)
        if body is None and "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", "0")
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("cdn: " + format, *args)
