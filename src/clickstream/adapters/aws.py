"""boto3 clients, created lazily and cached per process (never at import time)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3  # imported here: the ingest cold start only pays for what it uses

    return boto3.client(service)


def reset_clients() -> None:
    """Forget cached clients (tests and the local runner call this after starting moto)."""
    client.cache_clear()
