"""The Snowplow tracker protocol route: batches captured from the real browser tracker, through ingest and
validation (and the sessionizer), plus the mapping's edge cases."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from clickstream.core.config import Settings
from clickstream.ingest.snowplow import custom_type, decode_base64url, map_batch, map_event
from clickstream.validate.enrich import row_as_dict
from clickstream.validate.judge import JudgeOptions, judge_object
from tests.fakes.sink import MemorySink

from .conftest import SUB, call, captured_event, load_capture, records_of

CAPTURES = ("tp2_plain_contexts", "tp2_base64_contexts")
SPOOFED = "spoofed-user@example.com"


def _ms_iso(ms: str | int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))


def _ingest(name: str) -> tuple[dict, MemorySink]:
    capture = load_capture(name)
    sink = MemorySink([])
    for request in capture["requests"]:
        answer = call(captured_event(request), sink)
        assert answer.status == 202, answer.body
        assert answer.body == {"accepted": len(json.loads(request["body"])["data"])}
    return capture, sink


def _validate(sink: MemorySink) -> list[dict]:
    judgement = judge_object(
        b"".join(sink.records),
        source_key="raw/test.jsonl",
        options=JudgeOptions(lookback=timedelta(hours=72)),
    )
    assert judgement.quarantine == [], judgement.quarantine
    assert judgement.duplicates == 0
    return [row_as_dict(row) for row in judgement.rows]


def _tp2_events(capture: dict) -> list[dict]:
    return [event for request in capture["requests"] for event in json.loads(request["body"])["data"]]


@pytest.mark.parametrize("name", CAPTURES)
def test_captured_batches_become_snowplow_raw_records_with_the_token_identity(name):
    # Given batches the real tracker sent (with setUserId claiming another user)
    capture = load_capture(name)
    assert capture["scenario"]["encodeBase64"] is (name == "tp2_base64_contexts")
    tp2 = _tp2_events(capture)
    assert all(e["uid"] == SPOOFED for e in tp2)
    # When they are posted to the tp2 route with a verified token
    _, sink = _ingest(name)
    records = records_of(sink)
    # Then each request is one raw record of source "snowplow", identified by the token, never by uid
    assert len(records) == len(capture["requests"])
    for record, request in zip(records, capture["requests"], strict=True):
        first = json.loads(request["body"])["data"][0]
        assert record["source"] == "snowplow" and record["user_id"] == SUB
        assert record["anonymous_id"] == first["duid"] and record["app_id"] == first["aid"] == "shop-web"
        assert _ms_iso(first["stm"]) == datetime.fromisoformat(record["sent_at"])
        assert datetime.fromisoformat(record["received_at"]) == _ms_iso(request["received_at_ms"])
        assert record["user_agent"] == request["headers"]["user-agent"]
    assert SPOOFED.encode() not in b"".join(sink.records)


@pytest.mark.parametrize("name", CAPTURES)
def test_captured_batches_pass_validation_with_types_urls_times_and_identities(name):
    # Given every captured batch ingested
    capture, sink = _ingest(name)
    tp2 = {e["eid"]: e for e in _tp2_events(capture)}
    sent_at = {e["eid"]: _ms_iso(e["stm"]) for e in tp2.values()}
    received = {
        e["eid"]: _ms_iso(r["received_at_ms"])
        for r in capture["requests"]
        for e in json.loads(r["body"])["data"]
    }
    # When validation judges the raw object
    rows = _validate(sink)
    # Then every event is a validated row of the expected GA4 / custom type
    assert len(rows) == len(tp2)
    types = [r["event_type"] for r in rows]
    assert types[0] == "page_view" and types.count("page_ping") >= 1
    assert sorted(t for t in types if t != "page_ping") == sorted(
        [
            "page_view",
            "add_to_cart",  # se whose action is a GA4 name, with a product entity
            "search",
            "custom:Video_Player.play_clicked",
            "view_item",
            "add_to_cart",
            "remove_from_cart",
            "begin_checkout",
            "purchase",
            "refund",
            "custom:newsletter_signup",
        ]
    )
    for row in rows:
        source = tp2[row["event_id"]]
        # identities: visitor from duid, user from the token, the tracker's session kept alongside
        assert row["anonymous_id"] == source["duid"] and row["user_id"] == SUB
        assert row["client_session_id"] == source["sid"]
        # URLs: the page, its campaign, the referrer
        assert row["page_url"] == capture["scenario"]["page_url"]
        assert row["page_path"] == "/laptops/zenbook-14"
        assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
            "newsletter",
            "email",
            "spring_sale",
        )
        assert row["page_referrer"] == capture["scenario"]["referrer"]
        # times: occurred_at = dtm, event_ts = received_at - (stm - dtm)
        occurred = _ms_iso(source["dtm"])
        assert datetime.fromisoformat(row["occurred_at"]) == occurred
        expected_ts = received[row["event_id"]] - (sent_at[row["event_id"]] - occurred)
        assert datetime.fromisoformat(row["event_ts"]) == expected_ts
        assert row["ts_clamped"] is False
    by_type = {r["event_type"]: r for r in rows}
    assert by_type["page_view"]["page_title"] == "Zenbook 14 OLED | Shop"
    purchase = by_type["purchase"]
    assert (purchase["value"], purchase["currency"], purchase["transaction_id"]) == (
        1398.99,
        "USD",
        "T-10042",
    )
    assert [i["product_id"] for i in json.loads(purchase["items"])] == ["LAP-ZB14", "ACC-MX3S"]
    refund = by_type["refund"]
    assert (refund["value"], refund["currency"], refund["transaction_id"]) == (99.99, "USD", "T-10042")
    assert by_type["view_item"]["product_id"] == "LAP-ZB14" and by_type["view_item"]["price"] == 1299
    assert by_type["begin_checkout"]["product_id"] == "LAP-ZB14"
    assert json.loads(by_type["search"]["properties"])["search_term"] == "oled laptop"
    assert json.loads(by_type["custom:newsletter_signup"]["properties"])["list"] == "deals"


def test_plain_and_base64_contexts_map_to_the_same_events():
    # Given the same page and calls captured with encodeBase64 false and true
    def shape(name: str) -> list[tuple]:
        rows = _validate(_ingest(name)[1])
        return sorted(
            (r["event_type"], r["items"], r["value"], r["transaction_id"])
            for r in rows
            if r["event_type"] != "page_ping"
        )

    # Then both map to the same types, items and money
    assert shape("tp2_plain_contexts") == shape("tp2_base64_contexts")


def test_captured_batch_sessionizes_into_one_session_with_a_purchase(tmp_path):
    # Given the plain capture validated to Parquet
    from clickstream.sessionize.files import sessionize_files
    from clickstream.validate.writer import write_parquet

    _, sink = _ingest("tp2_plain_contexts")
    judgement = judge_object(
        b"".join(sink.records), source_key="raw/t.jsonl", options=JudgeOptions(lookback=timedelta(hours=72))
    )
    parquet = write_parquet(judgement.rows, tmp_path / "validated.parquet")
    # When it is sessionized
    sessionize_files([parquet], tmp_path / "out")
    import duckdb

    con = duckdb.connect()
    [session] = con.execute(
        "SELECT n_events, n_page_views, user_id, viewed_item, added_to_cart, began_checkout, purchased, orders"
        f" FROM read_parquet('{tmp_path / 'out' / 'sessions.parquet'}')"
    ).fetchall()
    # Then the visit is one session of the signed-in user that went through the whole funnel
    assert session == (judgement.validated, 1, SUB, True, True, True, True, 1)


# -- the tp2 wrapper and identity ------------------------------------------------------------------------------
def _tp2_request(body: object, **kwargs) -> dict:
    capture = load_capture("tp2_plain_contexts")["requests"][0]
    return captured_event({**capture, "body": json.dumps(body)}, **kwargs)


PAYLOAD = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
PV = {
    "e": "pv",
    "eid": "0b5c2a8e-1f3d-4c6b-9a7e-2d4f6b8c0e1a",
    "dtm": "1772460300000",
    "stm": "1772460301000",
    "duid": "d-1",
    "aid": "shop-web",
    "url": "https://shop.example.com/",
}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schema": "iglu:com.acme/other/jsonschema/1-0-0", "data": [PV]}, "schema"),
        ({"data": [PV]}, "schema"),
        ({"schema": PAYLOAD, "data": []}, "data"),
        ({"schema": PAYLOAD, "data": ["pv"]}, "data.0"),
        ({"schema": PAYLOAD, "data": {"e": "pv"}}, "data"),
        ([PV], None),
    ],
)
def test_a_body_that_is_not_a_payload_data_batch_is_400_naming_the_field(sink, body, field):
    answer = call(_tp2_request(body), sink)
    assert answer.status == 400 and answer.error["code"] == "invalid_payload"
    assert answer.error.get("field") == field
    assert sink.records == []


def test_too_many_events_is_400_and_nothing_written(sink):
    body = {"schema": PAYLOAD, "data": [PV] * 6}
    answer = call(_tp2_request(body), sink, Settings(max_events_per_request=5))
    assert answer.status == 400 and answer.error["field"] == "data"
    assert sink.records == []


def test_tp2_without_a_verified_token_is_401_and_nothing_written(sink):
    answer = call(_tp2_request({"schema": PAYLOAD, "data": [PV]}, claims=None), sink)
    assert answer.status == 401 and sink.records == []


def test_gzip_tp2_body_is_accepted(sink):
    # Given a captured batch gzip-compressed and labelled application/gzip (arrives base64 from API Gateway)
    import gzip

    from .conftest import api_event

    capture = load_capture("tp2_base64_contexts")["requests"][0]
    event = captured_event(capture)
    gz = api_event(raw=gzip.compress(capture["body"].encode()), headers={"Content-Type": "application/gzip"})
    event["body"], event["isBase64Encoded"] = gz["body"], True
    event["headers"]["Content-Type"] = "application/gzip"
    event["multiValueHeaders"]["Content-Type"] = ["application/gzip"]
    answer = call(event, sink)
    assert answer.status == 202 and answer.body["accepted"] == len(json.loads(capture["body"])["data"])


# -- mapping details ---------------------------------------------------------------------------------------------
def test_batches_mixing_visitors_are_split_into_one_record_per_visitor(sink):
    # Given one POST holding events of two visitors (two trackers on one page)
    other = {**PV, "eid": "1b5c2a8e-1f3d-4c6b-9a7e-2d4f6b8c0e1a", "duid": "d-2"}
    answer = call(
        _tp2_request({"schema": PAYLOAD, "data": [PV, other, {**PV, "eid": other["eid"][:-1] + "b"}]}), sink
    )
    # Then each visitor has its own record, numbered after the request id
    assert answer.status == 202 and answer.body == {"accepted": 3}
    records = records_of(sink)
    assert [(r["anonymous_id"], len(r["events"])) for r in records] == [("d-1", 2), ("d-2", 1)]
    assert [r["request_id"].rsplit(".", 1)[1] for r in records] == ["1", "2"]


def test_without_stm_sent_at_is_the_newest_device_time():
    first = {k: v for k, v in PV.items() if k != "stm"}
    second = {**first, "eid": "2b5c2a8e-1f3d-4c6b-9a7e-2d4f6b8c0e1a", "dtm": "1772460305000"}
    [group] = map_batch([first, second])
    assert group.sent_at == "2026-03-02T14:05:05.000Z"


@pytest.mark.parametrize(
    ("tp2", "event_type"),
    [
        ({"e": "se", "se_ca": "ecommerce", "se_ac": "Purchase"}, "purchase"),
        ({"e": "se", "se_ca": "ui", "se_ac": "open menu"}, "custom:ui.open_menu"),
        ({"e": "se"}, "custom:unnamed"),
        ({"e": "tr"}, "custom:snowplow.tr"),
        (
            {
                "e": "ue",
                "ue_pr": json.dumps(
                    {
                        "data": {
                            "schema": "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1",
                            "data": {"targetUrl": "https://x.example"},
                        }
                    }
                ),
            },
            "custom:link_click",
        ),
        (
            {
                "e": "ue",
                "ue_pr": json.dumps(
                    {
                        "data": {
                            "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-2",
                            "data": {"type": "promo_view"},
                        }
                    }
                ),
            },
            "custom:snowplow_ecommerce_action.promo_view",
        ),
        (
            {
                "e": "ue",
                "ue_pr": json.dumps(
                    {
                        "data": {
                            "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-2",
                            "data": {"type": "list_view"},
                        }
                    }
                ),
            },
            "view_item_list",
        ),
    ],
)
def test_event_types(tp2, event_type):
    assert map_event(tp2)["event_type"] == event_type


def test_custom_names_fit_the_validators_pattern():
    assert custom_type("Video Player.play clicked!") == "custom:Video_Player.play_clicked"
    assert len(custom_type("x" * 500)) == len("custom:") + 120


def test_undecodable_contexts_are_reported_on_the_event_not_the_request():
    # Given a page view whose cx is not base64 JSON
    event = map_event({**PV, "cx": "%%%not base64%%%"})
    # Then the event still maps, with the problem kept in its properties for validation and analysts
    assert event["event_type"] == "page_view" and event["page"]["url"] == PV["url"]
    assert event["properties"]["snowplow_errors"] == ["cx: not valid base64url JSON"]


def test_base64url_without_padding_decodes():
    text = json.dumps({"schema": "s", "data": [{"a": "é?>"}]})
    encoded = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    assert decode_base64url(encoded) == text


def test_implausible_or_garbled_timestamps_are_left_out_for_validation_to_judge():
    event = map_event({**PV, "dtm": "12"})
    assert "occurred_at" not in event
    assert "occurred_at" not in map_event({**PV, "dtm": "\uff11" * 13})  # full-width digits


# -- identifiers: one printable rule on every route ---------------------------------------------------------------
BAD_IDENTIFIERS = [
    "shop\rweb",
    "a\nb",
    "x\x00",
    "\x85",
    "zero\u200bwidth",
    "rtl\u202eoverride",
    "\ufeffbom",
    "a\u2028b",
]
GOOD_IDENTIFIERS = ["shop-web", "Shop Web 2", "magasin-été", "店舗", "d-1:9f3a", "a" * 64]


@pytest.mark.parametrize("value", BAD_IDENTIFIERS)
@pytest.mark.parametrize("name", ["aid", "duid", "nuid", "tv"])
def test_a_tp2_identifier_that_is_not_printable_is_400_naming_it(sink, name, value):
    # Given a batch whose second event carries the identifier with a control or invisible character
    body = {"schema": PAYLOAD, "data": [PV, {**PV, "eid": PV["eid"][:-1] + "b", name: value}]}
    # When posted / Then the request is refused naming the field, and nothing is written
    answer = call(_tp2_request(body), sink)
    assert answer.status == 400 and answer.error["code"] == "invalid_payload"
    assert answer.error["field"] == f"data.1.{name}"
    assert answer.error["message"] == "must be printable text (no control characters)"
    assert sink.records == []


@pytest.mark.parametrize("value", BAD_IDENTIFIERS + GOOD_IDENTIFIERS)
def test_the_identifier_rule_is_the_same_on_every_route_and_in_validation(sink, value):
    # Given the same value as the native app_id, the native anonymous_id, the tp2 aid and the tp2 duid
    from .conftest import api_event, envelope

    native_app = call(api_event(envelope(app_id=value)), sink).status
    native_visitor = call(api_event(envelope(anonymous_id=value)), sink).status
    tp2_app = call(_tp2_request({"schema": PAYLOAD, "data": [{**PV, "aid": value}]}), sink).status
    tp2_visitor = call(_tp2_request({"schema": PAYLOAD, "data": [{**PV, "duid": value}]}), sink).status
    # And as a raw record's identifiers reaching validation some other way (a record written before the rule)
    from tests.unit.validate.helpers import event, judge, raw_object, record

    validated = judge(raw_object(record([event()], app_id=value), record([event()], anonymous_id=value)))
    # Then every reading agrees: all accept it, or all refuse it
    accepted = value in GOOD_IDENTIFIERS
    assert {native_app, native_visitor, tp2_app, tp2_visitor} == {202 if accepted else 400}
    assert validated.validated == (2 if accepted else 0)
