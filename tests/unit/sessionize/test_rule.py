"""The session rule, compared event by event with an independent reference implementation."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clickstream.sessionize.files import sessionize_files
from clickstream.sessionize.rule import SessionRules, cut_chain
from tests.unit.sessionize import reference
from tests.unit.sessionize.data import (
    CAP,
    T0,
    TIMEOUT,
    US,
    Stream,
    boundary_stream,
    read_parquet,
    write_parquet,
)


def run_cli_engine(
    tmp: Path, rows: list[dict], rules: SessionRules | None = None
) -> tuple[dict, list[dict], object]:
    src = write_parquet(tmp / "in" / "events.parquet", rows)
    summary = sessionize_files([src], tmp / "out", rules)
    events = read_parquet(tmp / "out" / "events.parquet")
    sessions = read_parquet(tmp / "out" / "sessions.parquet")
    assigned = {reference.row_key(e): e["session_id"] for e in events}
    return assigned, sessions, summary


def assert_matches_reference(tmp: Path, rows: list[dict], timeout=TIMEOUT, cap=CAP) -> dict:
    rules = SessionRules(
        timeout_minutes=timeout / timedelta(minutes=1), max_session_hours=cap / timedelta(hours=1)
    )
    assigned, sessions, summary = run_cli_engine(tmp, rows, rules)
    want_assigned, want_dropped, want_sessions = reference.sessionize(rows, timeout, cap)
    assert assigned == want_assigned
    got = [
        (s["session_id"], s["anonymous_id"], s["session_start"], s["session_end"], s["n_events"])
        for s in sessions
    ]
    want = [
        (s["session_id"], s["anonymous_id"], s["session_start"], s["session_end"], s["n_events"])
        for s in want_sessions
    ]
    assert sorted(got) == sorted(want)
    assert summary.n_duplicates == sum(1 for r in want_dropped.values() if r == "duplicate")
    assert summary.n_conflicts == sum(1 for r in want_dropped.values() if r == "duplicate_conflict")
    return {"assigned": assigned, "sessions": sessions, "dropped": want_dropped}


def test_engine_matches_reference_on_every_boundary(tmp_path: Path) -> None:
    # Given a stream with exact-timeout gaps, exact-cap spans, long capped chains, ties and duplicates
    stream = boundary_stream(seed=7)
    # When the engine sessionizes it / Then every event lands in the reference's session
    result = assert_matches_reference(tmp_path, stream.rows)
    assert len(result["dropped"]) >= 3


def test_gap_of_exactly_the_timeout_stays_and_one_microsecond_more_splits(tmp_path: Path) -> None:
    # Given events 30 min apart, then 30 min + 1 µs apart
    s = Stream()
    a = s.add("v", T0)
    b = s.add("v", T0 + TIMEOUT)
    c = s.add("v", T0 + 2 * TIMEOUT + US)
    # When sessionized
    assigned, sessions, _ = run_cli_engine(tmp_path, s.rows)
    # Then the exact gap stays in the session and the longer one starts a new one
    key = reference.row_key
    assert assigned[key(a)] == assigned[key(b)] != assigned[key(c)]
    assert len(sessions) == 2


def test_cap_is_measured_from_the_session_start_and_is_strict(tmp_path: Path) -> None:
    # Given a chain of 30-min gaps spanning exactly 24 h, then one event 1 µs later
    s = Stream()
    rows = [s.add("v", T0 + k * TIMEOUT) for k in range(49)]
    after = s.add("v", T0 + CAP + US)
    # When sessionized
    assigned, sessions, _ = run_cli_engine(tmp_path, s.rows)
    # Then the event exactly 24 h after the start stays; the one after starts the next session there
    key = reference.row_key
    assert {assigned[key(r)] for r in rows} == {reference.session_id_of("v", T0)}
    assert assigned[key(after)] == reference.session_id_of("v", T0 + CAP + US)
    assert [s_["n_events"] for s_ in sorted(sessions, key=lambda x: x["session_start"])] == [49, 1]


def test_long_chain_is_cut_greedily_several_times(tmp_path: Path) -> None:
    # Given one visitor active every 20 min for 80 hours (a single activity chain)
    s = Stream()
    for k in range(80 * 3 + 1):
        s.add("bot", T0 + k * timedelta(minutes=20))
    # When sessionized
    _, sessions, _ = run_cli_engine(tmp_path, s.rows)
    # Then sessions start every 24 h 20 min (the first event more than 24 h after each start)
    starts = sorted(x["session_start"] for x in sessions)
    step = CAP + timedelta(minutes=20)
    assert starts == [T0, T0 + step, T0 + 2 * step, T0 + 3 * step]
    assert all(x["session_end"] - x["session_start"] <= CAP for x in sessions)


def test_copy_received_first_wins_even_when_it_arrives_in_a_later_object(tmp_path: Path) -> None:
    # Given an event whose copy was received earlier with an earlier event_ts (a retry validated later)
    s = Stream()
    first = s.add("v", T0)
    late = s.add("v", T0 + 40 * timedelta(minutes=1), received_at=T0 + timedelta(minutes=41))
    early_copy = s.copy(late, received_at=T0 + timedelta(minutes=20), event_ts=T0 + timedelta(minutes=20))
    # When sessionized
    assigned, sessions, summary = run_cli_engine(tmp_path, s.rows)
    # Then the earlier-received copy is kept, and its time joins the first session
    key = reference.row_key
    assert key(late) not in assigned
    assert assigned[key(early_copy)] == assigned[key(first)]
    assert len(sessions) == 1 and summary.n_duplicates == 1 and summary.n_conflicts == 0


def test_reused_event_id_with_another_payload_is_a_conflict(tmp_path: Path) -> None:
    # Given a later copy with a different payload hash, and a later copy with the same hash
    s = Stream()
    original = s.add("v", T0)
    s.copy(original, received_at=T0 + timedelta(hours=1), payload_hash="different")
    s.copy(original, received_at=T0 + timedelta(hours=2))
    # When sessionized
    assigned, _, summary = run_cli_engine(tmp_path, s.rows)
    # Then the original is kept, one copy counts as a duplicate and the other as a conflict
    assert list(assigned) == [reference.row_key(original)]
    assert (summary.n_duplicates, summary.n_conflicts) == (1, 1)


def test_session_id_is_md5_of_visitor_and_start_microseconds(tmp_path: Path) -> None:
    # Given one event
    s = Stream()
    row = s.add("visitor-1", T0 + 123 * US)
    # When sessionized
    assigned, _, _ = run_cli_engine(tmp_path, s.rows)
    # Then its session id is the documented hash
    us = reference.epoch_us(T0 + 123 * US)
    assert assigned[reference.row_key(row)] == hashlib.md5(f"visitor-1|{us}".encode()).hexdigest()


def test_custom_timeout_and_cap(tmp_path: Path) -> None:
    # Given a stream with the boundaries, under a 10-minute timeout and a 2-hour cap
    stream = boundary_stream(seed=11)
    # When / Then the engine still agrees with the reference
    assert_matches_reference(tmp_path, stream.rows, timeout=timedelta(minutes=10), cap=timedelta(hours=2))


def test_cut_chain_starts_at_the_first_event_beyond_the_cap() -> None:
    # Given sorted timestamps (µs) with a cap of 10
    ts = [0, 5, 10, 11, 15, 21, 22, 40]
    # When cut / Then each start is the first event more than 10 after the previous start
    assert cut_chain(ts, 10) == [0, 11, 22, 40]
    assert cut_chain([], 10) == []


_GAPS_US = st.sampled_from(
    [
        0,
        1,
        TIMEOUT // US - 1,
        TIMEOUT // US,
        TIMEOUT // US + 1,
        10 * 60 * 10**6,
        25 * 60 * 10**6,
        5 * 3600 * 10**6,
    ]
)


@st.composite
def streams(draw) -> list[dict]:
    s = Stream()
    for v in range(draw(st.integers(1, 4))):
        t = T0 + draw(st.integers(0, 3600)) * timedelta(seconds=1)
        for _ in range(draw(st.integers(1, 40))):
            row = s.add(f"v{v}", t, event_id=f"v{v}-{draw(st.integers(0, 60))}")
            if draw(st.integers(0, 9)) == 0:
                later = row["received_at"] + draw(st.integers(-30, 30)) * timedelta(seconds=1)
                s.copy(row, received_at=later, payload_hash=draw(st.sampled_from([None, "x"])))
            t += draw(_GAPS_US) * US
    return s.rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=streams())
def test_property_engine_equals_reference(tmp_path_factory, rows: list[dict]) -> None:
    # Given random streams whose gaps sit on and around the timeout, with reused event ids, under a 2 h cap
    tmp = tmp_path_factory.mktemp("prop")
    cap = timedelta(hours=2)
    # When both sessionize
    result = assert_matches_reference(tmp, rows, cap=cap)
    # Then they agree (asserted above); record which boundaries the case reached
    spans = [s["session_end"] - s["session_start"] for s in result["sessions"]]
    event("reaches the cap" if any(cap - timedelta(minutes=31) < x for x in spans) else "under the cap")
    event("has duplicates" if result["dropped"] else "no duplicates")


def test_random_arrival_order_does_not_change_sessions(tmp_path: Path) -> None:
    # Given the boundary stream, shuffled
    rows = boundary_stream(seed=3).rows
    shuffled = list(rows)
    random.Random(5).shuffle(shuffled)
    # When both orders are sessionized
    a, _, _ = run_cli_engine(tmp_path / "a", rows)
    b, _, _ = run_cli_engine(tmp_path / "b", shuffled)
    # Then the assignments are identical
    assert a == b
