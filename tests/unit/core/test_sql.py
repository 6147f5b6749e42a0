"""core.sql: the .sql file loader with named parameters, literals and identifiers."""

from __future__ import annotations

from importlib import resources

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.core import sql


def test_named_parameters_bind_in_order_of_appearance_and_repeat():
    query = sql.Query("q", "SELECT :a, :b, :a WHERE x = :b")
    assert query.parameters == ("a", "b")
    assert query.bind({"a": 1, "b": "two"}) == ("SELECT ?, ?, ? WHERE x = ?", [1, "two", 1, "two"])


def test_casts_quoted_text_and_comments_are_not_parameters():
    query = sql.Query("q", "SELECT x::DATE, ':not_a_name', \"col:umn\", :real FROM t")
    assert query.parameters == ("real",)
    assert query.bind({"real": 5}) == ("SELECT x::DATE, ':not_a_name', \"col:umn\", ? FROM t", [5])


def test_a_list_binds_one_value_per_item_and_an_empty_one_matches_nothing():
    query = sql.Query("q", "SELECT n FROM range(5) t(n) WHERE n IN (:ns)")
    con = duckdb.connect()
    assert [r[0] for r in con.execute(*query.bind({"ns": [1, 3]})).fetchall()] == [1, 3]
    assert query.bind({"ns": []}) == ("SELECT n FROM range(5) t(n) WHERE n IN (?)", [None])
    assert con.execute(*query.bind({"ns": []})).fetchall() == []


def test_an_array_binds_as_one_list_value():
    query = sql.Query("q", "SELECT unnest(:xs::VARCHAR[]) AS x")
    text, values = query.bind({"xs": sql.array(["a", "b"])})
    assert (text, values) == ("SELECT unnest(?::VARCHAR[]) AS x", [["a", "b"]])
    assert duckdb.connect().execute(text, values).fetchall() == [("a",), ("b",)]


def test_a_missing_or_unknown_parameter_is_refused_by_name():
    query = sql.Query("q.sql", "SELECT :a")
    with pytest.raises(sql.SqlError, match=r"missing parameter.*a"):
        query.bind({})
    with pytest.raises(sql.SqlError, match=r"unknown parameter.*typo"):
        query.bind({"a": 1, "typo": 2})
    with pytest.raises(sql.SqlError, match="positional"):
        sql.Query("q.sql", "SELECT ?").bind({})


def test_load_reads_a_packaged_file_without_its_comments():
    query = sql.load("clickstream.warehouse", "kpis")
    assert query.name == "clickstream.warehouse/sql/kpis.sql"
    assert "--" not in query.text and not query.text.rstrip().endswith(";")
    assert set(query.parameters) == {"currency", "all_days", "days", "previous_days", "by_day"}
    assert sql.load("clickstream.warehouse", "kpis") is query  # read once
    with pytest.raises(sql.SqlError, match=r"no SQL file clickstream\.warehouse/sql/nope\.sql"):
        sql.load("clickstream.warehouse", "nope")


@pytest.mark.parametrize(
    ("package", "name"),
    [
        (package, path.stem)
        for package in ("clickstream.warehouse", "clickstream.report", "clickstream.sessionize")
        for path in resources.files(package).joinpath("sql").iterdir()
        if path.name.endswith(".sql")
    ],
)
def test_every_packaged_sql_file_loads_with_named_parameters_only(package, name):
    query = sql.load(package, name)
    text, values = query.bind(dict.fromkeys(query.parameters, 1))
    assert (
        text.count("?")
        == len(values)
        == len(query.parameters) + sum(query.text.count(f":{p}") - 1 for p in query.parameters)
    )


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_literal_and_identifier_round_trip_any_text_through_duckdb(text):
    # Given any text, quotes and control characters included (NUL is not valid in a DuckDB string)
    text = text.replace("\x00", "")
    con = duckdb.connect()
    # Then a literal reads back as the text, and an identifier names a column of exactly that name
    assert con.execute(f"SELECT {sql.literal(text)}").fetchone()[0] == text
    if text:
        assert con.execute(f"SELECT 1 AS {sql.identifier(text)}").description[0][0] == text
