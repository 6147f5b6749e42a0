"""The set-based engine (DuckDB) judges exactly as the event-by-event Python judge, row for row and hash for hash."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.core.ids import id_hash
from clickstream.validate.engine import judge_to_parquet, judge_with_engine
from clickstream.validate.enrich import row_as_dict
from clickstream.validate.judge import JudgeOptions, judge_object
from clickstream.validate.writer import write_parquet
from tests.unit.validate.helpers import T0, event, raw_object, record
from tests.unit.validate.test_properties import objects

OPTIONS = JudgeOptions(
    lookback=timedelta(hours=72),
    internal_networks=("10.0.0.0/8",),
    tombstones=frozenset({id_hash("anon-gone")}),
)


def _norm(judgement):
    rows = []
    for row in judgement.rows:
        d = row_as_dict(row)
        for key in ("items", "properties"):  # the same JSON value; key order may differ
            d[key] = json.loads(d[key]) if d[key] is not None else None
        rows.append(d)
    return rows


def _assert_same(data: bytes, options: JudgeOptions = OPTIONS, *, engine: str | None = None) -> None:
    expected = judge_object(data, source_key="raw/k", options=options)
    got = judge_with_engine(data, source_key="raw/k", options=options)
    if engine is not None:
        assert got.engine == engine
    assert (got.records, got.events_in, got.validated, got.duplicates, got.max_received_at) == (
        expected.records,
        expected.events_in,
        expected.validated,
        expected.duplicates,
        expected.max_received_at,
    )
    assert _norm(got) == _norm(expected)
    assert got.quarantine == expected.quarantine


def _awkward_records() -> list:
    base = event("purchase", properties={"tax": 90.55, "shipping": 0.0, "n": 3, "ok": True, "x": None})
    retry = dict(base)
    conflict = dict(base, properties={"tax": 1.0})
    items = [
        {"product_id": "MON-2", "name": 'Dell 32" 6K', "price": 2899, "quantity": 2},
        {"product_id": "ACC-1", "brand": "Incase", "price": 1e-5},
    ]
    return [
        record([base, event("view_item", items=items), event(page={"url": "https://x.example/?e=a@b.io"})]),
        record([retry, conflict], received_at=T0 + timedelta(seconds=9)),
        record([event(experiment="B"), event(properties={"nested": {"a": 1}}), event(value=5.0)]),
        record(
            [{k: v for k, v in event().items() if k != "page"}, event("login")],
            context={
                "page": {
                    "url": "https://shop.example.com/deals?utm_source=news&utm_medium=email",
                    "title": "D",
                },
                "client_session_id": "s-1",
                "utm": {"source": "ignored"},
            },
            ip="10.1.2.3",
            user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ),
        record([event(at=T0 - timedelta(hours=80))]),  # too late
        record([event()], anonymous_id="anon-gone"),  # erased
        record(
            [event(occurred_at="2026-03-02T10:00:00.123456+05:30", page={"url": "https://s.example/\u00e9"})]
        ),
        json.dumps(record([event()])) + json.dumps(record([event()])),  # glued
        "{not json",
        record([event(title_tab="a\tb", page={"url": "https://s.example/", "title": "tab\there \u2028 ok"})]),
        record([event(items=[{"product_id": "A", "price": -1}]), event(value=float("1e20"), currency="EUR")]),
        {**record([event()]), "received_at": "2026-03-02T10:00:00", "app_id": ""},  # bad envelope
    ]


def _awkward_object() -> bytes:
    return raw_object(*_awkward_records())


def _parseable(lines: list) -> list:
    """The lines DuckDB's JSON reader takes: JSON objects, one per line, each with an events list."""
    return [line for line in lines if isinstance(line, dict)]


def test_engine_equals_the_python_judge_on_awkward_input():
    # Given an object with lines DuckDB's reader refuses / Then it is judged by Python, the same way
    _assert_same(_awkward_object(), engine="python")


def test_engine_judges_awkward_but_parseable_input_set_wise_and_the_same():
    # Given the awkward records without the lines that are not JSON objects
    data = raw_object(*_parseable(_awkward_records()))
    # When judged by the engine / Then DuckDB did the work, with the same outcome as the Python judge
    _assert_same(data, engine="duckdb")


