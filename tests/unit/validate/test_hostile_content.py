"""Content can never fail an object: a control character in any text field, an escaped lone surrogate, a record
nested too deeply, on the small-object path (the Python judge) and the engine's (DuckDB) alike. Each hostile event
is validated with its text normalized (or quarantined with its reason and field path), and every other caller's
events in the same object are validated as if nothing had happened."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from clickstream.core.schema import VALIDATED_COLUMN_NAMES
from clickstream.validate.engine import judge_to_parquet, judge_with_engine
from clickstream.validate.judge import JudgeOptions, judge_object
from clickstream.validate.text import clean_text
from tests.unit.validate.helpers import event, raw_object, record

OPTIONS = JudgeOptions(lookback=timedelta(hours=72))
PATHS = {"python": None, "duckdb": 0}  # judge_to_parquet's min_bytes: default (small object) / engine-sized


def _others() -> list[dict]:
    """Two other callers' records: what must survive whatever the hostile record holds."""
    return [
        record([event(), event("add_to_cart")], anonymous_id="other-1"),
        record([event("view_item")], anonymous_id="other-2", user_agent="curl/8.5.0"),
    ]


def _judge(data: bytes, path: str, tmp: Path):
    parquet = tmp / f"{path}.parquet"
    judgement = judge_to_parquet(
        data, source_key="raw/k", options=OPTIONS, path=parquet, min_bytes=PATHS[path]
    )
    assert judgement.engine == path
    rows = []
    if judgement.validated:
        con = duckdb.connect()
        rows = [
            dict(zip(VALIDATED_COLUMN_NAMES, r, strict=True))
            for r in con.execute(f"SELECT * FROM read_parquet('{parquet}')").fetchall()
        ]
    return judgement, rows


CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko){}Chrome/124.0.0.0 Safari/537.36"
)


def _purchase(**fields) -> dict:
    return event("purchase", **fields)


# (what to put the character in, how to build the hostile record, the column that shows it, its expected text)
def _cases(ch: str):
    url = "https://shop.example.com/p"
    return {
        "page.title": (
            record([event(page={"url": url, "title": f"Home{ch}Page"})]),
            "page_title",
            clean_text(f"Home{ch}Page"),
        ),
        "page.referrer": (
            record([event(page={"url": url, "referrer": f"https://ref.example/{ch}x"})]),
            "page_referrer",
            clean_text(f"https://ref.example/{ch}x"),
        ),
        "items.name": (
            record([_purchase(items=[{"product_id": "LAP-1", "name": f"Zen{ch}book", "price": 1.0}])]),
            "product_name",
            clean_text(f"Zen{ch}book"),
        ),
        "items.category": (
            record([_purchase(items=[{"product_id": "LAP-1", "category": f"Lap{ch}tops", "price": 1.0}])]),
            "category",
            clean_text(f"Lap{ch}tops"),
        ),
        "items.product_id": (
            record([_purchase(items=[{"product_id": f"LAP{ch}1", "price": 1.0}])]),
            "product_id",
            clean_text(f"LAP{ch}1"),
        ),
        "transaction_id": (
            record([_purchase(transaction_id=f"T{ch}1")]),
            "transaction_id",
            clean_text(f"T{ch}1"),
        ),
        "context.utm": (
            record([event()], context={"utm": {"source": f"news{ch}letter", "medium": "email"}}),
            "utm_source",
            clean_text(f"news{ch}letter"),
        ),
        "page.url utm (percent-encoded)": (
            record([event(page={"url": f"{url}?utm_source=a%{ord(ch[0]):02X}b&utm_medium=cpc"})]),
            "utm_source",
            clean_text(f"a{ch[0]}b"),
        ),
        "user_agent": (
            record([event()], user_agent=CHROME.format(ch)),
            "user_agent",
            clean_text(CHROME.format(ch)),
        ),
        "client_session_id": (
            record([event(client_session_id=f"s{ch}1")]),
            "client_session_id",
            clean_text(f"s{ch}1"),
        ),
    }


