"""The native API's answers, through the Powertools resolver with an in-memory sink behind it."""

from __future__ import annotations

import gzip
import json

import pytest

from clickstream.core.config import Settings
from clickstream.core.errors import TransientError
from clickstream.core.schema import RAW_RECORD_FIELDS, RAW_SCHEMA_VERSION
from tests.conftest import load_event

from .conftest import NATIVE, SUB, api_event, call, envelope, records_of


def test_sample_request_is_accepted_as_one_raw_line(sink):
    # Given the sample 3-event request (page_view, view_item, add_to_cart) from events/
    # When it is posted
    answer = call(NATIVE, sink)
    # Then it is accepted and written as one compact JSON line holding the envelope and the untouched events
    assert answer.status == 202 and answer.body == {"accepted": 3}
    assert len(sink.records) == 1
    assert b"\n" not in sink.records[0][:-1] and b": " not in sink.records[0]
    [record] = records_of(sink)
    assert tuple(record) == RAW_RECORD_FIELDS
    sent = json.loads(NATIVE["body"])
    assert record["schema"] == RAW_SCHEMA_VERSION and record["source"] == "native"
    assert record["request_id"] == NATIVE["requestContext"]["requestId"]
    assert record["events"] == sent["events"]
    assert (record["app_id"], record["sent_at"], record["anonymous_id"]) == (
        "shop-web",
        sent["sent_at"],
        sent["anonymous_id"],
    )
    assert record["context"] == sent["context"]
    assert record["user_id"] == SUB
    assert record["ip"] == "203.0.113.42"
    assert record["user_agent"].startswith("Mozilla/5.0 (Macintosh")
    assert record["internal"] is False


def test_gzip_sample_is_accepted_like_the_plain_one(sink):
    # Given the gzip + base64 sample
    event = load_event("ingest_gzip.json")
    # When it is posted
    answer = call(event, sink)
    # Then the decompressed envelope is stored just as a plain body would be
    assert answer.status == 202 and answer.body == {"accepted": 3}
    [record] = records_of(sink)
    assert record["events"] == json.loads(NATIVE["body"])["events"]


def test_received_at_comes_from_request_time_epoch(sink):
    # Given API Gateway's request time 1,772,460,309,731 ms and a device clock that says otherwise
    event = api_event(envelope(sent_at="2020-01-01T00:00:00Z"), request_time_epoch=1772460309731)
    # When the request is accepted
    call(event, sink)
    # Then received_at is that instant in UTC with milliseconds, and sent_at is kept as the client sent it
    [record] = records_of(sink)
    assert record["received_at"] == "2026-03-02T14:05:09.731Z"
    assert record["sent_at"] == "2020-01-01T00:00:00Z"


def test_received_at_falls_back_to_the_pipeline_clock(sink):
    # Given a request without requestTimeEpoch and a simulated clock
    from datetime import UTC, datetime

    from clickstream.core import clock

    clock.set_clock(clock.SimulatedClock(datetime(2026, 3, 5, 8, 30, 0, 250_000, tzinfo=UTC)))
    try:
        # When it is accepted
        call(api_event(envelope(), request_time_epoch=None), sink)
    finally:
        clock.set_clock(None)
    # Then received_at is the clock's time
    assert records_of(sink)[0]["received_at"] == "2026-03-05T08:30:00.250Z"


def test_spoofed_user_id_in_body_is_ignored(sink):
    # Given a signed-in shopper whose body claims to be someone else, at the top level and in the context
    body = envelope(user_id="victim-1", userId="victim-2")
    body["context"]["user_id"] = "victim-3"
    body["context"]["userId"] = "victim-4"
    # When it is posted
    answer = call(api_event(body), sink)
    # Then the record's user_id is the token's sub and the claimed ids are nowhere in the envelope
    assert answer.status == 202
    [record] = records_of(sink)
    assert record["user_id"] == SUB
    assert "victim" not in json.dumps({k: v for k, v in record.items() if k != "events"})


def test_missing_claims_is_401_and_nothing_is_written(sink):
    # Given a request without the authorizer's claims
    answer = call(api_event(envelope(), claims=None), sink)
    # Then it is refused as unauthenticated
    assert answer.status == 401
    assert answer.error["code"] == "unauthorized"
    assert sink.records == []


def test_claims_without_sub_is_401(sink):
    answer = call(api_event(envelope(), claims={"email": "x@example.com", "sub": ""}), sink)
    assert answer.status == 401 and sink.records == []


def test_malformed_json_is_400_bad_json(sink):
    # Given a body cut off mid-document
    answer = call(api_event(raw='{"app_id": "shop-web", "events": ['), sink)
    # Then it is a 400 with code bad_json
    assert answer.status == 400
    assert answer.error["code"] == "bad_json"
    assert sink.records == []


