"""Incremental = full across frozen history, as a property.

Streams spanning days are delivered run by run through the real Sessionize step with a short horizon (a lookback
of 1 to 12 hours), so slices freeze often and what arrives reaches back across the boundary in every way the step
must survive: histories longer than the horizon, chains crossing the boundary, events late by exactly the lookback
and by days (a re-driven object keeps its old received_at), copies of an event whose first copy is already frozen
(retries, clock jumps that move the copy's event_ts, conflicting payloads), a copy received before its frozen first
copy (it wins: the visitor thaws), and old objects delivered again with fewer rows. After the last run the state
(hot and frozen) must equal one full recompute of the objects' current rows: every kept event's session and every drop
against the independent reference, and every session field against the CLI's single run; the lake's published
sessions equal the state's. The test asserts the interesting paths were taken (freezing, thawing, a frozen copy
dropped without a thaw).
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import event, example, given
from hypothesis import strategies as st

from clickstream.core.times import iso
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.files import sessionize_files
from clickstream.sessionize.rule import SessionRules
from clickstream.sessionize.state import bucket_prefix, read_state
from tests.fakes.storage import MemoryObjectStore
from tests.unit.pipeline.test_sessionize import put_run, state
from tests.unit.pipeline.test_sessionize_incremental import reproducible
from tests.unit.sessionize import reference
from tests.unit.sessionize.data import T0, US, Stream, read_parquet, write_parquet

SECOND = timedelta(seconds=1)
MINUTE_US = 60 * 10**6
RULES = {
    "plain": SessionRules(timeout_minutes=30, max_session_hours=2),
    "midnight": SessionRules(timeout_minutes=30, max_session_hours=2, split_at_midnight="America/New_York"),
    "campaign": SessionRules(timeout_minutes=30, max_session_hours=2, split_on_campaign=True),
}
_GAPS_US = [0, 1, 10 * MINUTE_US, 30 * MINUTE_US, 30 * MINUTE_US + 1, 3 * 60 * MINUTE_US, 20 * 60 * MINUTE_US]


@st.composite
def histories(draw) -> dict:
    """A case: rules, lookback, run step, and the deliveries (a list of runs, each a list of rows)."""
    rules_name = draw(st.sampled_from(sorted(RULES)))
    lookback_h = draw(st.sampled_from([1, 3, 12]))
    step = timedelta(hours=draw(st.sampled_from([3, 6, 12])))
    s = Stream()
    late_edge = lookback_h * 3600
    lateness = st.one_of(
        st.integers(1, 120),
        st.sampled_from([late_edge - 1, late_edge, late_edge + 1, 2 * 86400]),
    )
    redrive: list[dict] = []  # rows that arrive only in the last run, whatever their received_at
    for v in range(draw(st.integers(1, 3))):
        first = T0 + draw(st.integers(0, 3600)) * SECOND
        shape = draw(st.sampled_from(["random", "deep late", "campaign across", "chain across"]))
        if shape != "random":
            _shaped(s, f"v{v}", first, shape, draw)
            continue
        t = first
        for _ in range(draw(st.integers(2, 12))):
            utm = draw(st.sampled_from([None, None, "ads", "mail"]))
            row = s.add(f"v{v}", t, received_at=t + draw(lateness) * SECOND, utm_source=utm)
            kind = draw(st.integers(0, 9))
            if kind == 0:  # a retry days later, its clock jumped: another event_ts, maybe another payload
                s.copy(
                    row,
                    received_at=row["received_at"] + draw(st.sampled_from([1, 2, 3])) * timedelta(days=1),
                    event_ts=row["event_ts"] + draw(st.integers(-7200, 7200)) * SECOND,
                    payload_hash=draw(st.sampled_from([None, "other"])),
                )
            elif kind == 1:  # a copy received before the first one, re-driven days later: it wins
                redrive.append(
                    s.copy(row, received_at=row["received_at"] - SECOND, source_object="raw/redrive")
                )
                s.rows.remove(redrive[-1])
            t += draw(st.sampled_from(_GAPS_US)) * US
    runs: dict[int, list[dict]] = {}
    for row in sorted(s.rows, key=lambda r: (r["received_at"], r["source_line"])):
        runs.setdefault((row["received_at"] - T0) // step, []).append(row)
    deliveries = []
    for i, k in enumerate(sorted(runs)):
        for row in runs[k]:
            row["source_object"] = f"raw/run{i}-{row['source_object'].rsplit('/', 1)[-1]}"
        deliveries.append({"rows": runs[k], "watermark_to": T0 + (k + 1) * step})
    last = deliveries[-1]["watermark_to"]
    if redrive:
        deliveries.append({"rows": redrive, "watermark_to": last + step})
    if len(deliveries) > 2 and draw(st.booleans()):  # an old object delivered again with fewer rows
        old = deliveries[draw(st.integers(0, len(deliveries) - 2))]["rows"]
        obj = old[0]["source_object"]
        again = [r for r in old if r["source_object"] == obj and draw(st.booleans())]
        deliveries.append(
            {"rows": again, "watermark_to": deliveries[-1]["watermark_to"] + step, "objects": [obj]}
        )
    return {"rules": rules_name, "lookback_h": lookback_h, "deliveries": deliveries}


def _shaped(s: Stream, visitor: str, t: datetime, shape: str, draw) -> None:
    """A visitor whose history certainly reaches across the boundary: ``deep late`` - an event received three days
    late lands inside a frozen chain (it must thaw the visitor); ``campaign across`` - the latest campaign is
    frozen, and a later hot event repeats it (no split only if the tail carries it); ``chain across`` - a chain of
    25-minute gaps over two days, cut by the cap on both sides of the boundary."""
    quick = lambda at: s.add(visitor, at, received_at=at + 5 * SECOND)  # noqa: E731
    if shape == "deep late":
        for k in range(3):
            quick(t + k * 20 * MINUTE_US * US)
        late_at = t + draw(st.integers(1, 60)) * MINUTE_US * US
        s.add(visitor, late_at, received_at=late_at + timedelta(days=3))
        quick(t + timedelta(days=draw(st.sampled_from([2, 3]))))
    elif shape == "campaign across":
        s.add(visitor, t, received_at=t + 5 * SECOND, utm_source="ads")
        quick(t + 5 * MINUTE_US * US)
        quick(t + timedelta(hours=36))  # its run freezes the first session
        later = t + timedelta(days=2)
        quick(later)
        s.add(visitor, later + 5 * MINUTE_US * US, received_at=later + 6 * MINUTE_US * US, utm_source="ads")
    else:
        for k in range(2 * 24 * 60 // 25):
            quick(t + k * 25 * MINUTE_US * US + draw(st.sampled_from([0, 1])) * US)


def frozen_copy_case() -> dict:
    """A retry whose clock jumped an hour, received after the run that froze its first copy: the run finds the
    first copy through the frozen-id index, reads the frozen rows, and drops the copy without thawing the visitor."""
    s = Stream()
    first = s.add("v0", T0, received_at=T0 + SECOND)
    s.add("v0", T0 + timedelta(minutes=10), received_at=T0 + timedelta(minutes=10, seconds=1))
    later = T0 + timedelta(days=3)
    s.add("v0", later, received_at=later + SECOND)
    copy = s.copy(
        first,
        received_at=later + timedelta(hours=4),
        event_ts=T0 + timedelta(hours=1),
        source_object="raw/retry",
    )
    for i, rows in enumerate((s.rows[:2], [s.rows[2]])):
        for row in rows:
            row["source_object"] = f"raw/run{i}"
    return {
        "rules": "plain",
        "lookback_h": 1,
        "deliveries": [
            {"rows": s.rows[:2], "watermark_to": T0 + timedelta(hours=3)},
            {"rows": [s.rows[2]], "watermark_to": later + timedelta(hours=3)},
            {"rows": [copy], "watermark_to": later + timedelta(hours=6)},
        ],
    }


def current_rows(deliveries: list[dict]) -> list[dict]:
    """Every object's rows as its latest delivery brought them."""
    latest: dict[str, list[dict]] = {}
    for d in deliveries:
        for obj in d.get("objects", []):
            latest[obj] = []
        by_object: dict[str, list[dict]] = {}
        for row in d["rows"]:
            by_object.setdefault(row["source_object"], []).append(row)
        latest.update(by_object)
    return [r for rows in latest.values() for r in rows]


