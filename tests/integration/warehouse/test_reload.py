"""Reloads on PostgreSQL: deletes pruned to the affected visitors' days, and days rebuilt when a load rewrites them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from clickstream.adapters import warehouse as engine
from clickstream.adapters.warehouse import open_warehouse
from clickstream.warehouse.loader import KEPT_EVENTS, RunRecord, _day_ranges, load_run
from clickstream.warehouse.migrate import migrate
from clickstream.warehouse.snapshot import table_digest, warehouse_digest
from tests.unit.warehouse.factory import at, event, one_view_run, session, write_run

pytestmark = pytest.mark.postgres

DAY1 = datetime(2026, 3, 1, tzinfo=UTC)
DAY3 = datetime(2026, 3, 3, tzinfo=UTC)


@pytest.fixture
def pg(pg_database):
    wh = open_warehouse(pg_database)
    with wh.connect() as conn:
        migrate(conn)
    return wh


@pytest.fixture
def other_pg(pg_dsn) -> Iterator:
    """A second migrated database on the same server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    wh = open_warehouse(make_conninfo(**{**conninfo_to_dict(pg_dsn), "dbname": name}))
    with wh.connect() as conn:
        migrate(conn)
    yield wh
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _visitor_day(visitor: str, n: int, day: datetime = at(0)) -> tuple[list[dict], list[dict]]:
    """``n`` page views of one visitor in one session on ``day``."""
    sid = f"S-{visitor}"
    events = [
        event(f"{visitor}-{i}", sid, visitor, "page_view", day.replace(hour=9, minute=i)) for i in range(n)
    ]
    return events, [session(sid, visitor, events[0]["event_ts"], 60 * (n - 1), n_events=n)]


def _runs(tmp_path):
    """Run 1: visitors K (kept) and A, B on 03-02, C on 03-01. Run 2 recomputes A and B: A moves to new ids."""
    rows1 = [_visitor_day(v, 4) for v in ("K", "A", "B")] + [_visitor_day("C", 3, at(0, day=DAY1))]
    run1 = write_run(tmp_path / "r1", [e for ev, _ in rows1 for e in ev], [s for _, ss in rows1 for s in ss])
    a_events, a_sessions = _visitor_day("A", 6)
    a_events = [{**e, "event_id": e["event_id"] + "x", "page_title": "again"} for e in a_events]
    b_events, b_sessions = _visitor_day("B", 2)
    run2 = write_run(tmp_path / "r2", a_events + b_events, a_sessions + b_sessions)
    return run1, run2


def _partitions(conn) -> list[str]:
    return [
        name
        for (name,) in conn.query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass ORDER BY 1"
        )
    ]


def _shape(conn, name: str) -> tuple[list[str], list[str]]:
    indexes = sorted(
        d.split(" ON ", 1)[1].replace(name, "P")
        for (d,) in conn.query("SELECT indexdef FROM pg_indexes WHERE tablename = ?", [name])
    )
    constraints = sorted(
        f"{t}:{n.replace(name, 'P')}"
        for t, n in conn.query(
            "SELECT contype, conname FROM pg_constraint WHERE conrelid = to_regclass(?)", [name]
        )
    )
    return indexes, constraints


def test_day_ranges_merge_touching_spans():
    d = datetime(2026, 3, 1).date
    assert _day_ranges([]) == []
    assert _day_ranges([(d(), d())]) == [(d(), d().replace(day=2))]
    spans = [
        (d().replace(day=5), d().replace(day=6)),
        (d(), d().replace(day=2)),
        (d().replace(day=3), d().replace(day=3)),
    ]
    assert _day_ranges(spans) == [(d(), d().replace(day=4)), (d().replace(day=5), d().replace(day=7))]


