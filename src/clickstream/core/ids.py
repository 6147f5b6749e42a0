"""People's identifiers under erasure: only their sha256 is ever stored (a tombstone), and one check finds them."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping


def id_hash(identifier: str) -> str:
    """sha256 hex of a person's identifier (anonymous_id or user_id): what a tombstone stores, never the id."""
    return hashlib.sha256(identifier.encode("utf-8")).hexdigest()


def erased_id(tombstones: Collection[str], ids: Mapping[str, object]) -> tuple[str, str] | None:
    """The first of ``ids`` (name → value, in order) whose value hashes to a tombstone, as ``(name, its hash)``;
    None when none does. Values that are not non-empty text never match."""
    if not tombstones:
        return None
    for name, value in ids.items():
        if isinstance(value, str) and value:
            digest = id_hash(value)
            if digest in tombstones:
                return name, digest
    return None