@pytest.mark.parametrize("raw", ['{"app_id": NaN}', "", "   ", '{"a": 1}{"b": 2}', "\ufeff[1,"])
def test_other_non_json_bodies_are_400(sink, raw):
    answer = call(api_event(raw=raw), sink)
    assert (answer.status, answer.error["code"]) == (400, "bad_json")


def test_missing_body_is_400(sink):
    event = api_event(envelope())
    event["body"] = None
    answer = call(event, sink)
    assert (answer.status, answer.error["code"]) == (400, "bad_json")


def test_lone_surrogate_in_context_is_400_on_context(sink):
    # Given a free-form context field holding half of a surrogate pair (typed fields are checked as text)
    body = envelope()
    body["context"]["experiment"] = "SURROGATE"
    raw = json.dumps(body).replace("SURROGATE", "\\udc00")
    answer = call(api_event(raw=raw), sink)
    assert (answer.status, answer.error["field"]) == (400, "context")


def test_bad_envelope_sample_names_the_missing_field(sink):
    # Given the sample whose anonymous_id is missing
    answer = call(load_event("ingest_bad_envelope.json"), sink)
    # Then the 400 names the field
    assert answer.status == 400
    assert answer.error == {"code": "invalid_envelope", "message": "Field required", "field": "anonymous_id"}
    assert sink.records == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"events": [{"event_type": "page_view"}, 1, {}]}, "events.1"),
        ({"events": []}, "events"),
        ({"events": "page_view"}, "events"),
        ({"sent_at": "2026-03-02T14:05:09"}, "sent_at"),  # no time zone
        ({"sent_at": "yesterday"}, "sent_at"),
        ({"sent_at": "the second of March, 2026"}, "sent_at"),
        ({"sent_at": 1772460309}, "sent_at"),
        ({"anonymous_id": ""}, "anonymous_id"),
        ({"anonymous_id": "x" * 129}, "anonymous_id"),
        ({"anonymous_id": "abc\ndef"}, "anonymous_id"),
        ({"app_id": 7}, "app_id"),
        ({"context": []}, "context"),
        ({"context": {"page": "https://shop.example.com"}}, "context.page"),
        ({"context": {"utm": {"source": 3}}}, "context.utm.source"),
    ],
)
def test_envelope_errors_are_400_with_the_failing_path(sink, change, field):
    # Given an envelope with one wrong field
    # When it is posted
    answer = call(api_event(envelope(**change)), sink)
    # Then the 400 names that field, and nothing is written
    assert answer.status == 400
    assert answer.error["code"] == "invalid_envelope"
    assert answer.error["field"] == field
    assert answer.error["message"]
    assert sink.records == []


def test_top_level_array_is_400(sink):
    answer = call(api_event([envelope()]), sink)
    assert answer.status == 400 and "field" not in answer.error


def test_more_events_than_allowed_is_400_on_events(sink):
    # Given max_events_per_request = 500 and a batch of 501
    answer = call(api_event(envelope(n_events=501)), sink)
    # Then the batch is refused, naming events
    assert (answer.status, answer.error["field"]) == (400, "events")
    # And exactly 500 are accepted
    assert call(api_event(envelope(n_events=500)), sink).body == {"accepted": 500}


def test_events_are_not_judged_one_by_one_here(sink):
    # Given events that are objects but would fail the per-event schema downstream
    body = envelope(events=[{"event_type": 42}, {}, {"event_id": "x", "surprise": [1, {"a": None}]}])
    # When posted
    answer = call(api_event(body), sink)
    # Then they all travel on untouched
    assert answer.body == {"accepted": 3}
    assert records_of(sink)[0]["events"] == body["events"]


def test_raw_body_over_the_limit_is_413(sink):
    # Given a limit of 2,000 bytes and a body of about 5,000
    settings = Settings(max_body_bytes=2_000)
    body = envelope(n_events=40)
    assert len(json.dumps(body)) > 2_000
    # When posted, plain and as a base64 binary body
    plain = call(api_event(body), sink, settings)
    binary = call(api_event(raw=json.dumps(body).encode()), sink, settings)
    # Then both are 413
    assert plain.status == binary.status == 413
    assert plain.error["code"] == "payload_too_large"
    assert sink.records == []


def test_gzip_bomb_is_413_without_inflating_it(sink):
    # Given 50 MB of zeros gzip-compressed into about 50 KB
    bomb = gzip.compress(b"0" * 50_000_000, compresslevel=9, mtime=0)
    assert len(bomb) < 100_000
    # When posted as a gzip body
    answer = call(api_event(raw=bomb, headers={"Content-Encoding": "gzip"}), sink)
    # Then it is refused as too large after decompression
    assert answer.status == 413
    assert "decompression" in answer.error["message"]
    assert sink.records == []


