"""People under erasure: their events are quarantined as ``erased`` and never stored, only the id's hash."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core import clock
from clickstream.core.ids import id_hash
from clickstream.validate import step as service
from clickstream.validate.step import load_tombstones, validate_object
from tests.unit.validate.helpers import event, raw_object, record

KEY = "raw/dt=2026-03-02/hr=10/clickstream-events-1-2026-03-02-10-05-00-erase"


@pytest.fixture
def sim_clock():
    clock.set_clock(clock.SimulatedClock(datetime(2026, 3, 2, 10, 7, tzinfo=UTC)))
    service._tombstone_cache.clear()
    yield
    clock.set_clock(None)
    service._tombstone_cache.clear()


def test_erased_visitor_is_quarantined_without_the_event(aws, sim_clock):
    # Given a tombstone for one visitor and an object with their two events beside another visitor's event
    s = aws.settings
    raw, lake, state = (
        S3ObjectStore(s.raw_bucket),
        S3ObjectStore(s.lake_bucket),
        DynamoStateStore(s.state_table),
    )
    state.put_tombstone("anonymous_id", id_hash("anon-gone"))
    gone = [event(), event("add_to_cart", properties={"email": "gone@example.com"})]
    kept = event()
    raw.put_bytes(
        KEY, raw_object(record(gone, anonymous_id="anon-gone"), record([kept], anonymous_id="anon-ok"))
    )
    # When the object is validated
    row = validate_object(KEY, settings=s, raw_store=raw, lake_store=lake, state=state)
    # Then the erased person's events are counted as quarantined 'erased', the other one validated
    assert (row.events_in, row.validated, row.quarantined) == (3, 1, {"erased": 2})
    # And the quarantine file holds only the hash, the reason and the place: no event, no envelope, no id
    body = lake.get_bytes(row.quarantine_key).decode()
    entries = [json.loads(line) for line in body.splitlines()]
    assert [(e["reason"], e["source_line"], e["position"]) for e in entries] == [
        ("erased", 1, 0),
        ("erased", 1, 1),
    ]
    assert all(e["event"] is None and e["envelope"] is None and e["event_id"] is None for e in entries)
    assert {e["id_hash"] for e in entries} == {id_hash("anon-gone")}
    for secret in ("anon-gone", "gone@example.com", gone[0]["event_id"], "198.51.100"):
        assert secret not in body


def test_a_signed_in_user_under_erasure_is_matched_by_user_id(aws, sim_clock):
    s = aws.settings
    raw, lake, state = (
        S3ObjectStore(s.raw_bucket),
        S3ObjectStore(s.lake_bucket),
        DynamoStateStore(s.state_table),
    )
    state.put_tombstone("user_id", id_hash("cognito-sub-9"))
    raw.put_bytes(KEY, raw_object(record([event()], anonymous_id="new-device", user_id="cognito-sub-9")))
    row = validate_object(KEY, settings=s, raw_store=raw, lake_store=lake, state=state)
    assert (row.validated, row.quarantined) == (0, {"erased": 1})


def test_tombstones_are_read_once_per_ttl():
    # Given a state store that counts its reads
    class Counting:
        table_name = "counting"
        reads = 0

        def tombstones(self):
            self.reads += 1
            return frozenset({"h"})

    store = Counting()
    service._tombstone_cache.clear()
    # When tombstones are asked for twice within the TTL, then with a zero TTL
    assert load_tombstones(store) == {"h"}
    load_tombstones(store)
    assert store.reads == 1
    load_tombstones(store, ttl_seconds=0)
    # Then the table was read once for the first two, again when the TTL had passed
    assert store.reads == 2
    service._tombstone_cache.clear()
