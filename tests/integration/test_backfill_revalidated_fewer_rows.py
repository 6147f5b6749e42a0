"""A back-fill after a re-validation that yields fewer rows, through the real state machine and handlers: the
warehouse ends as one full recompute over the objects' current rows, the lost rows and visitors gone."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.config import get_settings
from clickstream.core.times import iso
from clickstream.sessionize.files import sessionize_files
from clickstream_local import bridge
from tests.integration.test_state_machine import T0, sfn  # noqa: F401  (the stack fixture)
from tests.unit.sessionize.data import Stream, read_parquet, write_parquet

MIN = timedelta(minutes=1)


def _deliver(sfn_ctx, tmp_path, source_key: str, rows: list[dict], validated_at) -> None:
    """The validate step's outputs for one raw object: its Parquet under the arrival day and its ledger row."""
    lake = S3ObjectStore(sfn_ctx["settings"].lake_bucket)
    key = f"validated/dt=2026-03-02/hr=09/{source_key.rsplit('/', 1)[1]}.parquet"
    lake.upload(
        write_parquet(tmp_path / f"{source_key.replace('/', '_')}-{validated_at:%H%M}.parquet", rows), key
    )
    sfn_ctx["state"].put_ledger(
        {"source_key": source_key, "validated_at": validated_at, "validated_key": key}
    )


def _warehouse(path) -> tuple[list[tuple], list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        events = con.execute(
            "SELECT event_id, anonymous_id, session_id FROM events ORDER BY event_id"
        ).fetchall()
        sessions = con.execute(
            "SELECT session_id, anonymous_id, n_events FROM sessions ORDER BY session_id"
        ).fetchall()
    finally:
        con.close()
    return events, sessions


def test_a_backfill_after_a_revalidation_with_fewer_rows_equals_a_full_recompute(sfn, tmp_path, monkeypatch):  # noqa: F811
    # Given two raw objects of one arrival day, loaded by an hourly run: raw/obj-1 holds all of visitor Y and the
    # event that bridges visitor X's two visits into one session
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{warehouse}")
    get_settings.cache_clear()
    one, two = Stream("raw/obj-1"), Stream("raw/obj-2")
    x_first = one.add("visitor-x", T0, event_id="x-1")
    one.add("visitor-x", T0 + 20 * MIN, event_id="x-bridge")
    one.add("visitor-y", T0, event_id="y-1")
    one.add("visitor-y", T0 + 2 * MIN, event_id="y-2")
    two.add("visitor-x", T0 + 40 * MIN, event_id="x-3")
    two.add("visitor-z", T0, event_id="z-1")
    _deliver(sfn, tmp_path, "raw/obj-1", one.rows, T0 + 10 * MIN)
    _deliver(sfn, tmp_path, "raw/obj-2", two.rows, T0 + 20 * MIN)
    arn = bridge.create_pipeline_state_machine(sfn["stack"])
    hourly = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    assert hourly["status"] == "SUCCEEDED", hourly
    events, sessions = _warehouse(warehouse)
    assert len(events) == 6 and len(sessions) == 3
    # When raw/obj-1 is validated again under a stricter rule that keeps only x's first event, and the day is
    # back-filled through the Distributed Map
    _deliver(sfn, tmp_path, "raw/obj-1", [x_first], T0 + 90 * MIN)
    backfill = bridge.run_pipeline(
        arn, "backfill-1", {"backfill": {"from": "2026-03-02", "to": "2026-03-02"}}
    )
    assert backfill["status"] == "SUCCEEDED", backfill
    # Then the warehouse holds exactly one full recompute over the current rows: y is gone, x is split in two
    current = [x_first, *two.rows]
    sessionize_files([write_parquet(tmp_path / "current.parquet", current)], tmp_path / "full")
    full_events = read_parquet(tmp_path / "full" / "events.parquet")
    full_sessions = read_parquet(tmp_path / "full" / "sessions.parquet")
    assert _warehouse(warehouse) == (
        sorted((e["event_id"], e["anonymous_id"], e["session_id"]) for e in full_events),
        sorted((s["session_id"], s["anonymous_id"], s["n_events"]) for s in full_sessions),
    )
    assert {row[1] for row in _warehouse(warehouse)[0]} == {"visitor-x", "visitor-z"}
