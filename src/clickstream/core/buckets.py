"""Stable user-hash buckets: the same visitor lands in the same bucket in Python and in DuckDB SQL."""

from __future__ import annotations

import hashlib


def bucket_of(anonymous_id: str, n_buckets: int) -> int:
    """Bucket of a visitor: the first 8 hex digits of md5(anonymous_id), modulo ``n_buckets``."""
    digest = hashlib.md5(anonymous_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) % n_buckets


def bucket_sql(column: str, n_buckets: int) -> str:
    """The same function as :func:`bucket_of`, as a DuckDB SQL expression over ``column``."""
    return f"(('0x' || left(md5({column}), 8))::UBIGINT % {int(n_buckets)})"
