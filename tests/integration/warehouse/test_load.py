"""Loading runs: idempotent, atomic, replacing recomputed visitors (DuckDB and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMNS
from clickstream.warehouse.loader import RunRecord, load_run
from clickstream.warehouse.snapshot import warehouse_digest
from tests.unit.warehouse.factory import at, event, session, store_day, write_parquet, write_run

RUN_1 = RunRecord("run-1", "arn:aws:states:us-east-1:123456789012:execution:pipeline:exec-1", None, at(23), 3)
RUN_2 = RunRecord(
    "run-2", "arn:aws:states:us-east-1:123456789012:execution:pipeline:exec-2", at(23), at(23, 30), 1
)


class Boom(RuntimeError):
    pass


def _load(warehouse, files, run=RUN_1, **kwargs):
    with warehouse.connect() as conn:
        return load_run(conn, files, run, **kwargs)


def _digest(warehouse):
    with warehouse.connect() as conn:
        return warehouse_digest(conn)


def _rows(warehouse, sql, params=()):
    with warehouse.connect() as conn:
        return conn.query(sql, params)


def test_load_inserts_events_sessions_users_and_the_run(warehouse, tmp_path):
    # Given the sessionizer's files for the store day
    events, sessions = store_day()
    files = write_run(tmp_path / "run1", events, sessions)
    # When they are loaded
    stats = _load(warehouse, files)
    # Then every event and session is in the warehouse, with the counts reported
    assert (stats.events_loaded, stats.sessions_loaded, stats.visitors_replaced) == (17, 6, 4)
    assert stats.affected_days == ["2026-03-02"]
    assert _rows(warehouse, "SELECT count(*) FROM events")[0][0] == 17
    assert _rows(warehouse, "SELECT count(*) FROM sessions WHERE session_date = ?", [at(0).date()])[0][0] == 6
    # And users maps each signed-in visitor to its user with first and last seen
    assert _rows(
        warehouse, "SELECT anonymous_id, user_id, first_seen, last_seen FROM users ORDER BY anonymous_id"
    ) == [
        ("A", "u1", at(9, 0), at(15, 0)),
        ("C", "u2", at(11, 0), at(20, 0)),
    ]
    # And the run is recorded with its execution id and window
    run = _rows(
        warehouse,
        "SELECT run_id, execution_id, watermark_from, watermark_to, n_objects, events_loaded FROM pipeline_runs",
    )
    assert run == [("run-1", RUN_1.execution_id, None, at(23), 3, 17)]


def test_same_run_loaded_twice_leaves_every_table_identical(warehouse, tmp_path):
    # Given the store day loaded once
    events, sessions = store_day()
    files = write_run(tmp_path / "run1", events, sessions)
    _load(warehouse, files)
    before = _digest(warehouse)
    # When the very same input is loaded again (a Step Functions retry)
    stats = _load(warehouse, files)
    # Then no table changed, pipeline_runs included
    assert _digest(warehouse) == before
    assert stats.affected_days == ["2026-03-02"]


def test_failure_between_copy_and_commit_leaves_previous_state(warehouse, tmp_path):
    # Given a warehouse holding run 1
    events, sessions = store_day()
    _load(warehouse, write_run(tmp_path / "run1", events, sessions))
    before = _digest(warehouse)
    # When run 2 (which replaces visitor A) fails after its rows are copied in and before the commit
    new_events = [event("e99", "S7", "A", "page_view", at(21), path="/new")]
    new_sessions = [session("S7", "A", at(21), 30, n_page_views=1)]
    files = write_run(tmp_path / "run2", new_events, new_sessions)

    def fail():
        with warehouse_probe(warehouse) as seen:
            assert seen == 0  # another connection does not see the uncommitted rows
        raise Boom("injected failure before commit")

    with pytest.raises(Boom):
        _load(warehouse, files, RUN_2, before_commit=fail)
    # Then the warehouse is exactly as before, and a retry succeeds
    assert _digest(warehouse) == before
    stats = _load(warehouse, files, RUN_2)
    assert stats.events_loaded == 1
    assert _rows(warehouse, "SELECT session_id FROM sessions WHERE anonymous_id = 'A'") == [("S7",)]


class warehouse_probe:
    """Counts run 2's rows through a second connection while the loader's transaction is open."""

    def __init__(self, warehouse) -> None:
        self._cm = warehouse.connect()

    def __enter__(self) -> int:
        conn = self._cm.__enter__()
        return conn.query("SELECT count(*) FROM events WHERE event_id = 'e99'")[0][0]

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)


def test_recomputed_visitor_replaces_old_sessions_and_reports_old_and_new_days(warehouse, tmp_path):
    # Given visitor V with two sessions, one late on 03-01 and one early on 03-02, and visitor W untouched
    day1 = datetime(2026, 3, 1, tzinfo=UTC)
    run1_events = [
        event("v1", "V-a", "V", "page_view", at(23, 50, day=day1)),
        event("v2", "V-b", "V", "page_view", at(0, 30)),
        event("w1", "W-a", "W", "page_view", at(8)),
    ]
    run1_sessions = [
        session("V-a", "V", at(23, 50, day=day1), 1),
        session("V-b", "V", at(0, 30), 1),
        session("W-a", "W", at(8), 1),
    ]
    _load(warehouse, write_run(tmp_path / "run1", run1_events, run1_sessions))
    w_rows = _rows(warehouse, "SELECT * FROM sessions WHERE anonymous_id = 'W'")
    # When run 2 brings a late event that merges V's events into one session starting on 03-01
    run2_events = [
        event("v1", "V-a", "V", "page_view", at(23, 50, day=day1)),
        event("v3", "V-a", "V", "page_view", at(0, 10)),
        event("v2", "V-a", "V", "page_view", at(0, 30)),
    ]
    run2_sessions = [
        session("V-a", "V", at(23, 50, day=day1), 40 * 60, n_events=3, n_page_views=3, engaged=True)
    ]
    stats = _load(warehouse, write_run(tmp_path / "run2", run2_events, run2_sessions, visitors=["V"]), RUN_2)
    # Then V has exactly the recomputed session and its events point to it
    assert _rows(warehouse, "SELECT session_id, n_events FROM sessions WHERE anonymous_id = 'V'") == [
        ("V-a", 3)
    ]
    assert _rows(warehouse, "SELECT DISTINCT session_id FROM events WHERE anonymous_id = 'V'") == [("V-a",)]
    # And both the new day and the day the old session moved away from are reported as affected
    assert stats.affected_days == ["2026-03-01", "2026-03-02"]
    assert stats.visitors_replaced == 1
    # And W is untouched
    assert _rows(warehouse, "SELECT * FROM sessions WHERE anonymous_id = 'W'") == w_rows


def test_a_visitor_replaced_from_a_session_start_keeps_its_frozen_sessions_and_their_events(
    warehouse, tmp_path
):
    # Given visitor V with a session on 03-01 (signed in as u1) and one on 03-02, loaded whole
    day1 = datetime(2026, 3, 1, tzinfo=UTC)
    old = [event("v1", "V-a", "V", "page_view", at(10, day=day1), user_id="u1")]
    hot = [event("v2", "V-b", "V", "page_view", at(9))]
    sessions = [session("V-a", "V", at(10, day=day1), 1), session("V-b", "V", at(9), 1)]
    _load(warehouse, write_run(tmp_path / "run1", old + hot, sessions))
    frozen_rows = _rows(warehouse, "SELECT * FROM sessions WHERE session_id = 'V-a'")
    # When run 2 recomputes V from 03-02 on only (03-01 is frozen history): v3 joins the 03-02 session, and the
    # run's users links carry u1's first sighting from the frozen part
    run2_events = [
        event("v2", "V-b", "V", "page_view", at(9)),
        event("v3", "V-b", "V", "page_view", at(9, 10)),
    ]
    run2_sessions = [session("V-b", "V", at(9), 600, n_events=2, n_page_views=2, engaged=True)]
    users = [
        {"anonymous_id": "V", "user_id": "u1", "first_seen": at(10, day=day1), "last_seen": at(10, day=day1)}
    ]
    files = write_run(tmp_path / "run2", run2_events, run2_sessions, replace_from={"V": at(0)}, users=users)
    stats = _load(warehouse, files, RUN_2)
    # Then the 03-01 session and its event stay as they were, the 03-02 session is the recomputed one
    assert _rows(warehouse, "SELECT * FROM sessions WHERE session_id = 'V-a'") == frozen_rows
    assert _rows(
        warehouse, "SELECT event_id, session_id FROM events WHERE anonymous_id = 'V' ORDER BY 1"
    ) == [
        ("v1", "V-a"),
        ("v2", "V-b"),
        ("v3", "V-b"),
    ]
    assert _rows(warehouse, "SELECT session_id, n_events FROM sessions WHERE session_id = 'V-b'") == [
        ("V-b", 2)
    ]
    # And only what was recomputed was loaded, and only its day's KPIs were touched
    assert (stats.events_loaded, stats.sessions_loaded, stats.visitors_replaced) == (2, 1, 1)
    assert stats.affected_days == ["2026-03-02"]
    # And V's users links are the run's (frozen history's included)
    assert _rows(warehouse, "SELECT anonymous_id, user_id, first_seen FROM users") == [
        ("V", "u1", at(10, day=day1))
    ]
    # And loading the same run again changes nothing
    before = _digest(warehouse)
    _load(warehouse, files, RUN_2)
    assert _digest(warehouse) == before


def test_visitor_named_without_rows_is_removed(warehouse, tmp_path):
    # Given the store day
    events, sessions = store_day()
    _load(warehouse, write_run(tmp_path / "run1", events, sessions))
    # When a run names visitor B as affected but has no rows for B (e.g. all its events were erased)
    stats = _load(warehouse, write_run(tmp_path / "run2", [], [], visitors=["B"]), RUN_2)
    # Then B is gone from events and sessions, and its day is affected
    assert _rows(warehouse, "SELECT count(*) FROM events WHERE anonymous_id = 'B'")[0][0] == 0
    assert _rows(warehouse, "SELECT count(*) FROM sessions WHERE anonymous_id = 'B'")[0][0] == 0
    assert stats.affected_days == ["2026-03-02"]


def test_session_date_is_the_start_day_in_the_site_time_zone(warehouse, tmp_path):
    # Given a session starting 03:00 UTC on 03-02, i.e. 22:00 on 03-01 in New York
    files = write_run(
        tmp_path / "run1", [event("n1", "N", "NY", "page_view", at(3))], [session("N", "NY", at(3), 5)]
    )
    # When it is loaded for a store in America/New_York
    stats = _load(warehouse, files, site_timezone="America/New_York")
    # Then its reporting day is 03-01 while its timestamps stay in UTC
    assert stats.affected_days == ["2026-03-01"]
    assert _rows(warehouse, "SELECT session_date, session_start FROM sessions") == [
        (datetime(2026, 3, 1).date(), at(3))
    ]


def test_values_survive_the_load_exactly(warehouse, tmp_path):
    # Given values that break naive CSV/COPY handling: empty vs null strings, quotes, commas, newlines,
    # backslashes, unicode, JSON, microseconds, booleans, large and small doubles
    tricky = event(
        "t1",
        "T",
        "tricky",
        "custom:quiz.answer",
        datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC),
        page_title='He said "hi", then\nleft \\ ok',
        category="",
        transaction_id=None,
        properties='{"answer": "a,b", "nested": {"x": [1, 2]}, "emoji": "🛒"}',
        product_name="Café ☕",
        price=1e20,
        value=0.1,
        quantity=3,
    )
    files = write_run(tmp_path / "run1", [tricky], [session("T", "tricky", tricky["event_ts"], 0)])
    # When loaded
    _load(warehouse, files)
    # Then every value reads back exactly as written
    cols = (
        "page_title",
        "category",
        "transaction_id",
        "properties",
        "product_name",
        "price",
        "value",
        "quantity",
        "event_ts",
    )
    got = _rows(warehouse, f"SELECT {', '.join(cols)} FROM events")[0]
    assert got == tuple(tricky[c] for c in cols)


def test_columns_missing_from_a_file_load_as_null(warehouse, tmp_path):
    # Given an events file written with only the sessionizer's required columns plus session_id
    narrow = tuple(
        c
        for c in EVENT_COLUMNS
        if c[0] in ("event_id", "anonymous_id", "event_type", "event_ts", "session_id")
    )
    path = write_parquet(
        tmp_path / "events.parquet", narrow, [event("m1", "M", "missing", "page_view", at(9))]
    )
    sessions = write_parquet(
        tmp_path / "sessions.parquet", SESSION_COLUMNS, [session("M", "missing", at(9), 1)]
    )
    files = write_run(tmp_path / "unused", [], [])
    files.events, files.sessions, files.visitors = [path], [sessions], []
    # When loaded
    stats = _load(warehouse, files)
    # Then the row is there with nulls for the columns the file lacked
    assert stats.events_loaded == 1
    assert _rows(warehouse, "SELECT event_id, page_url, price FROM events") == [("m1", None, None)]


def test_reloading_a_run_keeps_its_first_load_time_and_updates_its_counts(warehouse, tmp_path):
    # Given run 1 loaded once
    events, sessions = store_day()
    _load(warehouse, write_run(tmp_path / "a", events, sessions))
    first = _rows(warehouse, "SELECT loaded_at FROM pipeline_runs")[0][0]
    # When the same run id is loaded with different content (a re-planned window)
    _load(warehouse, write_run(tmp_path / "b", events[:1], sessions[:1], visitors=["A"]))
    # Then there is still one row for the run, with the new counts and the first load time
    assert _rows(
        warehouse, "SELECT run_id, events_loaded, sessions_loaded, loaded_at FROM pipeline_runs"
    ) == [("run-1", 1, 1, first)]
