"""Binary COPY into PostgreSQL: every column type the warehouse loads comes back exactly as DuckDB read it."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.warehouse.engine import WarehouseError, binary_copy_select, open_warehouse, parquet_source

pytestmark = pytest.mark.postgres

COLUMNS = (
    ("s", "VARCHAR"),
    ("ts", "TIMESTAMPTZ"),
    ("d", "DOUBLE"),
    ("i", "INTEGER"),
    ("b", "BIGINT"),
    ("flag", "BOOLEAN"),
    ("day", "DATE"),
)
PG_TYPES = "s VARCHAR, ts TIMESTAMPTZ, d DOUBLE PRECISION, i INTEGER, b BIGINT, flag BOOLEAN, day DATE"


def _parquet(path: Path, rows: list[tuple]) -> Path:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE t (s VARCHAR, ts TIMESTAMPTZ, d DOUBLE, i INTEGER, b BIGINT, flag BOOLEAN, day DATE)"
    )
    if rows:
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()
    return path


def _load(pg_database: str, path: Path) -> list[tuple]:
    with open_warehouse(pg_database).connect() as conn:
        conn.create_temp(
            "t", tuple((name, typ.replace("DOUBLE", "DOUBLE PRECISION")) for name, typ in COLUMNS)
        )
        conn.load_select("t", COLUMNS, parquet_source(conn, COLUMNS, [path]))
        return conn.query("SELECT s, ts, d, i, b, flag, day FROM t ORDER BY i")


def _same_double(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a):
        return math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


HOSTILE = "\x00\x01\t\n\r\x1b\x7f\x85\u2028\ufeff\\\",'|;\U0001f6d2\U00010348 é"

text = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(HOSTILE) | st.characters(codec="utf-8"), max_size=40),
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
    ),
)
rows = st.lists(
    st.tuples(
        text,
        st.none() | instants,
        st.none() | st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(2**31), 2**31 - 1),
        st.none() | st.integers(-(2**63), 2**63 - 1),
        st.none() | st.booleans(),
        st.none() | st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    ),
    max_size=12,
    unique_by=lambda r: r[3],
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows)
def test_every_type_round_trips_exactly(pg_database: str, tmp_path_factory, rows: list[tuple]) -> None:
    # Given rows of every loaded type, hostile text and extreme values included, in a Parquet file
    path = _parquet(tmp_path_factory.mktemp("bin") / "rows.parquet", rows)
    # When they are COPYed in binary into PostgreSQL
    got = _load(pg_database, path)
    # Then each value is what DuckDB holds, except U+0000, which PostgreSQL text cannot hold (U+FFFD instead)
    want = sorted(rows, key=lambda r: r[3])
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == (w[0].replace("\x00", "\ufffd") if w[0] is not None else None)
        assert g[1] == w[1]  # the same instant, whatever zone it was written in
        assert _same_double(g[2], w[2]), (g[2], w[2])
        assert g[3:] == w[3:]


def test_microseconds_zones_nulls_and_decimals_survive(pg_database: str, tmp_path: Path) -> None:
    # Given a row with a microsecond timestamp written in another zone, NULLs, and a DECIMAL read as DOUBLE
    ts = datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    path = tmp_path / "r.parquet"
    con.execute(
        f"COPY (SELECT 'Grüße 🛒' AS s, TIMESTAMPTZ '{ts.isoformat()}' AS ts, CAST(1234.56 AS DECIMAL(18, 2)) AS d,"
        f" 7 AS i, NULL::BIGINT AS b, NULL::BOOLEAN AS flag, DATE '2000-01-01' AS day) TO '{path}' (FORMAT parquet)"
    )
    con.close()
    # When loaded
    ((s, got_ts, d, i, b, flag, day),) = _load(pg_database, path)
    # Then the instant keeps its microseconds, the decimal is the double DuckDB makes of it, and NULLs stay NULL
    assert (s, got_ts, d, i, b, flag, day) == (
        "Grüße 🛒",
        ts,
        float(Decimal("1234.56")),
        7,
        None,
        None,
        date(2000, 1, 1),
    )
    assert got_ts.astimezone(UTC) == datetime(2026, 3, 3, 4, 59, 59, 999999, tzinfo=UTC)


def test_a_type_without_an_encoding_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(WarehouseError, match="no binary COPY encoding"):
        binary_copy_select((("x", "INTERVAL"),), "SELECT 1")