FIELDS = list(_cases("\r"))


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("field", FIELDS)
def test_a_carriage_return_in_any_text_field_is_normalized_and_costs_no_one_anything(field, path, tmp_path):
    # Given an object of three callers' records, one with a carriage return in ``field``
    hostile, column, expected = _cases("\r")[field]
    data = raw_object(_others()[0], hostile, _others()[1])
    # When the object is judged on the small-object path or the engine's
    judgement, rows = _judge(data, path, tmp_path)
    # Then it finishes: every event is validated, the ledger balances, and the Parquet reads back
    assert (judgement.events_in, judgement.validated, judgement.quarantine) == (4, 4, [])
    judgement.check_balance()
    assert {r["anonymous_id"] for r in rows} == {"other-1", "other-2", "anon-1"}
    # And the hostile value is stored with the carriage return replaced by a space
    [row] = [r for r in rows if r["anonymous_id"] == "anon-1"]
    assert row[column] == expected
    if column == "user_agent":  # and what the parsers read
        assert (row["browser"], row["os"], row["device_type"]) == ("Chrome", "Linux", "desktop")
    assert "\r" not in "".join(str(v) for v in row.values())


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("ch", ["\r\n", "\x0b", "\x1f", "\x00", "\x7f", "\x85", "\t"])
def test_every_control_character_is_normalized_the_same_way_on_both_paths(ch, path, tmp_path):
    # Given one record with the character in every text field at once, beside another caller's
    hostile = [case[0] for name, case in _cases(ch).items() if name != "user_agent"]
    events = [e for r in hostile for e in r["events"]]
    data = raw_object(record(events, user_agent=CHROME.format(ch)), _others()[1])
    # When judged
    judgement, rows = _judge(data, path, tmp_path)
    # Then every event is validated and no stored text holds a control character (JSON columns escape them)
    assert (judgement.validated, judgement.quarantine) == (len(events) + 1, [])
    text = [v for r in rows for k, v in r.items() if isinstance(v, str) and k not in ("items", "properties")]
    assert not any(c < " " or "\x7f" <= c <= "\x9f" for value in text for c in value)


def test_the_engine_and_the_judge_normalize_identically():
    # Given every hostile case in one object, judged by the engine and by the Python judge
    events = [e for ch in ("\r", "\x1f", "\x85") for case in _cases(ch).values() for e in case[0]["events"]]
    data = raw_object(record(events, user_agent="A\rB\x85C"), *_others())
    expected = judge_object(data, source_key="raw/k", options=OPTIONS)
    got = judge_with_engine(data, source_key="raw/k", options=OPTIONS)
    # Then the rows are the same, value for value
    assert got.engine == "duckdb"
    assert [r[:27] + r[29:] for r in got.rows] == [r[:27] + r[29:] for r in expected.rows]
    assert got.validated == expected.validated == len(events) + 3


@pytest.mark.parametrize("path", list(PATHS))
def test_an_identifier_with_a_control_character_is_quarantined_with_its_path_and_costs_no_one(path, tmp_path):
    # Given a record whose app_id (tp2 aid) holds a carriage return and one whose anonymous_id holds a
    # zero-width space, between other callers' records
    data = raw_object(
        _others()[0],
        record([event(), event()], app_id="shop\rweb", source="snowplow"),
        record([event()], anonymous_id="anon\u200b1"),
        _others()[1],
    )
    # When judged
    judgement, rows = _judge(data, path, tmp_path)
    # Then their events are quarantined as schema violations naming the field; the others are validated
    assert judgement.validated == 3 and judgement.quarantined == {"schema_violation": 3}
    details = [q["detail"] for q in judgement.quarantine]
    assert details == ["envelope.app_id: must be printable text (no control characters)"] * 2 + [
        "envelope.anonymous_id: must be printable text (no control characters)"
    ]
    assert {r["anonymous_id"] for r in rows} == {"other-1", "other-2"}


