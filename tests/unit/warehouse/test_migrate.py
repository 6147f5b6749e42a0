"""The migration runner: naming rules, apply once, refuse edited migrations (DuckDB; PostgreSQL in integration)."""

from __future__ import annotations

import pytest

from clickstream.adapters.warehouse import WarehouseError, open_warehouse
from clickstream.core.schema import SESSION_COLUMNS, USER_COLUMNS, WAREHOUSE_EVENT_COLUMNS
from clickstream.warehouse.migrate import applied, discover, migrate


def _write(directory, files: dict[str, str]):
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


def test_shipped_migrations_have_one_text_per_engine_in_version_order():
    duck, pg = discover("duckdb"), discover("postgresql")
    assert [m.version for m in duck] == [m.version for m in pg] == sorted(m.version for m in duck)
    assert duck[0].name == "init" and duck[0].sql == pg[0].sql
    differing = [m.version for m, n in zip(duck, pg, strict=True) if m.sql != n.sql]
    # only the JSON expansion of product_events, PostgreSQL's partitioned events and the column drop (DuckDB
    # rebuilds the indexed table) are engine-specific
    assert differing == [3, 5, 6]


def test_engine_specific_version_uses_that_engines_file(tmp_path):
    d = _write(
        tmp_path / "m",
        {"0001_a.sql": "SELECT 1;", "0002_b.duckdb.sql": "-- d", "0002_b.postgresql.sql": "-- p"},
    )
    assert [m.sql for m in discover("duckdb", d)] == ["SELECT 1;", "-- d"]
    assert [m.sql for m in discover("postgresql", d)] == ["SELECT 1;", "-- p"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.duckdb.sql": "--"}, "no file for postgresql"),
        ({"0001_a.sql": "--", "0001_b.sql": "--"}, "defined twice"),
        ({"0001_a.sql": "--", "0001_a.duckdb.sql": "--"}, "both shared and engine-specific"),
        ({"1_a.sql": "--"}, "does not follow"),
    ],
)
def test_bad_migration_folders_are_refused(tmp_path, files, message):
    with pytest.raises(WarehouseError, match=message):
        discover("duckdb", _write(tmp_path / "m", files))


def test_migrations_apply_once_and_record_their_versions(tmp_path):
    # Given a fresh DuckDB warehouse
    wh = open_warehouse(f"duckdb://{tmp_path}/w.duckdb")
    with wh.connect() as conn:
        # When migrated twice
        first, second = migrate(conn), migrate(conn)
        # Then every version is applied the first time only, and recorded with its checksum
        assert first == [m.version for m in discover("duckdb")]
        assert second == []
        assert set(applied(conn)) == set(first)


def test_a_new_migration_is_applied_on_top(tmp_path):
    d = _write(tmp_path / "m", {"0001_a.sql": "CREATE TABLE a (x INTEGER);"})
    with open_warehouse(f"duckdb://{tmp_path}/w.duckdb").connect() as conn:
        assert migrate(conn, d) == [1]
        _write(d, {"0002_b.sql": "CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (1), (2);"})
        assert migrate(conn, d) == [2]
        assert conn.query("SELECT count(*) FROM b") == [(2,)]


def test_a_failing_migration_applies_nothing_of_itself(tmp_path):
    d = _write(
        tmp_path / "m",
        {
            "0001_a.sql": "CREATE TABLE a (x INTEGER);",
            "0002_b.sql": "CREATE TABLE b (y INTEGER); SELECT * FROM missing_table;",
        },
    )
    with open_warehouse(f"duckdb://{tmp_path}/w.duckdb").connect() as conn:
        with pytest.raises(Exception, match="missing_table"):
            migrate(conn, d)
        assert set(applied(conn)) == {1}
        assert conn.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'b'") == [(0,)]


def test_an_applied_migration_edited_afterwards_is_refused(tmp_path):
    d = _write(tmp_path / "m", {"0001_a.sql": "CREATE TABLE a (x INTEGER);"})
    with open_warehouse(f"duckdb://{tmp_path}/w.duckdb").connect() as conn:
        migrate(conn, d)
        _write(d, {"0001_a.sql": "CREATE TABLE a (x INTEGER, y INTEGER);"})
        with pytest.raises(WarehouseError, match="changed after it was applied"):
            migrate(conn, d)


_TYPES = {
    "VARCHAR": "VARCHAR",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    "DOUBLE": "DOUBLE",
    "INTEGER": "INTEGER",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
}


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("events", WAREHOUSE_EVENT_COLUMNS),
        ("sessions", (*SESSION_COLUMNS, ("session_date", "DATE"))),
        ("users", USER_COLUMNS),
    ],
)
def test_tables_follow_the_schema_contract(tmp_path, table, columns):
    with open_warehouse(f"duckdb://{tmp_path}/w.duckdb").connect() as conn:
        migrate(conn)
        got = conn.query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        )
    assert [(name, _TYPES[typ]) for name, typ in got] == list(columns)


def test_a_warehouse_migrated_before_0001s_comment_was_reworded_still_migrates(tmp_path):
    # Given a warehouse whose 0001 row holds the checksum of the text applied by earlier releases
    wh = open_warehouse(f"duckdb://{tmp_path}/w.duckdb")
    with wh.connect() as conn:
        migrate(conn)
        conn.execute(
            "UPDATE schema_migrations SET checksum = ? WHERE version = 1",
            ["96e528f7d4de4ded005f21cccfefa02c20419bf3219ade4aa7d033bd82e2b172"],
        )
        # When migrated again, Then nothing is refused and nothing is applied
        assert migrate(conn) == []
        # But any other checksum is still an edited migration
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(WarehouseError, match="changed after it was applied"):
            migrate(conn)
