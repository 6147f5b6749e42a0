"""Raw records: one JSON line per request, split only when Firehose's record limit requires it."""

from __future__ import annotations

import json

from clickstream.adapters.sink import MAX_RECORD_BYTES
from clickstream.core.config import Settings
from clickstream.ingest.records import RequestMeta, build_records

from .conftest import api_event, call, envelope, records_of

META = RequestMeta(
    request_id="req-1",
    source="native",
    received_at="2026-03-02T14:05:09.731Z",
    user_id="u-1",
    ip="203.0.113.42",
    user_agent="UA",
    internal=False,
)
HEADER = {"app_id": "shop-web", "sent_at": "2026-03-02T14:05:09Z", "anonymous_id": "a-1", "context": None}


def _events(n: int, pad: int) -> list[dict]:
    return [{"event_id": f"e{i:04d}", "event_type": "page_view", "pad": "é" * pad} for i in range(n)]


def test_big_request_is_split_under_the_firehose_limit_keeping_every_event_once_in_order(sink):
    # Given a 3 MB body limit and a request of 60 events of ~50 KB (non-ASCII text, so bytes != characters)
    settings = Settings(max_body_bytes=3_500_000)
    events = _events(60, 25_000)
    # When it is posted
    answer = call(api_event(raw=json.dumps(envelope(events=events), ensure_ascii=False)), sink, settings)
    # Then it is accepted as several records, each a JSON line within 1,000 KiB
    assert answer.body == {"accepted": 60}
    assert len(sink.records) == 3
    assert all(len(r) <= MAX_RECORD_BYTES for r in sink.records)
    records = records_of(sink)
    # And every event is there exactly once, in the original order, split across suffixed request ids
    assert [e for r in records for e in r["events"]] == events
    assert [r["request_id"] for r in records] == [f"{records[0]['request_id'][:-2]}#{n}" for n in (1, 2, 3)]
    # And each chunk carries the same envelope and identity
    first = {k: v for k, v in records[0].items() if k not in ("events", "request_id")}
    assert all({k: v for k, v in r.items() if k not in ("events", "request_id")} == first for r in records)


def test_records_are_packed_greedily_up_to_the_exact_limit():
    # Given events whose single record would be just over a small limit
    events = _events(10, 100)
    whole = build_records(META, HEADER, events, max_record_bytes=10**9)[0]
    # When the limit is exactly the size of the whole record, or one byte less
    exact = build_records(META, HEADER, events, max_record_bytes=len(whole))
    tighter = build_records(META, HEADER, events, max_record_bytes=len(whole) - 1)
    # Then the first fits as one unsplit record and the second splits into records that each fit
    assert exact == [whole] and json.loads(whole)["request_id"] == "req-1"
    assert len(tighter) == 2 and all(len(r) <= len(whole) - 1 for r in tighter)
    assert [e for r in tighter for e in json.loads(r)["events"]] == events


def test_an_event_that_cannot_fit_in_any_record_is_413_naming_it(sink):
    # Given a large body limit and one event bigger than a Firehose record
    settings = Settings(max_body_bytes=3_000_000)
    events = [*_events(2, 10), {"event_id": "huge", "pad": "x" * (MAX_RECORD_BYTES + 1)}]
    # When it is posted
    answer = call(api_event(envelope(events=events)), sink, settings)
    # Then the whole request is 413 on that event, and nothing is written
    assert answer.status == 413
    assert answer.error["field"] == "events.2"
    assert sink.records == []


def test_an_envelope_too_large_for_a_record_is_413_on_context(sink):
    settings = Settings(max_body_bytes=3_000_000)
    body = envelope(n_events=2)
    body["context"]["screen"] = {"note": "x" * MAX_RECORD_BYTES}
    answer = call(api_event(body), sink, settings)
    assert (answer.status, answer.error["field"]) == (413, "context")


def test_lone_surrogate_escape_in_an_event_is_400_naming_it(sink):
    # Given JSON that escapes half of a surrogate pair inside the second event
    raw = json.dumps(envelope(n_events=2)).replace("000000000001", "\\ud800")
    # When posted
    answer = call(api_event(raw=raw), sink)
    # Then it is a clean 400 on that event rather than a failure to encode
    assert answer.status == 400 and answer.error["field"] == "events.1"
    assert sink.records == []


def test_non_ascii_text_is_stored_as_utf8_not_escaped(sink):
    body = envelope()
    body["events"][0]["page"]["title"] = "Ноутбуки · 笔记本电脑 · ü"
    call(api_event(body), sink)
    assert "Ноутбуки · 笔记本电脑 · ü".encode() in sink.records[0]
