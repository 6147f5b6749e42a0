"""Incremental = full, as a property: random streams, random arrival batches, random lateness within the lookback.

Each generated case is delivered run by run through the real Sessionize step (moto S3); after the last run the
bucket's state must equal one full recompute of everything delivered: the same session id for every kept event,
the same drops, and every session field equal to the CLI's single run over all rows. The generator is shaped so
the interesting cases occur, and the test asserts they did: a late event merging two chains, a late event
splitting a session (it extends a chain past the cap, so the cuts move), and the cap itself.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clickstream.adapters.aws import client
from clickstream.adapters.storage import S3ObjectStore
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.files import sessionize_files
from clickstream.sessionize.rule import SessionRules
from tests.unit.pipeline.test_sessionize import put_run, state
from tests.unit.sessionize import reference
from tests.unit.sessionize.data import T0, US, Stream, read_parquet, write_parquet

TIMEOUT = timedelta(minutes=30)
CAP = timedelta(hours=2)  # a short cap, so generated chains reach it
LOOKBACK = timedelta(hours=72)
RULES = SessionRules(timeout_minutes=30, max_session_hours=2)
_GAPS = [
    0,
    1,
    10 * 60 * 10**6,
    29 * 60 * 10**6,
    TIMEOUT // US,
    TIMEOUT // US + 1,
    31 * 60 * 10**6,
    3 * 3600 * 10**6,
]
_LATENESS_S = st.one_of(
    st.integers(1, 120), st.sampled_from([1800, 7200, 30 * 3600, int(LOOKBACK.total_seconds())])
)


MINUTE_US = 60 * 10**6
LATE_S = 30 * 3600  # well within the lookback, and always in a later run than its neighbours


@st.composite
def visitor_events(draw) -> list[tuple[int, int]]:
    """(offset from the visitor's first event in µs, lateness in s) of one visitor's events.

    Explicit shapes make the interesting cases certain, random gaps and lateness vary them: ``bridge`` - a late
    event fills the gap between two chains; ``prepend`` - a late event before a chain just under the cap pushes
    its span over the cap, so an old session is cut in two; ``long`` - a chain of 25-min gaps beyond the cap;
    ``random`` - gaps on and around the timeout."""
    shape = draw(st.sampled_from(["bridge", "prepend", "long", "random"]))
    jitter = draw(st.integers(0, 59)) * 10**6
    if shape == "bridge":
        gap = draw(st.integers(31, 59)) * MINUTE_US
        return [(0, 1), (gap // 2 + jitter, LATE_S), (gap, 1), (gap + 5 * MINUTE_US, 1)]
    if shape == "prepend":
        chain = [
            (20 * MINUTE_US + k * 22 * MINUTE_US, 1) for k in range(5)
        ]  # 20 → 108 min, then 125: one session (105 min)
        return [(0, LATE_S), *chain, (125 * MINUTE_US + jitter, 1)]
    if shape == "long":
        return [(k * 25 * MINUTE_US + (jitter if k % 2 else 0), 1) for k in range(draw(st.integers(6, 12)))]
    events, t = [], 0
    for _ in range(draw(st.integers(2, 9))):
        events.append((t, draw(_LATENESS_S)))
        t += draw(st.sampled_from(_GAPS))
    return events


@st.composite
def deliveries(draw) -> list[list[dict]]:
    """A stream, with lateness and retries, delivered in runs every ``step`` hours of arrival time."""
    s = Stream()
    for v in range(draw(st.integers(1, 3))):
        first = T0 + draw(st.integers(0, 600)) * timedelta(seconds=1)
        for offset_us, lateness_s in draw(visitor_events()):
            t = first + offset_us * US
            received = t + lateness_s * timedelta(seconds=1)
            row = s.add(f"v{v}", t, received_at=received)
            if draw(st.integers(0, 11)) == 0:  # a retry, received later
                s.copy(row, received_at=received + draw(st.integers(1, 3600)) * timedelta(seconds=1))
    step = timedelta(hours=draw(st.sampled_from([1, 6, 24])))
    batches: dict[int, list[dict]] = {}
    for row in sorted(s.rows, key=lambda r: (r["received_at"], r["source_line"])):
        batches.setdefault((row["received_at"] - T0) // step, []).append(row)
    for i, batch in enumerate(batches.values()):
        for row in batch:
            row["source_object"] = f"raw/run{i}-{row['source_object'].rsplit('/', 1)[-1]}"
    return list(batches.values())


def chains(rows: list[dict]) -> dict[str, int]:
    """Activity chains per visitor (the rule without a cap)."""
    _, _, sessions = reference.sessionize(rows, TIMEOUT, timedelta(days=10_000))
    return Counter(s["anonymous_id"] for s in sessions)


def labels(batches: list[list[dict]]) -> set[str]:
    """What the case exercises, from the reference's view after each run."""
    found: set[str] = set()
    seen: list[dict] = []
    before_chains: dict[str, int] = {}
    before_assigned: dict[tuple, str] = {}
    for batch in batches:
        seen = seen + batch
        now_chains = chains(seen)
        assigned, _, _ = reference.sessionize(seen, TIMEOUT, CAP)
        if any(now_chains[v] < n for v, n in before_chains.items()):
            found.add("late event merges chains")
        moved: dict[str, set[str]] = {}
        for key, sid in before_assigned.items():
            if key in assigned:
                moved.setdefault(sid, set()).add(assigned[key])
        if any(len(new) > 1 for new in moved.values()):
            found.add("late event splits a session")
        before_chains, before_assigned = now_chains, assigned
    _, _, final = reference.sessionize(seen, TIMEOUT, CAP)
    if len(final) > sum(chains(seen).values()):
        found.add("cap cuts a chain")
    return found


def reproducible(max_examples: int) -> settings:
    """Hypothesis settings for the properties that also count which paths their cases reached: a fixed seed and no
    example database, so CI and a laptop generate the same cases and the "reached" assertions are about the
    strategy, not about luck or a local .hypothesis folder."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.slow
def test_incremental_runs_equal_one_full_recompute(aws, tmp_path: Path) -> None:
    reached: Counter = Counter()
    examples = itertools.count()

    @reproducible(max_examples=16)
    @given(batches=deliveries())
    def check(batches: list[list[dict]]) -> None:
        # Given a fresh lake and the batches in arrival order
        n = next(examples)
        bucket = f"lake-prop-{n}"
        client("s3").create_bucket(Bucket=bucket)
        lake = S3ObjectStore(bucket)
        work = tmp_path / str(n)
        # When each batch is one run of the step
        for i, batch in enumerate(batches):
            put_run(lake, work, f"run-{i}", batch)
            sessionize_bucket(SessionizeInput(run_id=f"run-{i}", bucket=0), lake, rules=RULES)
        # Then the state equals one full recompute: every kept event's session, every drop …
        rows = [r for batch in batches for r in batch]
        all_rows, state_sessions = state(lake, work)
        want_assigned, want_dropped, _ = reference.sessionize(rows, TIMEOUT, CAP)
        assert {
            reference.row_key(r): r["session_id"] for r in all_rows if r["drop_reason"] is None
        } == want_assigned
        assert {reference.row_key(r): r["drop_reason"] for r in all_rows if r["drop_reason"]} == want_dropped
        # … and every field of every session
        sessionize_files([write_parquet(work / "full.parquet", rows)], work / "full", RULES)
        full = read_parquet(work / "full" / "sessions.parquet")
        key = lambda x: x["session_id"]  # noqa: E731
        assert sorted(state_sessions, key=key) == sorted(full, key=key)
        found = labels(batches)
        for label in found:
            event(label)
        reached.update(found)

    check()
    # The generated cases did reach the interesting boundaries
    print(dict(reached))
    assert reached["late event merges chains"] > 0
    assert reached["late event splits a session"] > 0
    assert reached["cap cuts a chain"] > 0
