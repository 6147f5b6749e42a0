"""Tombstones in the state table: people under erasure, stored as the sha256 of their id only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clickstream.adapters.aws import client
from clickstream.adapters.state import DynamoStateStore
from clickstream.core.ids import erased_id, id_hash


def test_put_tombstone_stores_only_the_hash_and_is_idempotent(aws):
    # Given a state table and a person's anonymous id
    store = DynamoStateStore(aws.settings.state_table)
    digest = id_hash("anon-42")
    first = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    # When the tombstone is written twice (a repeated erasure request)
    store.put_tombstone("anonymous_id", digest, created_at=first)
    store.put_tombstone("anonymous_id", digest, created_at=datetime(2026, 3, 9, tzinfo=UTC))
    # Then one item holds the hash, its kind and the first creation time, and never the id itself
    items = client("dynamodb").scan(TableName=aws.settings.state_table)["Items"]
    assert len(items) == 1
    [item] = items
    assert item["pk"]["S"] == f"tombstone#{digest}" and item["sk"]["S"] == "tombstone"
    assert item["kind"]["S"] == "anonymous_id"
    assert item["created_at"]["S"] == "2026-03-02T10:00:00.000000Z"
    assert "anon-42" not in repr(items)
    assert store.tombstones() == frozenset({digest})


def test_tombstones_ignores_ledger_rows_and_erased_id_checks_any_id(aws):
    # Given a ledger row and tombstones for an anonymous id and a user id
    store = DynamoStateStore(aws.settings.state_table)
    store.put_ledger(
        {"source_key": "raw/a", "validated_at": datetime(2026, 3, 2, tzinfo=UTC), "events_in": 1}
    )
    store.put_tombstone("anonymous_id", id_hash("anon-1"))
    store.put_tombstone("user_id", id_hash("user-9"))
    # When the tombstones are loaded
    stones = store.tombstones()
    # Then only they come back, and a visitor is erased when either of their ids matches, named with its hash
    assert stones == {id_hash("anon-1"), id_hash("user-9")}
    assert erased_id(stones, {"anonymous_id": "anon-1", "user_id": None}) == (
        "anonymous_id",
        id_hash("anon-1"),
    )
    assert erased_id(stones, {"anonymous_id": "anon-2", "user_id": "user-9"}) == (
        "user_id",
        id_hash("user-9"),
    )
    assert erased_id(stones, {"anonymous_id": "anon-2", "user_id": "user-8"}) is None
    assert erased_id(frozenset(), {"anonymous_id": "anon-1"}) is None
    # And only non-empty text can match (an id of another type is never erased by accident)
    assert erased_id({id_hash("")}, {"anonymous_id": "", "user_id": 7}) is None


def test_put_tombstone_refuses_a_raw_id_or_an_unknown_kind(aws):
    store = DynamoStateStore(aws.settings.state_table)
    with pytest.raises(ValueError, match="sha256"):
        store.put_tombstone("user_id", "user-9")  # the id itself must never be stored
    with pytest.raises(ValueError, match="kind"):
        store.put_tombstone("email", id_hash("x"))
