"""Judging raw objects: schema, size, lateness, in-object dedupe, skew correction, and nothing lost."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest

from clickstream.validate.enrich import row_as_dict
from tests.unit.validate.helpers import T0, event, iso, judge, raw_object, record


def _rows(j):
    return [row_as_dict(r) for r in j.rows]


def _only(j, reason):
    return [q for q in j.quarantine if q["reason"] == reason]


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_type": "checkout_now"}, "event_type"),
        ({"occurred_at": "2026-03-02T10:00:00"}, "occurred_at"),  # no time zone
        ({"occurred_at": 1772445600}, "occurred_at"),  # epoch number, not ISO-8601
        ({"page": {"url": "javascript:alert(1)"}}, "page.url"),
        ({"currency": "usd", "value": 3.0}, "currency"),
        ({"value": 5.0}, "currency"),  # a value needs a currency
        ({"properties": ["not", "an", "object"]}, "properties"),
    ],
)
def test_schema_violation_names_the_field(bad, path):
    # Given one good and one bad page view in the same request
    good, wrong = event(), event(**bad)
    # When the object is judged
    j = judge(raw_object(record([good, wrong])))
    # Then the good event is validated and the bad one quarantined with the failing field's path
    assert [r["event_id"] for r in _rows(j)] == [good["event_id"]]
    [q] = j.quarantine
    assert q["reason"] == "schema_violation"
    assert q["detail"].startswith(f"{path}: ")
    assert q["event"] == wrong  # the event as it arrived
    assert (q["source_line"], q["position"]) == (1, 1)


@pytest.mark.parametrize(
    ("event_type", "drop", "path"),
    [
        ("view_item", "items", "items"),
        ("add_to_cart", "items", "items"),
        ("remove_from_cart", "items", "items"),
        ("begin_checkout", "items", "items"),
        ("purchase", "items", "items"),
        ("purchase", "transaction_id", "transaction_id"),
        ("purchase", "value", "value"),
        ("refund", "currency", "currency"),
        ("refund", "transaction_id", "transaction_id"),
    ],
)
def test_type_rules_require_fields(event_type, drop, path):
    # Given an event missing a field its type requires
    bad = event(event_type)
    del bad[drop]
    # When judged
    j = judge(raw_object(record([bad])))
    # Then it is a schema violation on that field
    [q] = j.quarantine
    assert (q["reason"], q["detail"].split(":")[0]) == ("schema_violation", path)


def test_item_rules_price_and_quantity():
    # Given items with a negative price and a fractional quantity
    neg = event("add_to_cart", items=[{"product_id": "A", "price": -1.0, "quantity": 1}])
    frac = event("add_to_cart", items=[{"product_id": "A", "price": 1.0, "quantity": 1.5}])
    # When judged
    j = judge(raw_object(record([neg, frac])))
    # Then both are quarantined with the item's path
    assert [q["detail"].split(":")[0] for q in j.quarantine] == ["items.0.price", "items.0.quantity"]


def test_custom_events_and_every_ga4_name_pass():
    # Given custom events and one of each GA4 name that needs no extra field
    names = [
        "page_ping",
        "view_item_list",
        "select_item",
        "search",
        "view_cart",
        "add_payment_info",
        "login",
        "sign_up",
    ]
    events = [event(n) for n in names] + [event("custom:newsletter.signup"), event("custom:compare")]
    # When judged
    j = judge(raw_object(record(events)))
    # Then every one is validated
    assert j.validated == len(events) and j.quarantine == []


def test_size_violation_for_a_huge_event_and_an_oversized_string():
    # Given an event over 32 KiB serialized and one with a 5,000-character title
    huge = event(properties={"blob": "x" * 40_000})
    long_title = event(page={"url": "https://shop.example.com/", "title": "t" * 5_000})
    small = event()
    # When judged
    j = judge(raw_object(record([huge, small, long_title])))
    # Then both are size violations; the small one passes
    assert j.validated == 1
    assert [q["reason"] for q in j.quarantine] == ["size_violation", "size_violation"]
    assert "bytes" in j.quarantine[0]["detail"]
    assert j.quarantine[1]["detail"].startswith("page.title:")


def test_too_late_uses_the_corrected_event_time():
    # Given a device that sent events 80 h and 10 h after they occurred (lookback 72 h)
    sent = T0 + timedelta(days=5)
    late = event(at=sent - timedelta(hours=80))
    fine = event(at=sent - timedelta(hours=10))
    # When judged
    j = judge(raw_object(record([late, fine], received_at=sent, sent_at=sent)))
    # Then only the 80 h old one is too late
    [q] = j.quarantine
    assert q["reason"] == "too_late" and q["event"]["event_id"] == late["event_id"]
    assert [r["event_id"] for r in _rows(j)] == [fine["event_id"]]


def test_too_late_ignores_a_wrong_device_clock():
    # Given a device clock 100 h behind: occurred_at and sent_at both look old, but the gap is 5 s
    received = T0
    sent_device = T0 - timedelta(hours=100)
    ev = event(at=sent_device - timedelta(seconds=5))
    # When judged
    j = judge(raw_object(record([ev], received_at=received, sent_at=sent_device)))
    # Then it is valid and its event time is received_at - 5 s
    [row] = _rows(j)
    assert row["event_ts"] == (received - timedelta(seconds=5)).isoformat()
    assert row["ts_clamped"] is False


def test_skew_correction_and_clamping():
    # Given a device clock 1 h ahead (sent_at 1 h after received_at) and an event 30 s before sending
    received = T0
    sent = T0 + timedelta(hours=1)
    normal = event(at=sent - timedelta(seconds=30))
    # And an event stamped 10 minutes after the device sent it (a clock running ahead of itself)
    ahead = event(at=sent + timedelta(minutes=10))
    # When judged
    j = judge(raw_object(record([normal, ahead], received_at=received, sent_at=sent)))
    # Then event_ts = received_at - (sent_at - occurred_at), and the future one is clamped and flagged
    rows = {r["event_id"]: r for r in _rows(j)}
    assert rows[normal["event_id"]]["event_ts"] == (received - timedelta(seconds=30)).isoformat()
    assert rows[normal["event_id"]]["ts_clamped"] is False
    assert rows[ahead["event_id"]]["event_ts"] == received.isoformat()
    assert rows[ahead["event_id"]]["ts_clamped"] is True
    assert rows[normal["event_id"]]["occurred_at"] == (sent - timedelta(seconds=30)).isoformat()


def test_unparseable_lines_count_one_event_each():
    # Given an object with a good record, a line that is not JSON, and JSON that is not a raw record
    good = record([event(), event()])
    data = raw_object(good, "{this is not json", json.dumps([1, 2, 3]))
    # When judged
    j = judge(data)
    # Then each bad line is one event in and one quarantined, with its text kept
    assert (j.records, j.events_in, j.validated) == (3, 4, 2)
    bad = _only(j, "unparseable_record")
    assert [q["event"] for q in bad] == ["{this is not json", "[1, 2, 3]"]
    assert [q["source_line"] for q in bad] == [2, 3]


def test_records_glued_without_newline_and_gzip():
    # Given two records concatenated as }{ on one line, then a third on its own line, gzip-compressed
    a, b, c = (record([event()]) for _ in range(3))
    data = (json.dumps(a) + json.dumps(b) + "\n" + json.dumps(c) + "\n").encode()
    # When judged compressed and plain
    zipped, plain = judge(gzip.compress(data)), judge(data)
    # Then all three records are read, numbered in order, the same either way
    assert zipped.records == plain.records == 3
    assert [row_as_dict(r)["source_line"] for r in zipped.rows] == [1, 2, 3]
    assert zipped.rows == plain.rows


def test_envelope_problem_quarantines_each_event():
    # Given a record whose received_at is missing (a corrupt record)
    rec = record([event(), event()])
    del rec["received_at"]
    # When judged
    j = judge(raw_object(rec))
    # Then both events are counted and quarantined with the envelope field named
    assert j.events_in == 2 and j.validated == 0
    assert {q["detail"].split(":")[0] for q in j.quarantine} == {"envelope.received_at"}


def test_non_object_event_is_a_schema_violation():
    # Given a record whose events list holds a string
    j = judge(raw_object(record(["oops", event()])))
    # Then the string is quarantined and the event beside it validated
    assert j.validated == 1
    assert j.quarantine[0]["event"] == "oops" and j.quarantine[0]["reason"] == "schema_violation"


def test_in_object_duplicate_is_counted_and_dropped():
    # Given a tracker retry: the same request twice in one object, the retry received later
    ev = event()
    first = record([ev], received_at=T0 + timedelta(seconds=2))
    retry = record([ev], received_at=T0 + timedelta(seconds=9))
    # When judged with the retry first in the file
    j = judge(raw_object(retry, first))
    # Then one row (from the earliest receipt) and one duplicate
    [row] = _rows(j)
    assert (j.validated, j.duplicates, j.quarantined_total) == (1, 1, 0)
    assert row["received_at"] == (T0 + timedelta(seconds=2)).isoformat()
    assert row["source_line"] == 2


def test_reused_event_id_with_different_payload_is_a_conflict():
    # Given the same event id used for two different page views, received 1 s apart
    ev = event()
    other = dict(ev, page={"url": "https://shop.example.com/cart"})
    j = judge(
        raw_object(
            record([ev], received_at=T0 + timedelta(seconds=1)),
            record([other], received_at=T0 + timedelta(seconds=2)),
        )
    )
    # Then the first received wins, the later copy is quarantined as duplicate_conflict, not a duplicate
    [row] = _rows(j)
    assert row["page_path"] == "/laptops/zenbook-14"
    [q] = j.quarantine
    assert (q["reason"], q["event"]["page"]["url"], j.duplicates) == (
        "duplicate_conflict",
        "https://shop.example.com/cart",
        0,
    )


def test_dedupe_ties_break_on_event_time_then_line_then_position():
    # Given two copies received at the same instant, the second with an earlier occurred_at (conflict)
    ev = event(at=T0)
    earlier = dict(ev, occurred_at=iso(T0 - timedelta(seconds=5)))
    # When both sit in one record (positions 0 and 1)
    j = judge(raw_object(record([ev, earlier])))
    # Then the copy with the earliest event_ts wins even though it comes second
    [row] = _rows(j)
    assert row["occurred_at"] == (T0 - timedelta(seconds=5)).isoformat()
    assert j.quarantine[0]["position"] == 0
    # And identical copies at the same instant keep the first position
    j2 = judge(raw_object(record([ev, dict(ev)])))
    assert j2.duplicates == 1 and j2.quarantine == []


def test_event_ids_are_compared_case_insensitively():
    ev = event()
    upper = dict(ev, event_id=ev["event_id"].upper())
    j = judge(raw_object(record([ev, upper])))
    assert j.duplicates == 1 and _rows(j)[0]["event_id"] == ev["event_id"].lower()


def test_unknown_fields_are_kept_in_properties():
    # Given an event with properties and two unknown fields, one colliding with a property name
    ev = event(properties={"list": "deals", "color": "red"}, experiment="B", color="blue")
    # When judged
    [row] = _rows(judge(raw_object(record([ev]))))
    # Then nothing is dropped
    assert json.loads(row["properties"]) == {
        "list": "deals",
        "color": "red",
        "experiment": "B",
        "_event.color": "blue",
    }


def test_user_id_comes_from_the_record_never_the_event():
    # Given an event that claims to be another user
    ev = event(user_id="attacker", userId="attacker")
    [row] = _rows(judge(raw_object(record([ev], user_id="cognito-sub-1"))))
    # Then the record's (verified) user id is used; the claim stays a mere property
    assert row["user_id"] == "cognito-sub-1"
    assert json.loads(row["properties"])["user_id"] == "attacker"


def test_page_falls_back_to_context_and_page_views_need_a_url():
    # Given a page view without page but with context.page, and one without either
    with_ctx = {k: v for k, v in event().items() if k != "page"}
    rec = record(
        [with_ctx],
        context={"page": {"url": "https://shop.example.com/deals?utm_source=newsletter&utm_medium=email"}},
    )
    bare = record([{k: v for k, v in event().items() if k != "page"}])
    # When judged
    j = judge(raw_object(rec, bare))
    # Then the first takes the context's page and UTM; the second is a schema violation
    [row] = _rows(j)
    assert (row["page_path"], row["utm_source"], row["channel"]) == ("/deals", "newsletter", "Email")
    assert j.quarantine[0]["detail"] == "page.url: required for page_view"


def test_enrichment_of_a_purchase():
    # Given a purchase from an internal IP with two items, arriving from a cpc campaign URL
    purchase = event(
        "purchase",
        page={
            "url": "https://shop.example.com/checkout/done?utm_source=google&utm_medium=cpc&utm_campaign=spring",
            "referrer": "https://www.google.com/",
            "title": "Thanks",
        },
        items=[
            {"product_id": "LAP-9", "name": "XPS 13", "category": "Laptops", "price": 1299.0, "quantity": 2},
            {"product_id": "MOU-1", "name": "Mouse", "category": "Accessories", "price": 19.5, "quantity": 1},
        ],
        value=2617.5,
    )
    rec = record([purchase], ip="10.1.2.3", user_id="u-7")
    # When judged with 10.0.0.0/8 as internal
    [row] = _rows(judge(raw_object(rec), networks=("10.0.0.0/8",)))
    # Then the row carries the first item, all items as JSON, money, channel, device and the IP prefix only
    assert (row["product_id"], row["product_name"], row["category"], row["price"], row["quantity"]) == (
        "LAP-9",
        "XPS 13",
        "Laptops",
        1299.0,
        2,
    )
    assert len(json.loads(row["items"])) == 2
    assert (row["value"], row["currency"], row["transaction_id"]) == (2617.5, "USD", "T-1001")
    assert (row["utm_campaign"], row["channel"]) == ("spring", "Paid Search")
    assert (row["device_type"], row["browser"], row["os"], row["is_bot"]) == (
        "desktop",
        "Chrome",
        "Mac OS X",
        False,
    )
    assert (row["is_internal"], row["ip_prefix"]) == (True, "10.1.2.0/24")
    assert "10.1.2.3" not in json.dumps(row)
    assert len(row["payload_hash"]) == 64


def test_internal_flag_from_the_record():
    [row] = _rows(judge(raw_object(record([event()], internal=True))))
    assert row["is_internal"] is True


def test_quarantined_envelope_has_the_ip_truncated():
    rec = record([event(event_id="nope")], ip="2001:db8:abcd:12:34::1")
    [q] = judge(raw_object(rec)).quarantine
    assert q["envelope"]["ip"] == "2001:db8:abcd::/48"
    assert "events" not in q["envelope"] and q["envelope"]["anonymous_id"] == "anon-1"


def test_payload_hash_is_stable_and_ignores_key_order():
    ev = event(properties={"a": 1, "b": 2})
    reordered = dict(reversed(list(ev.items())))
    reordered["properties"] = {"b": 2, "a": 1}
    h1 = _rows(judge(raw_object(record([ev]))))[0]["payload_hash"]
    h2 = _rows(judge(raw_object(record([reordered]))))[0]["payload_hash"]
    h3 = _rows(judge(raw_object(record([dict(ev, properties={"a": 2, "b": 2})]))))[0]["payload_hash"]
    assert h1 == h2 != h3


def test_empty_object_balances():
    j = judge(b"")
    assert (j.records, j.events_in, j.validated, j.max_received_at) == (0, 0, 0, None)


def test_max_received_at_is_the_latest_record():
    # Given two records received 50 minutes apart
    late = T0 + timedelta(minutes=50)
    # When judged
    j = judge(raw_object(record([event()]), record([event()], received_at=late)))
    # Then the object's max_received_at is the later one
    assert j.max_received_at == late


def test_event_without_any_page_has_no_url_and_is_direct():
    # Given a login sent by a backend: no page on the event nor in the context
    login = {k: v for k, v in event("login").items() if k != "page"}
    # When judged
    [row] = _rows(judge(raw_object(record([login]))))
    # Then it is validated with no page fields, attributed to Direct
    assert (row["page_url"], row["page_path"], row["page_referrer"], row["channel"]) == (
        None,
        None,
        None,
        "Direct",
    )
