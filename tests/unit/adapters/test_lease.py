"""Lease semantics of the state store: the DynamoDB adapter (in moto) and the in-memory one the unit tests use
must agree, since Plan, Commit and the failure path rely on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clickstream.adapters.state import DynamoStateStore
from clickstream.core.times import iso
from tests.fakes.state import MemoryStateStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request):
    if request.param == "memory":
        return MemoryStateStore()
    aws = request.getfixturevalue("aws")
    return DynamoStateStore(aws.settings.state_table)


def test_a_free_lease_is_taken_and_names_its_owner(store):
    # Given nobody holds the lease
    # When an execution acquires it for an hour
    taken = store.acquire_lease("pipeline", "exec-a", NOW + HOUR, now=NOW)
    # Then it holds it, until then
    assert taken is True
    assert store.get_lease("pipeline") == {"owner": "exec-a", "until": iso(NOW + HOUR)}


def test_the_same_owner_re_acquires_and_moves_its_expiry(store):
    # Given exec-a holds the lease
    store.acquire_lease("pipeline", "exec-a", NOW + HOUR, now=NOW)
    # When exec-a acquires it again (a retried Plan)
    again = store.acquire_lease("pipeline", "exec-a", NOW + 2 * HOUR, now=NOW + timedelta(minutes=5))
    # Then it still holds it, with the new expiry
    assert again is True
    assert store.get_lease("pipeline") == {"owner": "exec-a", "until": iso(NOW + 2 * HOUR)}


def test_another_owner_is_refused_while_the_lease_is_live(store):
    # Given exec-a holds the lease for an hour
    store.acquire_lease("pipeline", "exec-a", NOW + HOUR, now=NOW)
    # When exec-b asks for it during that hour, up to the last microsecond
    refused = [
        store.acquire_lease("pipeline", "exec-b", NOW + 3 * HOUR, now=at)
        for at in (NOW, NOW + HOUR - timedelta(microseconds=1))
    ]
    # Then it is refused and the lease is unchanged
    assert refused == [False, False]
    assert store.get_lease("pipeline") == {"owner": "exec-a", "until": iso(NOW + HOUR)}


def test_an_expired_lease_is_taken_over(store):
    # Given exec-a's lease expired (it never released it)
    store.acquire_lease("pipeline", "exec-a", NOW + HOUR, now=NOW)
    # When exec-b asks for it at the expiry
    taken = store.acquire_lease("pipeline", "exec-b", NOW + 3 * HOUR, now=NOW + HOUR)
    # Then exec-b holds it, and exec-a can neither take it back nor release it
    assert taken is True
    assert store.get_lease("pipeline") == {"owner": "exec-b", "until": iso(NOW + 3 * HOUR)}
    assert store.acquire_lease("pipeline", "exec-a", NOW + 4 * HOUR, now=NOW + HOUR) is False
    assert store.release_lease("pipeline", "exec-a") is False
    assert store.get_lease("pipeline")["owner"] == "exec-b"


def test_only_the_owner_releases_and_releasing_twice_changes_nothing(store):
    # Given exec-a holds the lease
    store.acquire_lease("pipeline", "exec-a", NOW + HOUR, now=NOW)
    # When exec-b tries to release it, Then nothing changes
    assert store.release_lease("pipeline", "exec-b") is False
    assert store.get_lease("pipeline")["owner"] == "exec-a"
    # When exec-a releases it, Then it is free, a second release is a no-op, and exec-b can take it at once
    assert store.release_lease("pipeline", "exec-a") is True
    assert store.get_lease("pipeline") is None
    assert store.release_lease("pipeline", "exec-a") is False
    assert store.acquire_lease("pipeline", "exec-b", NOW + HOUR, now=NOW) is True


def test_leases_of_different_names_are_independent(store):
    # Given exec-a holds the lease "pipeline"
    store.acquire_lease("pipeline", "exec-a", NOW + HOUR, now=NOW)
    # When exec-b asks for another name, Then it gets it
    assert store.acquire_lease("other", "exec-b", NOW + HOUR, now=NOW) is True
    assert store.get_lease("pipeline")["owner"] == "exec-a"
