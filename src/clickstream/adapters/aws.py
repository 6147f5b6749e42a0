"""boto3 clients, created lazily and cached per process (never at import time).

The first client also has the AWS SDK traced (``observability.trace_aws_calls``): the X-Ray patch of botocore then
coincides with botocore's own import, which the ingest cold start would otherwise pay at import time.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from clickstream.core.observability import trace_aws_calls


@cache
def client(service: str) -> Any:
    trace_aws_calls()
    import boto3  # imported here: the ingest cold start only pays for what it uses

    return boto3.client(service)


def reset_clients() -> None:
    """Forget cached clients (tests and the local runner call this after starting moto)."""
    client.cache_clear()