def test_a_rewritten_day_equals_the_incremental_reload(pg, other_pg, tmp_path, monkeypatch):
    # Given the same two runs loaded into two warehouses
    run1, run2 = _runs(tmp_path)
    for wh in (pg, other_pg):
        with wh.connect() as conn:
            load_run(conn, run1, RunRecord("r1"))
    with pg.connect() as conn:
        shape_before = _shape(conn, "events_p20260302")
    # When run 2 rebuilds 03-02 in one (every day qualifies) and tops it up in the other (no day qualifies)
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 1)
    with pg.connect() as conn:
        load_run(conn, run2, RunRecord("r2"))
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 10**9)
    with other_pg.connect() as conn:
        load_run(conn, run2, RunRecord("r2"))
    # Then events, sessions and users are identical: K and C kept, A and B replaced
    with pg.connect() as rebuilt, other_pg.connect() as topped_up:
        for table in ("events", "sessions", "users"):
            assert table_digest(rebuilt, table) == table_digest(topped_up, table), table
        assert rebuilt.query("SELECT anonymous_id, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
            ("A", 6),
            ("B", 2),
            ("C", 3),
            ("K", 4),
        ]
        # And the rebuilt day is a partition of the same name, indexes and constraints, with nothing left over
        assert _partitions(rebuilt) == _partitions(topped_up) == ["events_p20260301", "events_p20260302"]
        assert _shape(rebuilt, "events_p20260302") == shape_before
        assert rebuilt.query("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_rw%'") == [(0,)]
        # And the primary key holds on it
        with pytest.raises(psycopg.errors.UniqueViolation), rebuilt.transaction():
            rebuilt.execute(
                "INSERT INTO events (event_id, anonymous_id, event_type, event_ts, session_id)"
                " SELECT event_id, anonymous_id, event_type, event_ts, session_id FROM events WHERE anonymous_id = 'K'"
            )


_RECORD_DELETES = """
CREATE TABLE deletes_seen (event_id VARCHAR);
CREATE FUNCTION record_delete() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO deletes_seen VALUES (OLD.event_id); RETURN OLD; END $$;
CREATE TRIGGER record_delete AFTER DELETE ON events_p20260302 FOR EACH ROW EXECUTE FUNCTION record_delete();
"""


def test_a_rebuilt_day_is_never_deleted_from_and_ends_as_the_delete_path_leaves_it(
    pg, other_pg, tmp_path, monkeypatch
):
    # Given the same two runs' first loaded into two warehouses, a trigger recording every row deleted from 03-02
    run1, run2 = _runs(tmp_path)
    for wh in (pg, other_pg):
        with wh.connect() as conn:
            load_run(conn, run1, RunRecord("r1"))
            conn.script(_RECORD_DELETES)
    # When run 2 rebuilds 03-02 in one and deletes from it in the other
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 1)
    with pg.connect() as conn:
        load_run(conn, run2, RunRecord("r2"))
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 10**9)
    with other_pg.connect() as conn:
        load_run(conn, run2, RunRecord("r2"))
        # Then the delete path deleted A's and B's eight old rows of that day one by one
        assert conn.count("deletes_seen") == 8
    with pg.connect() as rebuilt, other_pg.connect() as deleted:
        # And the rebuilt day's replaced rows were left out of its new partition, never deleted
        assert rebuilt.count("deletes_seen") == 0
        # And both paths leave the same rows, partitions and index definitions
        for table in ("events", "sessions", "users"):
            assert table_digest(rebuilt, table) == table_digest(deleted, table), table
        assert _partitions(rebuilt) == _partitions(deleted)
        for name in _partitions(rebuilt):
            assert _shape(rebuilt, name)[0] == _shape(deleted, name)[0], name


def test_a_reader_waiting_on_the_swap_sees_the_whole_new_day(pg, tmp_path, monkeypatch):
    # Given run 1 loaded, and a load of run 2 that rebuilds 03-02
    run1, run2 = _runs(tmp_path)
    with pg.connect() as conn:
        load_run(conn, run1, RunRecord("r1"))
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 1)
    seen: list[list[tuple]] = []
    started = threading.Event()

    def dashboard_query() -> None:
        with pg.connect() as reader:
            reader.execute("SET lock_timeout = '30s'")
            started.set()
            seen.append(
                reader.query(
                    "SELECT anonymous_id, count(*) FROM events WHERE event_ts >= ? AND event_ts < ?"
                    " GROUP BY 1 ORDER BY 1",
                    [at(0), at(0, day=DAY3)],
                )
            )

    reader = threading.Thread(target=dashboard_query)

    def start_reader_then_wait() -> None:
        # the swap holds events until the commit: the reader's query waits behind it
        reader.start()
        started.wait(10)
        time.sleep(0.5)
        assert not seen, "the reader did not wait for the load's swap"

    # When a dashboard query arrives while the load that swapped the day has not committed yet
    with pg.connect() as conn:
        load_run(conn, run2, RunRecord("r2"), before_commit=start_reader_then_wait)
    reader.join(30)
    # Then it saw the day once, whole and new: K kept, A and B replaced, nothing missing or twice
    assert seen == [[("A", 6), ("B", 2), ("K", 4)]]