def check_state(lake: MemoryObjectStore, work: Path, rows: list[dict], rules: SessionRules) -> None:
    all_rows, sessions = state(lake, work)
    cap = timedelta(hours=rules.max_session_hours)
    timeout = timedelta(minutes=rules.timeout_minutes)
    want_assigned, want_dropped, _ = reference.sessionize(
        rows, timeout, cap, midnight_tz=rules.split_at_midnight, on_campaign=rules.split_on_campaign
    )
    got = {reference.row_key(r): r["session_id"] for r in all_rows if r["drop_reason"] is None}
    assert got == want_assigned
    assert {reference.row_key(r): r["drop_reason"] for r in all_rows if r["drop_reason"]} == want_dropped
    assert len(all_rows) == len(rows)
    sessionize_files([write_parquet(work / "full.parquet", rows)], work / "full", rules)
    full = read_parquet(work / "full" / "sessions.parquet")
    key = lambda x: x["session_id"]  # noqa: E731
    assert sorted(sessions, key=key) == sorted(full, key=key)


def test_incremental_runs_across_frozen_history_equal_one_full_recompute(tmp_path: Path) -> None:
    reached: Counter = Counter()
    examples = itertools.count()

    @reproducible(max_examples=20)
    @given(case=histories())
    @example(case=frozen_copy_case())
    def check(case: dict) -> None:
        n = next(examples)
        lake, work = MemoryObjectStore(), tmp_path / str(n)
        rules = RULES[case["rules"]]
        found: set[str] = set()
        for i, d in enumerate(case["deliveries"]):
            run_id = f"run-{i}"
            put_run(lake, work, run_id, d["rows"], watermark_to=iso(d["watermark_to"]))
            if d.get("objects"):  # the re-delivered object, even when it brings no row now
                _add_objects(lake, run_id, d["objects"])
            result = sessionize_bucket(
                SessionizeInput(run_id=run_id, bucket=0), lake, rules=rules, lookback_hours=case["lookback_h"]
            )
            if result.n_thawed_slices:
                found.add("thawed")
            if result.frozen_rows_read and not result.n_thawed_visitors:
                found.add("frozen copy checked without a thaw")
            current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
            if current is not None and any(f.frozen for f in current.slices.values()):
                found.add("froze")
        check_state(lake, work / "final", current_rows(case["deliveries"]), rules)
        for label in found:
            event(label)
        reached.update(found)

    check()
    print(dict(reached))
    assert reached["froze"] > 0
    assert reached["thawed"] > 0
    assert reached["frozen copy checked without a thaw"] > 0


def _add_objects(lake: MemoryObjectStore, run_id: str, objects: list[str]) -> None:
    """Name ``objects`` in the run's manifest (a re-validated object whose rows are now fewer, maybe none)."""
    from clickstream.pipeline.manifest import ManifestObject, manifest_key, read_manifest

    manifest = read_manifest(lake, run_id)
    named = {o.source_key for o in manifest.objects}
    extra = [
        ManifestObject(source_key=o, validated_key=None, validated_at="2026-03-02T10:00:00Z", had_valid=True)
        for o in objects
        if o not in named
    ]
    manifest = manifest.model_copy(update={"objects": [*manifest.objects, *extra]})
    lake.put_bytes(manifest_key(run_id), manifest.model_dump_json().encode())
