"""What the function takes from boto3, made once per container (on first use), not per event.

boto3 comes with the Lambda runtime. It is imported here and nowhere else in lambda_pkg,
and only when first needed: importing the package stays light, so the CLI, the
reliability suite and the tests can import it without paying for boto3's start-up.
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