def test_gzip_body_under_the_limit_but_over_it_decompressed_is_413(sink):
    # Given a body whose gzip is well under the limit and whose JSON is over it
    settings = Settings(max_body_bytes=10_000)
    body = envelope(n_events=200)
    compressed = gzip.compress(json.dumps(body).encode())
    assert len(compressed) < 10_000 < len(json.dumps(body))
    answer = call(api_event(raw=compressed, headers={"Content-Encoding": "gzip"}), sink, settings)
    assert answer.status == 413


def test_gzip_body_with_charset_and_header_case_variants_is_accepted(sink):
    # Given lower-case header names, a charset parameter and a gzip body
    event = api_event(
        envelope(),
        gzip_body=True,
        drop_headers=("Content-Type",),
        headers={"content-type": "application/json; charset=UTF-8", "content-encoding": "GZIP"},
    )
    # Then it is accepted
    assert call(event, sink).body == {"accepted": 3}


@pytest.mark.parametrize(
    "raw",
    [b"\x1f\x8b\x08\x00not really gzip", b"plain bytes", gzip.compress(b'{"app_id": "x"}', mtime=0)[:-12]],
)
def test_corrupt_or_truncated_gzip_is_400(sink, raw):
    answer = call(api_event(raw=raw, headers={"Content-Encoding": "gzip"}), sink)
    assert answer.status == 400 and answer.error["code"] == "bad_encoding"
    assert sink.records == []


def test_invalid_base64_is_400(sink):
    event = api_event(envelope())
    event["isBase64Encoded"] = True
    event["body"] = "!!! not base64 !!!"
    assert call(event, sink).status == 400


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "multipart/form-data; boundary=x", "application/json; charset=latin-1", None],
)
def test_wrong_content_type_is_415(sink, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    event = api_event(envelope(), headers=headers, drop_headers=("Content-Type",))
    answer = call(event, sink)
    assert answer.status == 415 and answer.error["code"] == "unsupported_media_type"
    assert sink.records == []


def test_send_beacon_text_plain_is_accepted(sink):
    # Given navigator.sendBeacon's content type for a string body
    event = api_event(envelope(), headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert call(event, sink).status == 202


def test_unsupported_content_encoding_is_415(sink):
    answer = call(api_event(envelope(), headers={"Content-Encoding": "br"}), sink)
    assert answer.status == 415


def test_unknown_route_is_404_and_wrong_method_405(sink):
    # Given a GET on the events path and a POST elsewhere
    wrong_method = call(api_event(envelope(), method="GET"), sink)
    unknown = call(api_event(envelope(), path="/v2/things"), sink)
    # Then they are 405 (with Allow) and 404, in the same error shape
    assert wrong_method.status == 405
    assert wrong_method.error["code"] == "method_not_allowed"
    assert wrong_method.headers["Allow"] == ["POST"]
    assert unknown.status == 404 and unknown.error["code"] == "not_found"
    assert sink.records == []


def test_internal_traffic_header_marks_the_record(sink):
    call(api_event(envelope(), headers={"x-clickstream-internal": "1"}), sink)
    assert records_of(sink)[0]["internal"] is True


class FailingSink:
    """A sink whose delivery stream refuses everything (as FirehoseSink does after its retries)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def put_records(self, records: list[bytes]) -> None:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize("error", [TransientError("Firehose refused 1 record(s)"), ConnectionError("reset")])
def test_sink_failure_is_503_and_nothing_is_accepted(error):
    # Given a sink that fails
    failing = FailingSink(error)
    # When a valid request arrives
    answer = call(api_event(envelope()), failing)  # type: ignore[arg-type]
    # Then the answer is a 503 in the JSON error shape, asking to retry, with no accepted count
    assert failing.calls == 1
    assert answer.status == 503
    assert answer.error["code"] == "delivery_failed"
    assert "accepted" not in answer.body
    assert answer.headers["Retry-After"] == ["5"]


def test_absurd_request_time_falls_back_to_the_clock(sink):
    # Given a requestTimeEpoch beyond any representable date
    from datetime import UTC, datetime

    from clickstream.core import clock

    clock.set_clock(clock.SimulatedClock(datetime(2026, 3, 5, 8, 30, tzinfo=UTC)))
    try:
        answer = call(api_event(envelope(), request_time_epoch=10**20), sink)
    finally:
        clock.set_clock(None)
    # Then the request is still accepted, stamped by the clock
    assert answer.status == 202
    assert records_of(sink)[0]["received_at"] == "2026-03-05T08:30:00.000Z"


def test_a_defect_is_a_json_500_not_an_escaped_exception(sink, monkeypatch):
    # Given a defect inside the domain function
    import clickstream.ingest.api as api

    def broken(*args, **kwargs):
        raise RuntimeError("defect")

    monkeypatch.setattr(api, "ingest_native", broken)
    # When a request arrives
    answer = call(api_event(envelope()), sink)
    # Then the answer keeps the JSON error shape without leaking the exception
    assert answer.status == 500
    assert answer.error == {"code": "internal_error", "message": "internal error"}
