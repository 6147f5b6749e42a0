"""An hourly window whose only object lost every valid row in a re-validation still runs the sessionizer, through
the real state machine and handlers, so the object's old rows leave the state and the warehouse."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.config import get_settings
from clickstream.core.times import iso
from clickstream_local import bridge
from tests.integration.staging import stage_validated
from tests.integration.test_state_machine import T0, sfn  # noqa: F401  (the stack fixture)
from tests.unit.sessionize.data import Stream

MIN = timedelta(minutes=1)


def _events(path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT event_id, anonymous_id FROM events ORDER BY event_id").fetchall()
    finally:
        con.close()


def test_an_hourly_window_of_only_an_emptied_object_removes_its_rows(sfn, tmp_path, monkeypatch):  # noqa: F811
    # Given two objects loaded by an hourly run
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{warehouse}")
    get_settings.cache_clear()
    lake, state = S3ObjectStore(sfn["settings"].lake_bucket), sfn["state"]
    one, two = Stream("raw/obj-1"), Stream("raw/obj-2")
    one.add("visitor-y", T0, event_id="y-1")
    two.add("visitor-z", T0, event_id="z-1")
    for stream, name in ((one, "obj-1"), (two, "obj-2")):
        stage_validated(
            lake, state, stream, f"validated/dt=2026-03-02/hr=09/{name}.parquet", T0 + 10 * MIN, tmp_path
        )
    arn = bridge.create_pipeline_state_machine(sfn["stack"])
    first = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    assert first["status"] == "SUCCEEDED", first
    assert _events(warehouse) == [("y-1", "visitor-y"), ("z-1", "visitor-z")]
    # When raw/obj-1 is validated again and nothing in it is valid any more (its validated file is gone), and the
    # next hourly window holds only that object
    lake.delete("validated/dt=2026-03-02/hr=09/obj-1.parquet")
    state.put_ledger({"source_key": "raw/obj-1", "validated_at": T0 + 70 * MIN, "had_valid": True})
    second = bridge.run_pipeline(arn, "hourly-2", {"as_of": iso(T0 + timedelta(hours=2))})
    # Then the run sessionizes, and visitor y's rows are gone from the warehouse
    assert second["status"] == "SUCCEEDED", second
    assert _events(warehouse) == [("z-1", "visitor-z")]
