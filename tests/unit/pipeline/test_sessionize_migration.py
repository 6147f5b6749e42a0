"""The move from the layout before frozen history: a bucket still in it is migrated by the first run that touches it.

The old layout (``slice=SS/all.parquet`` with every row, ``sessions/…/slice=SS/sessions.parquet``, the bucket's
``objects.parquet``, no ``state.json``) is built here from a real run's state, then the next runs go through the
current step: every visitor of a touched old slice is recomputed whole and replaced whole in the warehouse
(``replace_from`` null), the slice is written in the new layout, and the result equals one full recompute.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from clickstream.core.keys import bucket_prefix, sessions_bucket_prefix
from clickstream.core.schema import SESSION_COLUMNS
from clickstream.core.times import iso
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.rule import SessionRules
from clickstream.sessionize.state import (
    LEGACY_ALL,
    LEGACY_INDEX,
    LEGACY_SESSIONS,
    STATE_COLUMNS,
    pointer_key,
    published_prefix,
    read_state,
    slice_prefix,
)
from tests.fakes.storage import MemoryObjectStore
from tests.unit.pipeline.test_sessionize import fetch, put_run
from tests.unit.pipeline.test_sessionize_history import check_state
from tests.unit.sessionize.data import T0, Stream, write_parquet

RULES = SessionRules(timeout_minutes=30, max_session_hours=2)
LOOKBACK_H = 1


def _to_legacy_layout(lake: MemoryObjectStore, work: Path) -> None:
    """Rewrite bucket 0's state as the layout before frozen history, with the same rows, sessions and index."""
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    assert current is not None and current.index is not None
    index = fetch(lake, work, current.index)
    for slice_no, files in current.slices.items():
        assert not files.frozen and files.hot and files.sessions  # young: everything still hot
        rows = fetch(lake, work, files.hot)
        sessions = fetch(lake, work, files.sessions)
        lake.upload(
            write_parquet(work / f"all-{slice_no}.parquet", rows, list(STATE_COLUMNS)),
            slice_prefix(0, slice_no) + LEGACY_ALL,
        )
        lake.upload(
            write_parquet(work / f"sessions-{slice_no}.parquet", sessions, list(SESSION_COLUMNS)),
            published_prefix(0, slice_no) + LEGACY_SESSIONS,
        )
    lake.upload(
        write_parquet(work / "objects.parquet", index, [("source_object", "VARCHAR"), ("slices", "BIGINT")]),
        bucket_prefix(0) + LEGACY_INDEX,
    )
    legacy = {slice_prefix(0, s) + LEGACY_ALL for s in current.slices} | {bucket_prefix(0) + LEGACY_INDEX}
    published = {published_prefix(0, s) + LEGACY_SESSIONS for s in current.slices}
    for key in [*lake.list_keys(bucket_prefix(0)), *lake.list_keys(sessions_bucket_prefix(0))]:
        if key not in legacy | published:
            lake.delete(key)


def test_a_bucket_in_the_old_layout_is_migrated_by_the_next_run_and_stays_exact(tmp_path: Path) -> None:
    # Given two visitors' histories written in the layout before frozen history
    s = Stream()
    for k in range(4):
        s.add("v-old", T0 + k * timedelta(minutes=10))
        s.add("v-back", T0 + k * timedelta(minutes=20))
    first = list(s.rows)
    for row in first:
        row["source_object"] = "raw/run0"
    lake = MemoryObjectStore()
    put_run(lake, tmp_path / "in", "run-0", first, watermark_to=iso(T0 + timedelta(hours=3)))
    sessionize_bucket(SessionizeInput(run_id="run-0", bucket=0), lake, rules=RULES, lookback_hours=LOOKBACK_H)
    _to_legacy_layout(lake, tmp_path / "legacy")
    assert not lake.exists(pointer_key(0))
    # When, days later, a run brings one of them back (its watermark freezes the old sessions)
    later = T0 + timedelta(days=3)
    back = [s.add("v-back", later, source_object="raw/run1"), s.add("v-back", later + timedelta(minutes=5))]
    back[1]["source_object"] = "raw/run1"
    put_run(lake, tmp_path / "in", "run-1", back, watermark_to=iso(later + timedelta(hours=3)))
    result = sessionize_bucket(
        SessionizeInput(run_id="run-1", bucket=0), lake, rules=RULES, lookback_hours=LOOKBACK_H
    )
    # Then every visitor of the touched old slices was recomputed and is replaced whole in the warehouse
    visitors = fetch(lake, tmp_path / "out", result.visitors_key)
    assert visitors and all(v["replace_from"] is None for v in visitors)
    assert "v-back" in {v["anonymous_id"] for v in visitors}
    assert {e["event_id"] for e in fetch(lake, tmp_path / "out", result.events_key)} >= {
        r["event_id"] for r in s.rows if r["anonymous_id"] == "v-back"
    }
    # And the bucket is in the new layout: a pointer, the old sessions frozen, no old file of a touched slice left
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    assert current is not None and current.generation == "run-1"
    touched = {s_no for s_no, f in current.slices.items() if f.legacy is None}
    assert touched and all(current.slices[s_no].frozen for s_no in touched)
    # And the state equals one full recompute
    check_state(lake, tmp_path / "check", [*first, *back], RULES)
    # And a later run on the migrated bucket replaces only what can have changed
    again = [s.add("v-back", later + timedelta(hours=5), source_object="raw/run2")]
    put_run(lake, tmp_path / "in", "run-2", again, watermark_to=iso(later + timedelta(hours=6)))
    result = sessionize_bucket(
        SessionizeInput(run_id="run-2", bucket=0), lake, rules=RULES, lookback_hours=LOOKBACK_H
    )
    visitors = fetch(lake, tmp_path / "out2", result.visitors_key)
    assert [v["anonymous_id"] for v in visitors] == ["v-back"] and visitors[0]["replace_from"] is not None
    assert result.n_events == 3  # v-back's hot events (the three of the last three days), not the first day's
    check_state(lake, tmp_path / "check2", [*first, *back, *again], RULES)