def test_a_day_is_rebuilt_when_what_it_keeps_is_small_beside_what_the_load_replaces(
    pg, tmp_path, monkeypatch
):
    # Given 03-02's partition holding 12 rows (run 1's K, A, B) and 03-01's holding 3 (C)
    run1, _ = _runs(tmp_path)
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 10)
    monkeypatch.setattr(engine, "REWRITE_RATIO", 1)
    day, other = at(0).date(), at(0, day=DAY1).date()
    with pg.connect() as conn:
        load_run(conn, run1, RunRecord("r1"))
        # Then a day is rebuilt when the rows it keeps are fewer than REWRITE_RATIO times those out and in
        assert conn.event_days_to_rebuild({day: 10}, {day: 0}) == []  # keeps 12, 10 out and in
        assert conn.event_days_to_rebuild({day: 10}, {day: 1}) == []  # keeps 11, 11 out and in
        assert conn.event_days_to_rebuild({day: 10}, {day: 2}) == [day]  # keeps 10, 12 out and in
        assert conn.event_days_to_rebuild({day: 10, other: 10}, {other: 3}) == [other]
        # And never below REWRITE_MIN_ROWS incoming rows, nor a day without a partition (it is new anyway)
        assert conn.event_days_to_rebuild({day: 9}, {day: 12}) == []
        assert conn.event_days_to_rebuild({DAY3.date(): 100}, {}) == []


def test_a_rebuilt_days_kept_rows_plan_as_joins_however_many_sessions_are_replaced(pg):
    # Given 100k replaced sessions staged, far more than a hashed subplan can hold in a small work_mem
    with pg.connect() as conn, conn.transaction():
        conn.prepare_event_days([at(0).date()])
        conn.execute(
            "CREATE TEMP TABLE stage_affected AS SELECT 'v' || i AS anonymous_id FROM generate_series(1, 100000) i"
        )
        conn.execute(
            "CREATE TEMP TABLE stage_replaced AS"
            " SELECT 's' || i AS session_id, 'v' || i AS anonymous_id FROM generate_series(1, 100000) i"
        )
        conn.execute("ANALYZE stage_affected")
        conn.execute("ANALYZE stage_replaced")
        conn.execute("SET LOCAL work_mem = '64kB'")
        # When the rows a rebuilt day keeps are planned
        plan = "\n".join(r[0] for r in conn.query("EXPLAIN " + KEPT_EVENTS.format(table="events_p20260302")))
    # Then they are joins against the staged ids, never a subplan run per stored row
    assert "SubPlan" not in plan, plan
    assert "Anti Join" in plan and "Semi Join" in plan, plan


def test_a_rewrite_that_fails_before_commit_leaves_the_old_partition(pg, tmp_path, monkeypatch):
    run1, run2 = _runs(tmp_path)
    with pg.connect() as conn:
        load_run(conn, run1, RunRecord("r1"))
        before = warehouse_digest(conn)
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 1)

    def fail():
        raise RuntimeError("injected failure before commit")

    with pg.connect() as conn, pytest.raises(RuntimeError, match="injected"):
        load_run(conn, run2, RunRecord("r2"), before_commit=fail)
    with pg.connect() as conn:
        assert warehouse_digest(conn) == before
        assert _partitions(conn) == ["events_p20260301", "events_p20260302"]


