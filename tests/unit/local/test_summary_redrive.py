"""After a quarantine re-drive, the demo's counters count each received event once and still reconcile.

The redrive object has its own ledger row; its events were already received (and quarantined) by their source
object, so received = validated + (quarantined - redriven) + duplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clickstream.adapters.factory import Adapters
from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core import clock
from clickstream.core.times import iso
from clickstream.operations.quarantine import summarize
from clickstream.operations.redrive import plan_redrive, run_redrive
from clickstream.pipeline.commit import CommitInput, run_commit
from clickstream.pipeline.load import LoadInput, run_load
from clickstream.pipeline.plan import PlanInput, run_plan
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.state import bucket_state_totals
from clickstream.validate import step as service
from clickstream.validate.step import validate_object
from clickstream_local.summary import LedgerTotals, build_summary, failed_checks, read_warehouse
from tests.unit.validate.helpers import T0, event, raw_object, record

KEY_A = "raw/dt=2026-03-02/hr=10/clickstream-events-1-2026-03-02-10-05-00-aaa"
KEY_B = "raw/dt=2026-03-02/hr=11/clickstream-events-1-2026-03-02-11-05-00-bbb"
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim_clock():
    clock.set_clock(clock.SimulatedClock(NOW))
    service._tombstone_cache.clear()
    yield
    clock.set_clock(None)
    service._tombstone_cache.clear()


def _late(hours: float) -> dict:
    return event("page_view", at=T0 - timedelta(hours=hours))


def _run_pipeline(settings, lake, state, name: str) -> None:
    """Plan, Sessionize every bucket, Load and Commit, as the state machine does for one incremental run."""
    clock.set_clock(clock.SimulatedClock(clock.now() + timedelta(minutes=10)))
    plan = run_plan(
        PlanInput(execution_id=name, execution_name=name, input={"as_of": iso(clock.now())}),
        settings,
        Adapters(settings, state=state, lake=lake),
    )
    results = [sessionize_bucket(SessionizeInput(run_id=plan.run_id, bucket=b), lake) for b in plan.buckets]
    run_load(
        LoadInput(execution_id=name, plan=plan, buckets=results), settings, Adapters(settings, lake=lake)
    )
    run_commit(CommitInput(execution_id=name, plan=plan), settings, Adapters(settings, state=state))


def test_a_redriven_event_is_counted_once_and_the_demo_summary_reconciles(aws, sim_clock, tmp_path: Path):
    # Given two raw objects validated under a 1 h lookback: valid events, three too-late events (one retried in
    # the same object), an invalid event, and a later copy of an event already validated in the first object
    settings = aws.settings.replace(warehouse_url=f"duckdb://{tmp_path}/warehouse.duckdb")
    raw, lake = S3ObjectStore(settings.raw_bucket), S3ObjectStore(settings.lake_bucket)
    state = DynamoStateStore(settings.state_table)
    strict = settings.replace(lookback_hours=1)
    late1, late2, kept = _late(5), _late(6), event()
    objects = {
        KEY_A: raw_object(
            record([kept, event(), late1, late2, event(event_id="not-a-uuid")]),
            record([late1], received_at=T0 + timedelta(seconds=9)),
        ),
        KEY_B: raw_object(
            record([event(), kept], received_at=T0 + timedelta(hours=1), sent_at=T0 + timedelta(hours=1))
        ),
    }
    received = 0
    for key, body in objects.items():
        raw.put_bytes(key, body)
        received += validate_object(
            key, settings=strict, raw_store=raw, lake_store=lake, state=state
        ).events_in
    assert received == 8
    _run_pipeline(settings, lake, state, "run-1")
    # When too_late is re-driven under the stack's 72 h lookback, an hour later, and the next run takes the redrive
    # object
    clock.set_clock(clock.SimulatedClock(clock.now() + timedelta(hours=1)))
    adapters = Adapters(settings, raw=raw, lake=lake, state=state)
    items = run_redrive(plan_redrive(adapters, reasons=["too_late"]), adapters)
    assert [(i.outcome["events_in"], i.outcome["validated"], i.outcome["duplicates"]) for i in items] == [
        (3, 2, 1)
    ]
    _run_pipeline(settings, lake, state, "run-2")
    # And the demo's summary reads the ledger, the bucket state and the warehouse
    ledger = LedgerTotals.from_rows(state.all_ledger())
    totals = bucket_state_totals(lake, settings.n_buckets)
    facts = read_warehouse(settings.warehouse_url)
    summary = build_summary(
        generated_events=received,
        accepted_requests=3,
        accepted_events=received,
        rejected_by_status={},
        ledger=ledger,
        cross_object_duplicates=totals.duplicates,
        duplicate_conflicts=totals.conflicts,
        warehouse=facts,
        executions={"started": 2, "succeeded": 2},
    )
    # Then each received event is counted once: 8 received = 5 in the warehouse + 1 still quarantined (the invalid
    # one) + 2 duplicates (late1's retry, found in the redrive object, and kept's copy in the second object)
    assert failed_checks(summary) == []
    assert summary["reconciles"] is True
    assert (summary["sent_events"], summary["raw_objects"], summary["redrive_objects"]) == (8, 2, 1)
    assert (summary["validated_events"], summary["redriven_events"]) == (6, 3)
    assert summary["quarantine_by_reason"] == {"schema_violation": 1}
    assert (summary["warehouse_events"], summary["quarantined_events"], summary["duplicate_events"]) == (
        5,
        1,
        2,
    )
    assert summary["duplicates"] == {"in_object": 1, "cross_object": 1}
    # And the runs' costs add up: every validated row arrived in exactly one run's window (4, then the redrive
    # object's 2), the second run read the state the first wrote, and each run loaded at least what it brought
    costs = summary["run_costs"]
    assert costs["events_arrived"] == summary["validated_events"] == 6
    assert costs["state_rows_read"] > 0 and costs["state_bytes_read"] > 0 and costs["state_rows_written"] > 0
    assert costs["events_loaded"] >= summary["warehouse_events"]
    assert costs["loaded_per_arrived"] == round(costs["events_loaded"] / 6, 3)
    # And `clickstream quarantine summary` tells the same story from the same ledger
    ledger_view = summarize(lake, state=state).ledger
    assert (ledger_view.events_received, ledger_view.still_quarantined, ledger_view.redriven) == (8, 1, 3)
    assert ledger_view.balances
