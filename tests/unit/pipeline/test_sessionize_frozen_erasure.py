"""An erasure across frozen history, then hourly runs: the filters and indexes still name the erased ids (a
superset), and that changes nothing — a copy of a kept visitor's frozen event is still dropped, an event reusing an
erased event's id is new, and the state equals one full recompute of what is left."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from clickstream.core.times import iso
from clickstream.operations.erasure import Person, forget
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.state import bucket_prefix, read_state
from tests.fakes.storage import MemoryObjectStore
from tests.unit.pipeline.test_sessionize import put_run, state
from tests.unit.pipeline.test_sessionize_history import RULES, SECOND, check_state
from tests.unit.sessionize.data import T0, Stream


def test_after_an_erasure_in_frozen_history_hourly_runs_equal_a_full_recompute_of_what_is_left(
    tmp_path: Path,
) -> None:
    rules = RULES["plain"]
    # Given visitors v-gone and w-kept, each with a day-0 visit that run 1 freezes and a day-3 visit
    s = Stream()
    first = {v: s.add(v, T0, received_at=T0 + SECOND) for v in ("v-gone", "w-kept")}
    for v in ("v-gone", "w-kept"):
        s.add(v, T0 + timedelta(minutes=10), received_at=T0 + timedelta(minutes=10, seconds=1))
    early = list(s.rows)
    later = T0 + timedelta(days=3)
    late = [s.add(v, later, received_at=later + SECOND) for v in ("v-gone", "w-kept")]
    for i, rows in enumerate((early, late)):
        for row in rows:
            row["source_object"] = f"raw/run{i}"
    lake = MemoryObjectStore()
    runs = [(early, T0 + timedelta(hours=3)), (late, later + timedelta(hours=3))]
    for i, (rows, watermark_to) in enumerate(runs):
        put_run(lake, tmp_path / "in", f"run-{i}", rows, watermark_to=iso(watermark_to))
        sessionize_bucket(SessionizeInput(run_id=f"run-{i}", bucket=0), lake, rules=rules, lookback_hours=1)
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    assert current is not None and any(f.frozen and f.bloom for f in current.slices.values())
    # When v-gone is erased from the lake (its frozen rows rewritten; filters and indexes keep its ids)
    report = forget(Person("anonymous_id", "v-gone"), state=None, lake=lake, raw=None, warehouse=None)
    assert report.visitors == 1
    rows_left, _ = state(lake, tmp_path / "after-erasure")
    assert {r["anonymous_id"] for r in rows_left} == {"w-kept"}
    # And a later run brings a retry of w-kept's frozen first event and an event reusing v-gone's erased id
    retry = s.copy(
        first["w-kept"],
        received_at=later + timedelta(hours=4),
        event_ts=T0 + timedelta(hours=1),
        source_object="raw/r2",
    )
    reuse = s.copy(
        first["v-gone"],
        received_at=later + timedelta(hours=4),
        event_ts=later + timedelta(hours=3),
        source_object="raw/r2",
    )
    put_run(lake, tmp_path / "in", "run-2", [retry, reuse], watermark_to=iso(later + timedelta(hours=6)))
    result = sessionize_bucket(SessionizeInput(run_id="run-2", bucket=0), lake, rules=rules, lookback_hours=1)
    # Then both were candidates the frozen rows decided: the retry is a duplicate, the reuse a new event
    assert result.frozen_rows_read > 0
    kept = [r for r in early + late if r["anonymous_id"] == "w-kept"]
    check_state(lake, tmp_path / "final", [*kept, retry, reuse], rules)
    final, _ = state(lake, tmp_path / "final-rows")
    by_key = {(r["anonymous_id"], r["event_id"], r["source_object"]): r["drop_reason"] for r in final}
    assert by_key[("w-kept", retry["event_id"], "raw/r2")] == "duplicate"
    assert by_key[("v-gone", reuse["event_id"], "raw/r2")] is None