def test_a_rewrite_blocked_by_readers_tops_the_day_up_instead(pg, other_pg, tmp_path, monkeypatch):
    # Given a reader inside a transaction that has read events (it holds its lock until it ends)
    run1, run2 = _runs(tmp_path)
    for wh in (pg, other_pg):
        with wh.connect() as conn:
            load_run(conn, run1, RunRecord("r1"))
    monkeypatch.setattr(engine, "SWAP_LOCK_TIMEOUT", "300ms")
    with pg.connect() as reader, reader.transaction():
        assert reader.count("events") == 15
        # When a load that rebuilds a day reaches its swap while the reader is still there
        monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 1)
        with pg.connect() as conn:
            conn.execute("SET lock_timeout = '20s'")
            load_run(conn, run2, RunRecord("r2"))
            # Then the load went on without the swap (the connection's own lock timeout is back)
            assert conn.query("SHOW lock_timeout") == [("20s",)]
        # And the reader still reads, and saw nothing of the load
        assert reader.count("events") == 15
    # And the result is the incremental reload's, with the same partitions and nothing left over
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 10**9)
    with other_pg.connect() as conn:
        load_run(conn, run2, RunRecord("r2"))
    with pg.connect() as topped_up, other_pg.connect() as incremental:
        for table in ("events", "sessions", "users"):
            assert table_digest(topped_up, table) == table_digest(incremental, table), table
        assert _partitions(topped_up) == _partitions(incremental)
        assert topped_up.query("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_rw%'") == [(0,)]


def test_a_swap_restores_the_connections_lock_timeout(pg, tmp_path, monkeypatch):
    run1, run2 = _runs(tmp_path)
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 1)
    with pg.connect() as conn:
        load_run(conn, run1, RunRecord("r1"))
        conn.execute("SET lock_timeout = '7s'")
        load_run(conn, run2, RunRecord("r2"))
        assert conn.query("SHOW lock_timeout") == [("7s",)]


def test_a_key_held_by_another_visitor_in_a_rewritten_day_is_still_replaced(pg, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "REWRITE_MIN_ROWS", 1)
    with pg.connect() as conn:
        load_run(
            conn,
            one_view_run(tmp_path / "r1", "x1", "SP", "P"),
            RunRecord("r1"),
        )
        load_run(
            conn,
            one_view_run(tmp_path / "r2", "x1", "SQ", "Q"),
            RunRecord("r2"),
        )
        assert conn.query("SELECT event_id, anonymous_id FROM events") == [("x1", "Q")]


def test_the_visitor_delete_touches_only_the_days_of_their_old_sessions(pg, tmp_path):
    # Given visitors on 03-01 and 03-03, and a load that replaces only the 03-03 visitor
    with pg.connect() as conn:
        load_run(
            conn,
            write_run(
                tmp_path / "r1",
                [
                    event("c1", "SC", "C", "page_view", at(9, day=DAY1)),
                    event("d1", "SD", "D", "page_view", at(9, day=DAY3)),
                ],
                [session("SC", "C", at(9, day=DAY1), 1), session("SD", "D", at(9, day=DAY3), 1)],
            ),
            RunRecord("r1"),
        )
    # When another session holds an exclusive lock on 03-01's partition (the delete would wait on it if it looked)
    with pg.connect() as locker, locker.transaction():
        locker.execute("LOCK TABLE events_p20260301 IN ACCESS EXCLUSIVE MODE")
        with pg.connect() as conn:
            conn.execute("SET lock_timeout = '2s'")
            stats = load_run(
                conn,
                write_run(
                    tmp_path / "r2",
                    [event("d2", "SD", "D", "page_view", at(10, day=DAY3))],
                    [session("SD", "D", at(10, day=DAY3), 1)],
                ),
                RunRecord("r2"),
            )
    # Then the load went through without touching 03-01, and D's old event is gone
    assert stats.visitors_replaced == 1
    with pg.connect() as conn:
        assert conn.query("SELECT event_id FROM events ORDER BY 1") == [("c1",), ("d2",)]


def test_a_visitors_old_events_on_days_the_run_does_not_bring_are_deleted(pg, tmp_path):
    # Given visitor V with events on 03-01 and 03-03 (two sessions)
    with pg.connect() as conn:
        load_run(
            conn,
            write_run(
                tmp_path / "r1",
                [
                    event("v1", "S1", "V", "page_view", at(9, day=DAY1)),
                    event("v3", "S3", "V", "page_view", at(9, day=DAY3)),
                ],
                [session("S1", "V", at(9, day=DAY1), 1), session("S3", "V", at(9, day=DAY3), 1)],
            ),
            RunRecord("r1"),
        )
        # When a run recomputes V with a single event on 03-02 (the others were erased upstream)
        load_run(
            conn,
            one_view_run(tmp_path / "r2", "v2", "S2", "V"),
            RunRecord("r2"),
        )
        # Then only the new event is left, on every day
        assert conn.query("SELECT event_id FROM events") == [("v2",)]
