"""A back-fill's manifest names every object that arrived on its days, also one left with no valid event."""

from __future__ import annotations

from datetime import timedelta

from clickstream.core.times import iso
from clickstream.pipeline.manifest import BackfillRange, ledger_arrival_day
from clickstream.pipeline.plan import build_backfill_manifest
from tests.unit.pipeline.conftest import T0


def test_an_object_without_valid_events_is_in_the_backfill_of_its_arrival_day(aws, state):
    # Given a validated object, one whose re-validation quarantined every event (no validated key, its arrival hour
    # recorded), one with neither but a dt= raw key, and one that arrived on another day
    state.put_ledger(
        {
            "source_key": "raw/a",
            "validated_at": T0,
            "validated_key": "validated/dt=2026-03-02/hr=09/a.parquet",
        }
    )
    state.put_ledger({"source_key": "raw/emptied", "validated_at": T0, "arrival_hour": iso(T0)})
    state.put_ledger({"source_key": "raw/dt=2026-03-02/hr=03/c", "validated_at": T0})
    state.put_ledger(
        {"source_key": "raw/later", "validated_at": T0, "arrival_hour": iso(T0 + timedelta(days=2))}
    )
    # When the back-fill of 2026-03-02 is planned
    manifest = build_backfill_manifest(
        "bf-1",
        state,
        BackfillRange.model_validate({"from": "2026-03-02", "to": "2026-03-02"}),
        None,
        n_buckets=2,
    )
    # Then the emptied object is listed (without a validated key), so the sessionizer removes its old rows
    assert {o.source_key: o.validated_key for o in manifest.objects} == {
        "raw/a": "validated/dt=2026-03-02/hr=09/a.parquet",
        "raw/emptied": None,
        "raw/dt=2026-03-02/hr=03/c": None,
    }


def test_the_validated_partition_decides_before_the_arrival_hour_and_the_raw_key():
    # Given rows whose fields disagree
    row = {
        "source_key": "raw/dt=2026-03-05/hr=00/x",
        "validated_key": "validated/dt=2026-03-04/hr=23/x.parquet",
        "arrival_hour": "2026-03-03T23:00:00Z",
    }
    # Then the validated object's partition wins, then the arrival hour, then the raw key
    assert str(ledger_arrival_day(row)) == "2026-03-04"
    assert str(ledger_arrival_day({**row, "validated_key": None})) == "2026-03-03"
    assert str(ledger_arrival_day({**row, "validated_key": None, "arrival_hour": None})) == "2026-03-05"
    assert ledger_arrival_day({"source_key": "raw/x"}) is None
