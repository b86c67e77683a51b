"""boto3 clients for every part of the house that is not the function: the CLI, the local
stack and the reliability suite, against the emulator (an endpoint) or real AWS (none).

Its own module because it belongs to none of them: a deployed stack's commands must not
reach AWS through the emulator's code, and the emulator must not own how the CLI connects.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# The emulator's region and credentials: moto accepts any credentials; fixed ones keep the
# AWS CLI line copy-pasteable.
REGION = "us-east-1"
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
