"""Re-drive as a domain function: object names, rebuilt records, and the accounting property."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.adapters.factory import Adapters
from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.errors import InputError
from clickstream.operations.quarantine import (
    check_reasons,
    ledger_totals,
    read_entries,
    redrive_key,
    redrive_origin,
    summarize,
)
from clickstream.operations.redrive import plan_redrive, redrive_body, run_redrive
from clickstream.validate import step as service
from clickstream.validate.reader import decode_object, read_records
from tests.fakes.state import MemoryStateStore
from tests.fakes.storage import MemoryObjectStore
from tests.unit.validate.helpers import T0, event, raw_object, record

Q_KEY = "quarantine/dt=2026-03-02/hr=10/obj-0123456789abcdef.jsonl"


def test_redrive_key_round_trips_and_refuses_erased():
    # Given a quarantine object key
    # When named for each re-drivable reason
    keys = {r: redrive_key(Q_KEY, r) for r in ("schema_violation", "too_late", "unparseable_record")}
    # Then each sits in the raw zone under the same arrival partition and names its origin back
    assert (
        keys["schema_violation"]
        == "raw/redrive/dt=2026-03-02/hr=10/obj-0123456789abcdef.schema_violation.jsonl"
    )
    assert all(redrive_origin(k) == (Q_KEY, r) for r, k in keys.items())
    assert redrive_origin("raw/dt=2026-03-02/hr=10/obj") is None
    with pytest.raises(InputError):
        redrive_key(Q_KEY, "erased")
    with pytest.raises(InputError, match="never re-driven"):
        check_reasons(["schema_violation", "erased"])
    assert check_reasons(["too_late", "schema_violation"]) == ("schema_violation", "too_late")


def test_redrive_body_rebuilds_one_record_per_original_record():
    # Given quarantine entries of two records and an unreadable line, one entry of another reason
    env1 = {"received_at": "2026-03-02T10:00:02Z", "anonymous_id": "a1", "ip": "198.51.100.0"}
    env2 = {"received_at": "2026-03-02T10:00:09Z", "anonymous_id": "a2"}
    entries = [
        {"reason": "schema_violation", "source_object": "raw/o", "source_line": 1, "position": 0, "event": {"n": 1}, "envelope": env1},
        {"reason": "too_late", "source_object": "raw/o", "source_line": 1, "position": 1, "event": {"n": 2}, "envelope": env1},
        {"reason": "schema_violation", "source_object": "raw/o", "source_line": 1, "position": 2, "event": {"n": 3}, "envelope": env1},
        {"reason": "schema_violation", "source_object": "raw/o", "source_line": 2, "position": 0, "event": "x", "envelope": env2},
        {"reason": "unparseable_record", "source_object": "raw/o", "source_line": 3, "position": None, "event": "}{oops", "envelope": None},
    ]  # fmt: skip
    # When the schema violations' body is built
    body = redrive_body(entries, "schema_violation")
    # Then there is one record per original record, envelope kept, events in order, and it reads back as raw
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines == [{**env1, "events": [{"n": 1}, {"n": 3}]}, {**env2, "events": ["x"]}]
    assert [r.ordinal for r in read_records(decode_object(body))] == [1, 2]
    assert redrive_body(entries, "unparseable_record") == b"}{oops\n"
    assert redrive_body(entries, "duplicate_conflict") == b""


# -- the property -------------------------------------------------------------------------------------------------
KINDS = ("valid", "late", "bad", "big", "retry", "conflict")


@st.composite
def _objects(draw):
    """1 to 3 raw objects of 1 to 4 records each, every event one of KINDS (retries and conflicts copy an earlier
    event of the same object)."""
    objects = []
    for o in range(draw(st.integers(1, 3))):
        records, seen = [], []
        for r in range(draw(st.integers(1, 4))):
            events = []
            for _ in range(draw(st.integers(1, 4))):
                kind = draw(st.sampled_from(KINDS))
                if kind in ("retry", "conflict") and seen:
                    base = draw(st.sampled_from(seen))
                    events.append(
                        dict(base)
                        if kind == "retry"
                        else {**base, "properties": {"v": draw(st.integers(1, 9))}}
                    )
                    continue
                hours = draw(st.integers(2, 90)) if kind == "late" else 0
                e = event(at=T0 - timedelta(hours=hours))
                if kind == "bad":
                    e["event_id"] = "not-a-uuid"
                if kind == "big":
                    e["properties"] = {"note": "y" * 40_000}
                seen.append(e)
                events.append(e)
            records.append(
                record(events, received_at=T0 + timedelta(seconds=2 + r), anonymous_id=f"anon-{o}")
            )
        objects.append((f"raw/dt=2026-03-02/hr=1{o}/object-{o}", raw_object(*records)))
    return objects


# fmt: on


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    objects=_objects(),
    reasons=st.sets(st.sampled_from(("schema_violation", "size_violation", "too_late")), min_size=1),
)
def test_any_mix_redriven_balances_and_is_a_fixed_point(objects, reasons):
    # Given objects validated under a 1 h lookback
    raw, lake, state = MemoryObjectStore("raw"), MemoryObjectStore("lake"), MemoryStateStore()
    strict, relaxed = Settings(lookback_hours=1), Settings(lookback_hours=96)
    service._tombstone_cache.clear()
    clock.set_clock(clock.SimulatedClock(T0 + timedelta(days=2)))  # outputs are stamped: a fixed time
    try:
        _check_redrive(objects, reasons, raw, lake, state, strict, relaxed)
    finally:
        clock.set_clock(None)


def _check_redrive(objects, reasons, raw, lake, state, strict, relaxed) -> None:
    sent = 0
    for key, data in objects:
        raw.put_bytes(key, data)
        sent += service.validate_object(
            key, settings=strict, raw_store=raw, lake_store=lake, state=state
        ).events_in
    chosen_entries = sum(
        1 for k in lake.list_keys("quarantine/") for e in read_entries(lake, k) if e["reason"] in reasons
    )
    # When the chosen reasons are re-driven under a 96 h lookback, twice
    adapters = Adapters(relaxed, raw=raw, lake=lake, state=state)
    items = run_redrive(plan_redrive(adapters, reasons=reasons), adapters)
    once = (dict(raw.objects), dict(lake.objects), sorted(state.all_ledger(), key=lambda r: r["source_key"]))
    run_redrive(plan_redrive(adapters, reasons=reasons), adapters)
    twice = (dict(raw.objects), dict(lake.objects), sorted(state.all_ledger(), key=lambda r: r["source_key"]))
    # Then every quarantined event of those reasons was re-driven exactly once, the ledger still balances, and
    # the second run changed nothing
    totals = ledger_totals(state.all_ledger())
    assert totals.redriven == chosen_entries == sum(i.entries for i in items)
    assert totals.events_received == sent
    assert totals.balances
    assert twice == once
    # And no re-driven event is too late any more (a late conflicting copy is still a duplicate_conflict)
    again = [
        e
        for k in lake.list_keys("quarantine/")
        for e in read_entries(lake, k)
        if e["source_object"].startswith("raw/redrive/")
    ]
    assert "too_late" not in {e["reason"] for e in again}
    summary = summarize(lake, state=state)
    assert sum(s.still_quarantined for s in summary.redrive.values()) == totals.still_quarantined
