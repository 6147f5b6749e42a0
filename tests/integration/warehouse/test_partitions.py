"""PostgreSQL's events partitioned by UTC day, and the COPY path that feeds them (real PostgreSQL)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import duckdb
import psycopg
import pytest

from clickstream.adapters.warehouse import (
    CONNECT_TIMEOUT_SECONDS,
    KeyConflict,
    open_warehouse,
    parquet_source,
)
from clickstream.core.schema import EVENT_COLUMNS, WAREHOUSE_EVENT_COLUMNS
from clickstream.warehouse.loader import RunRecord, load_run
from clickstream.warehouse.migrate import migrate, migrations_dir
from clickstream.warehouse.snapshot import warehouse_digest
from tests.unit.warehouse.factory import at, event, one_view_run, session, store_day, write_run

pytestmark = pytest.mark.postgres

DAY1 = datetime(2026, 3, 1, tzinfo=UTC)
DAY3 = datetime(2026, 3, 3, tzinfo=UTC)


@pytest.fixture
def pg(pg_database):
    wh = open_warehouse(pg_database)
    with wh.connect() as conn:
        migrate(conn)
    return wh


def _partitions(conn) -> dict[str, int]:
    """{partition name: its row count}"""
    names = [
        r[0]
        for r in conn.query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass ORDER BY 1"
        )
    ]
    return {n: conn.count(n) for n in names}


def test_events_is_partitioned_by_day_with_the_partition_key_in_the_primary_key(pg):
    with pg.connect() as conn:
        assert conn.query("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass") == [("p",)]
        pk = conn.query(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = 'events'::regclass AND i.indisprimary ORDER BY a.attname"
        )
        assert pk == [("event_id",), ("event_ts",)]


def test_a_load_creates_the_partitions_of_its_days_and_rows_land_in_them(pg, tmp_path):
    # Given events on three UTC days, one visitor's session crossing midnight
    events = [
        event("a1", "SA", "A", "page_view", at(23, 50, day=DAY1)),
        event("a2", "SA", "A", "page_view", at(0, 10)),
        event("b1", "SB", "B", "page_view", at(12, day=DAY3)),
    ]
    sessions = [session("SA", "A", at(23, 50, day=DAY1), 20 * 60), session("SB", "B", at(12, day=DAY3), 1)]
    # When they are loaded
    with pg.connect() as conn:
        load_run(conn, write_run(tmp_path / "r", events, sessions), RunRecord("r1"))
        # Then each day has its partition holding exactly that day's events
        assert _partitions(conn) == {"events_p20260301": 1, "events_p20260302": 1, "events_p20260303": 1}
        assert conn.query("SELECT event_id FROM events_p20260302") == [("a2",)]


def test_a_recomputed_session_that_moves_day_leaves_no_old_rows_anywhere(pg, tmp_path):
    # Given visitor V with a session starting 00:30 on 03-02 (partition 03-02), and W untouched
    run1 = write_run(
        tmp_path / "r1",
        [event("v2", "V-b", "V", "page_view", at(0, 30)), event("w1", "W-a", "W", "page_view", at(8))],
        [session("V-b", "V", at(0, 30), 1), session("W-a", "W", at(8), 1)],
    )
    with pg.connect() as conn:
        load_run(conn, run1, RunRecord("r1"))
    # When a late event at 23:55 on 03-01 merges into it: the session now starts (and is reported) on 03-01
    run2 = write_run(
        tmp_path / "r2",
        [
            event("v1", "V-a", "V", "page_view", at(23, 55, day=DAY1)),
            event("v2", "V-a", "V", "page_view", at(0, 30)),
        ],
        [session("V-a", "V", at(23, 55, day=DAY1), 35 * 60, n_events=2)],
        visitors=["V"],
    )
    with pg.connect() as conn:
        stats = load_run(conn, run2, RunRecord("r2"))
        # Then V's events exist once each, all pointing at the new session, in their own days' partitions
        assert conn.query("SELECT event_id, session_id FROM events WHERE anonymous_id = 'V' ORDER BY 1") == [
            ("v1", "V-a"),
            ("v2", "V-a"),
        ]
        assert _partitions(conn) == {"events_p20260301": 1, "events_p20260302": 2}
        assert conn.query("SELECT session_id, session_date FROM sessions WHERE anonymous_id = 'V'") == [
            ("V-a", date(2026, 3, 1))
        ]
        # And both the old and the new reporting day are affected; W is untouched
        assert stats.affected_days == ["2026-03-01", "2026-03-02"]
        assert conn.query("SELECT event_id FROM events WHERE anonymous_id = 'W'") == [("w1",)]


def test_reloading_into_partitions_is_identical(pg, tmp_path):
    # Given the store day loaded once
    events, sessions = store_day()
    files = write_run(tmp_path / "r", events, sessions)
    with pg.connect() as conn:
        load_run(conn, files, RunRecord("r1"))
        before, parts = warehouse_digest(conn), _partitions(conn)
        # When the same run is loaded again
        load_run(conn, files, RunRecord("r1"))
        # Then every table and every partition is as before
        assert warehouse_digest(conn) == before
        assert _partitions(conn) == parts


def test_an_event_id_already_held_by_another_visitor_is_replaced(pg, tmp_path):
    # Given event x1 loaded for visitor P
    with pg.connect() as conn:
        load_run(
            conn,
            one_view_run(tmp_path / "r1", "x1", "SP", "P"),
            RunRecord("r1"),
        )
        # When a later run brings the same event (same id and time) for visitor Q (a key the visitor delete misses)
        stats = load_run(
            conn,
            one_view_run(tmp_path / "r2", "x1", "SQ", "Q"),
            RunRecord("r2"),
        )
        # Then the event exists once, for Q, and the load succeeded through the key-replacing path
        assert conn.query("SELECT event_id, anonymous_id FROM events") == [("x1", "Q")]
        assert stats.events_loaded == 1


def test_migration_moves_existing_events_into_partitions(pg_database, tmp_path):
    # Given a warehouse at version 0004 (unpartitioned events) holding the store day (with 0008's run-cost columns
    # too, which today's loader records)
    older = tmp_path / "migrations"
    older.mkdir()
    for path in migrations_dir().glob("*.sql"):
        if int(path.name[:4]) <= 4 or int(path.name[:4]) == 8:
            shutil.copy(path, older / path.name)
    wh = open_warehouse(pg_database)
    events, sessions = store_day()
    with wh.connect() as conn:
        migrate(conn, older)
        load_run(conn, write_run(tmp_path / "r", events, sessions), RunRecord("r1"))
        rows_before = sorted(conn.query("SELECT event_id, session_id, event_ts FROM events"))
        # When the shipped migrations are applied
        assert migrate(conn) == [
            v for v in sorted({int(p.name[:4]) for p in migrations_dir().glob("*.sql")}) if v > 4 and v != 8
        ]
        # Then the same rows are in the partitioned table, and the views over it still answer
        assert conn.query("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass") == [("p",)]
        assert sorted(conn.query("SELECT event_id, session_id, event_ts FROM events")) == rows_before
        assert _partitions(conn) == {"events_p20260302": 17}
        assert conn.count("top_products") == 3


def test_a_duckdb_error_while_copying_surfaces_and_the_connection_goes_on(pg):
    with pg.connect() as conn:
        conn.create_temp("t", (("n", "INTEGER"),))
        # When the DuckDB side fails half way through producing rows
        with pytest.raises(duckdb.ConversionException):
            conn.load_select(
                "t",
                (("n", "INTEGER"),),
                "SELECT CAST(CASE WHEN i < 5000 THEN '1' ELSE 'x' END AS INTEGER) FROM range(10000) r(i)",
            )
        # Then nothing was copied, and the connection still works
        assert conn.count("t") == 0
        conn.load_select("t", (("n", "INTEGER"),), "SELECT CAST(i AS INTEGER) FROM range(3) r(i)")
        assert conn.count("t") == 3


def test_a_postgresql_error_while_copying_ends_the_copy_and_the_producer(pg, tmp_path):
    with pg.connect() as conn:
        conn.create_temp("t", (("n", "INTEGER NOT NULL"),))
        # When PostgreSQL refuses a row early in a long stream
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.load_select(
                "t",
                (("n", "INTEGER"),),
                "SELECT CASE WHEN i > 10 THEN CAST(i AS INTEGER) END FROM range(2000000) r(i)",
            )
        # Then the call returned (no thread left waiting) and the connection still works
        assert conn.count("t") == 0


def test_a_primary_key_collision_inside_one_copy_is_a_key_conflict(pg, tmp_path):
    with pg.connect() as conn:
        conn.create_temp("t", (("k", "VARCHAR PRIMARY KEY"),))
        with pytest.raises(KeyConflict):
            conn.load_select("t", (("k", "VARCHAR"),), "SELECT 'same' FROM range(2)")


def test_parquet_source_reads_files_with_different_columns(pg, tmp_path):
    # Given two event files, one lacking page_url
    narrow = [c for c in EVENT_COLUMNS if c[0] != "page_url"]
    from tests.unit.warehouse.factory import write_parquet

    a = write_parquet(
        tmp_path / "a.parquet", EVENT_COLUMNS, [event("e1", "S", "A", "page_view", at(9), path="/x")]
    )
    b = write_parquet(tmp_path / "b.parquet", narrow, [event("e2", "S", "A", "page_view", at(9))])
    with pg.connect() as conn:
        # When read through one source
        rows = conn.scan(
            f"SELECT event_id, page_url FROM ({parquet_source(conn, EVENT_COLUMNS, [a, b])}) ORDER BY 1"
        )
    # Then both rows come back, the missing column as null
    assert rows == [("e1", "https://shop.example/x"), ("e2", None)]


def _partition_shape(conn, name: str) -> tuple[list[str], list[str]]:
    """(index definitions without their names, CHECK constraints) of one partition."""
    indexes = sorted(
        d.split(" ON ", 1)[1]
        for (d,) in conn.query("SELECT indexdef FROM pg_indexes WHERE tablename = ?", [name])
    )
    checks = [
        c
        for (c,) in conn.query(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(?) AND contype = 'c'", [name]
        )
    ]
    return indexes, checks


def test_a_day_new_to_the_warehouse_gets_a_partition_with_the_parents_indexes(pg, tmp_path):
    # Given day 03-02 already holding visitor W
    with pg.connect() as conn:
        load_run(
            conn,
            one_view_run(tmp_path / "r1", "w1", "SW", "W", hour=8),
            RunRecord("r1"),
        )
        existing_shape = _partition_shape(conn, "events_p20260302")
        # When one run brings events of that day and of two days new to the warehouse
        events = [
            event("a1", "SA", "A", "page_view", at(23, 50, day=DAY1)),
            event("a2", "SA", "A", "page_view", at(0, 10)),
            event("b1", "SB", "B", "page_view", at(12, day=DAY3)),
            event("b2", "SB", "B", "view_item", at(12, 1, day=DAY3)),
        ]
        sessions = [
            session("SA", "A", at(23, 50, day=DAY1), 20 * 60),
            session("SB", "B", at(12, day=DAY3), 60),
        ]
        load_run(conn, write_run(tmp_path / "r2", events, sessions), RunRecord("r2"))
        # Then every row is in its day's partition, W's row kept
        assert _partitions(conn) == {"events_p20260301": 1, "events_p20260302": 2, "events_p20260303": 2}
        assert sorted(conn.query("SELECT event_id FROM events_p20260303")) == [("b1",), ("b2",)]
        # And the new partitions carry the same indexes as one created empty, and no leftover bounds check
        assert existing_shape[0]
        for name in ("events_p20260301", "events_p20260303"):
            indexes, checks = _partition_shape(conn, name)
            assert [i.replace(name, "P") for i in indexes] == [
                i.replace("events_p20260302", "P") for i in existing_shape[0]
            ]
            assert checks == []
        # And the loader's work table is gone
        assert conn.query("SELECT to_regclass('events_loading')") == [(None,)]
        # And the primary key holds on them
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(
                "INSERT INTO events (event_id, anonymous_id, event_type, event_ts, session_id)"
                " SELECT event_id, anonymous_id, event_type, event_ts, session_id FROM events WHERE event_id = 'b1'"
            )


def test_a_failed_load_that_created_a_day_leaves_no_partition_and_never_blocks_readers(pg, tmp_path):
    # Given the store day (03-02) loaded
    events, sessions = store_day()
    with pg.connect() as conn:
        load_run(conn, write_run(tmp_path / "r1", events, sessions), RunRecord("r1"))
        before, parts = warehouse_digest(conn), _partitions(conn)
    seen: list[int] = []

    def read_then_fail():
        # another connection reads events while the load holds its new partition (it would wait on a table lock)
        with pg.connect() as reader:
            reader.execute("SET lock_timeout = '20s'")
            seen.append(reader.count("events"))
        raise RuntimeError("injected failure before commit")

    # When a run bringing a new day (03-03) fails after its rows are written
    run = write_run(
        tmp_path / "r2",
        [event("n1", "SN", "N", "page_view", at(9, day=DAY3))],
        [session("SN", "N", at(9, day=DAY3), 1)],
    )
    with pg.connect() as conn, pytest.raises(RuntimeError, match="injected"):
        load_run(conn, run, RunRecord("r2"), before_commit=read_then_fail)
    # Then the reader saw the previous rows, and the warehouse has neither the rows nor the partition
    assert seen == [17]
    with pg.connect() as conn:
        assert warehouse_digest(conn) == before
        assert _partitions(conn) == parts
        assert conn.query("SELECT to_regclass('events_p20260303')") == [(None,)]


def test_a_key_repeated_inside_a_new_day_is_a_key_conflict(pg, tmp_path):
    # Given rows of a day without a partition, two of them with the same key
    rows = [event("d1", "S", "A", "page_view", at(9)), event("d1", "S", "A", "page_view", at(9))]
    path = tmp_path / "dup.parquet"
    from tests.unit.warehouse.factory import write_parquet

    write_parquet(path, EVENT_COLUMNS, rows)
    with pg.connect() as conn:
        # When they are loaded into events
        with pytest.raises(KeyConflict), conn.transaction():
            conn.load_events(WAREHOUSE_EVENT_COLUMNS, parquet_source(conn, WAREHOUSE_EVENT_COLUMNS, [path]))
        # Then nothing is left behind
        assert conn.query("SELECT to_regclass('events_p20260302')") == [(None,)]


def test_connections_have_a_connect_timeout_and_server_side_timeouts(pg):
    # Given a warehouse whose DSN says nothing about timeouts
    with pg.connect() as conn:
        # Then the connection waited at most CONNECT_TIMEOUT_SECONDS for the server, and the session has limits
        assert conn._conn.info.get_parameters().get("connect_timeout") == str(CONNECT_TIMEOUT_SECONDS)
        settings = dict(
            conn.query(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings"
                " WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout')"
            )
        )
    assert settings == {"statement_timeout": "840000ms", "idle_in_transaction_session_timeout": "300000ms"}


def test_timeouts_the_dsn_sets_are_kept(pg_database):
    # Given a DSN with its own connect timeout and statement timeout
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(pg_database)
    params.update(connect_timeout="3", options="-c statement_timeout=1h")
    with open_warehouse(make_conninfo(**params)).connect() as conn:
        # Then they win over the defaults, and the unset one still gets its default
        assert conn._conn.info.get_parameters().get("connect_timeout") == "3"
        assert conn.query("SHOW statement_timeout") == [("1h",)]
        assert conn.query("SHOW idle_in_transaction_session_timeout") == [("5min",)]


def test_a_key_collision_on_an_existing_day_is_replaced_while_a_new_day_is_built(pg, tmp_path):
    # Given event x1 loaded for visitor P on 03-02
    with pg.connect() as conn:
        load_run(
            conn,
            one_view_run(tmp_path / "r1", "x1", "SP", "P"),
            RunRecord("r1"),
        )
        # When one run brings the same event for visitor Q (03-02 exists: its rows go through the loader's default
        # partition, the same COPY that builds 03-03, new, for visitor N)
        load_run(
            conn,
            write_run(
                tmp_path / "r2",
                [
                    event("x1", "SQ", "Q", "page_view", at(9)),
                    event("n1", "SN", "N", "page_view", at(9, day=DAY3)),
                ],
                [session("SQ", "Q", at(9), 1), session("SN", "N", at(9, day=DAY3), 1)],
            ),
            RunRecord("r2"),
        )
        # Then the colliding key was replaced and both days hold their rows, with nothing of the loader left
        assert conn.query("SELECT event_id, anonymous_id FROM events ORDER BY 1") == [
            ("n1", "N"),
            ("x1", "Q"),
        ]
        assert _partitions(conn) == {"events_p20260302": 1, "events_p20260303": 1}
        assert conn.query("SELECT to_regclass('events_loading'), to_regclass('events_loading_rest')") == [
            (None, None)
        ]
