"""What the function takes from boto3, made once per container (on first use), not per event.

boto3 comes with the Lambda runtime. It is imported here and nowhere else in lambda_pkg,
and only when first needed: importing the handler (the cold start's init phase) stays
light, and so do the CLI, the reliability suite and the tests that import the package.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def client(service: str) -> Any:
    """The boto3 client of `service` (configured by the environment, as Lambda sets it)."""
    import boto3

    return boto3.client(service)


@functools.cache
def dynamodb_types() -> tuple[Any, Any]:
    """boto3's DynamoDB `TypeSerializer` and `TypeDeserializer`: see lambda_pkg/wire.py."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def client_error() -> type[Exception]:
    """botocore's `ClientError`, for `except clients.client_error() as exc:`.

    An except clause's expression is evaluated only when an exception reaches it, and the
    ClientError a clause catches comes from a client call, which has already imported
    botocore: a module-level import would load botocore (~10 ms) at every cold start before
    any client exists.
    """
    from botocore.exceptions import ClientError

    return ClientError