def test_records_with_tokens_duckdb_reads_leniently_go_to_python_whole():
    # Given records with a trailing comma and a NaN, beside plain ones (a trailing comma DuckDB would accept)
    good = json.dumps(record([event()]), separators=(",", ":"))
    trailing = good[:-2] + ",]}"
    nan = json.dumps(record([event(properties={"x": float("nan")})]), separators=(",", ":"))
    spaced = good[:-2] + ", \t]}"
    data = "\n".join([good, trailing, nan, spaced, "", "   ", good]).encode()
    # When judged / Then by DuckDB for the object, by Python for those records, the same as the Python judge
    _assert_same(data, engine="duckdb")
    got = judge_with_engine(data, source_key="raw/k", options=OPTIONS)
    assert [q["source_line"] for q in got.quarantine] == [2, 4]
    assert {q["reason"] for q in got.quarantine} == {"unparseable_record"}


def test_engine_writes_the_same_parquet_as_the_python_rows(tmp_path):
    # Given the awkward object's parseable records judged both ways
    data = raw_object(*_parseable(_awkward_records()))
    expected = judge_object(data, source_key="raw/k", options=OPTIONS)
    write_parquet(expected.rows, tmp_path / "expected.parquet")
    # When the engine writes its Parquet directly
    got = judge_to_parquet(
        data, source_key="raw/k", options=OPTIONS, path=tmp_path / "got.parquet", min_bytes=0
    )
    # Then the files hold the same rows (JSON columns compared as JSON)
    assert got.engine == "duckdb"
    assert got.validated == expected.validated
    sql = "SELECT * EXCLUDE (items, properties), items::JSON::VARCHAR, properties::JSON::VARCHAR FROM '{}'"
    con = duckdb.connect()
    a = con.execute(sql.format(tmp_path / "expected.parquet")).fetchall()
    b = con.execute(sql.format(tmp_path / "got.parquet")).fetchall()
    assert len(a) == len(b) == got.validated
    assert [r[:-2] for r in a] == [r[:-2] for r in b]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects(), st.booleans())
def test_engine_equals_the_python_judge_for_any_mix(case, gzipped):
    lines, _, _ = case
    data = raw_object(*lines)
    if gzipped:
        import gzip

        data = gzip.compress(data)
    _assert_same(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects(), st.booleans())
def test_engine_judges_any_parseable_mix_set_wise_and_the_same(case, gzipped):
    # Given any mix of events in records DuckDB's reader takes (no garbage lines)
    lines = _parseable(case[0])
    if not lines:
        lines = [record([event()])]
    data = raw_object(*lines)
    if gzipped:
        import gzip

        data = gzip.compress(data)
    # Then the set-based path judges it, exactly as the Python judge
    _assert_same(data, engine="duckdb")


def test_small_objects_take_the_python_judge_and_write_the_same_parquet(tmp_path):
    # Given an object below the engine's size threshold, and the same object with the threshold at zero
    data = raw_object(*_parseable(_awkward_records()))
    small = judge_to_parquet(data, source_key="raw/k", options=OPTIONS, path=tmp_path / "py.parquet")
    large = judge_to_parquet(
        data, source_key="raw/k", options=OPTIONS, path=tmp_path / "db.parquet", min_bytes=len(data)
    )
    # Then the small one was judged event by event, the other set-wise, with the same outcome and rows
    assert (small.engine, large.engine) == ("python", "duckdb")
    assert (small.validated, small.duplicates, small.quarantine) == (
        large.validated,
        large.duplicates,
        large.quarantine,
    )
    sql = "SELECT * EXCLUDE (items, properties), items::JSON::VARCHAR, properties::JSON::VARCHAR FROM '{}'"
    con = duckdb.connect()
    a = con.execute(sql.format(tmp_path / "py.parquet")).fetchall()
    b = con.execute(sql.format(tmp_path / "db.parquet")).fetchall()
    assert len(a) == small.validated and [r[:-2] for r in a] == [r[:-2] for r in b]