def _with_escape(rec: dict, placeholder: str, escape: str) -> str:
    return json.dumps(rec, separators=(",", ":")).replace(placeholder, escape)


@pytest.mark.parametrize("path", list(PATHS))
def test_escaped_lone_surrogates_become_the_replacement_character(path, tmp_path):
    # Given records whose title, user agent, property and items carry lone surrogates escaped in the JSON text
    title = _with_escape(
        record([event(page={"url": "https://s.example/", "title": "aXXXXb"})]), "XXXX", "\\ud800"
    )
    agent = _with_escape(record([event()], user_agent="Mozilla/5.0 YYYY"), "YYYY", "\\udc00")
    props = _with_escape(record([event(properties={"k": "ZZZZ"})]), "ZZZZ", "\\udfff\\ud800")
    data = raw_object(_others()[0], title, agent, props, _others()[1])
    # When judged
    judgement, rows = _judge(data, path, tmp_path)
    # Then each is validated with U+FFFD in place of the surrogate, nothing quarantined
    assert (judgement.validated, judgement.quarantine) == (6, [])
    by_line = {r["source_line"]: r for r in rows}
    assert by_line[2]["page_title"] == "a\ufffdb"
    assert by_line[3]["user_agent"] == "Mozilla/5.0 \ufffd"
    assert json.loads(by_line[4]["properties"]) == {"k": "\ufffd\ufffd"}


@pytest.mark.parametrize("path", list(PATHS))
def test_a_quarantined_event_with_a_lone_surrogate_is_kept_as_valid_json(path, tmp_path):
    # Given an invalid event whose bad field holds an escaped lone surrogate
    bad = _with_escape(record([event(event_id="QQQQ")]), "QQQQ", "\\ud800")
    data = raw_object(_others()[0], bad)
    # When judged and its quarantine written
    from clickstream.validate.writer import quarantine_jsonl

    judgement, _ = _judge(data, path, tmp_path)
    body = quarantine_jsonl(judgement.quarantine, "t")
    # Then the event is quarantined with its reason and path, and the quarantine line is UTF-8 JSON
    [entry] = [json.loads(line) for line in body.decode("utf-8").splitlines()]
    assert entry["reason"] == "schema_violation" and entry["detail"].startswith("event_id:")
    assert entry["event"]["event_id"] == "\ufffd"


@pytest.mark.parametrize("path", list(PATHS))
def test_a_record_nested_too_deeply_is_unparseable_not_a_failed_object(path, tmp_path):
    # Given a line nested a hundred thousand levels deep between good records
    deep = '{"events":' + "[" * 100_000 + "]" * 100_000 + "}"
    data = raw_object(_others()[0], deep, _others()[1])
    # When judged / Then that line is one unparseable record and the others are validated
    judgement, rows = _judge(data, path, tmp_path)
    assert judgement.validated == 3 and judgement.quarantined == {"unparseable_record": 1}
    assert len(rows) == 3


def test_a_value_of_tens_of_megabytes_is_stored_whole(tmp_path):
    # Given a large object DuckDB's reader refuses (a line that is not JSON), so the Python judge takes it whole,
    # holding a record whose user id (no limit of its own: it comes from the token) is 20 MB of 2-byte characters
    long_one = json.dumps(record([event()], user_id="é" * 10_000_000), ensure_ascii=False)
    data = raw_object("{not json", long_one, _others()[1])
    parquet = tmp_path / "v.parquet"
    # When judged
    judgement = judge_to_parquet(data, source_key="raw/k", options=OPTIONS, path=parquet)
    # Then the row holds it whole, and the line that is not JSON is the one thing quarantined
    assert (judgement.engine, judgement.validated, judgement.quarantined) == (
        "python",
        2,
        {"unparseable_record": 1},
    )
    con = duckdb.connect()
    assert con.execute(f"SELECT max(length(user_id)) FROM read_parquet('{parquet}')").fetchone() == (
        10_000_000,
    )
