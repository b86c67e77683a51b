"""moto's server on 127.0.0.1: the embedded AWS every local command talks to."""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
# moto accepts any credentials; fixed ones keep the AWS CLI line copy-pasteable.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def client(service: str, endpoint: str | None, region: str = REGION, **config: Any) -> Any:
    """A boto3 client for the emulator (endpoint given) or for real AWS (endpoint None)."""
    retries = {"max_attempts": 10, "mode": "adaptive"}
    options = Config(retries=retries, **config)
    if endpoint is None:
        return boto3.client(service, config=options)
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=options,
    )


class Emulator:
    """Starts moto's ThreadedMotoServer on a loopback port (a free one unless given)."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> Emulator:
        # werkzeug logs every request at INFO; the demo's output is the table, not that.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
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
