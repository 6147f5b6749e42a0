"""Signed-out visitors (the IAM-authorized guest routes), CORS on the handler's answers, and gzip bodies."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest

from clickstream.core.config import Settings
from clickstream.core.schema import RAW_RECORD_FIELDS
from clickstream.validate.enrich import row_as_dict
from clickstream.validate.judge import JudgeOptions, judge_object

from .conftest import (
    GUEST_IDENTITY,
    NATIVE,
    SUB,
    api_event,
    call,
    captured_event,
    envelope,
    guest_identity,
    load_capture,
    records_of,
)

GUEST_NATIVE = "/v1/guest/events"
GUEST_TP2 = "/guest/com.snowplowanalytics.snowplow/tp2"


def _guest(body: dict | None = None, identity_id: str | None = GUEST_IDENTITY, **kwargs) -> dict:
    event = api_event(envelope() if body is None else body, path=GUEST_NATIVE, claims=None, **kwargs)
    event["headers"].pop("Authorization", None)
    event["multiValueHeaders"].pop("Authorization", None)
    return guest_identity(event, identity_id)


def test_guest_events_are_accepted_with_the_identity_id_as_guest_principal(sink):
    # Given a signed-out visitor's SigV4-signed request (identity-pool identity, no user-pool token)
    # When it is posted to the guest route
    answer = call(_guest(), sink)
    # Then it is accepted; the record has no user and names the guest principal
    assert answer.status == 202 and answer.body == {"accepted": 3}
    [record] = records_of(sink)
    assert record["user_id"] is None and record["guest_id"] == GUEST_IDENTITY
    assert set(record) == set(RAW_RECORD_FIELDS) | {"guest_id"}
    assert record["anonymous_id"] == json.loads(NATIVE["body"])["anonymous_id"]


def test_guest_body_or_claims_cannot_make_a_guest_a_user(sink):
    # Given a guest request whose body claims a user id and which even carries stray token claims
    event = _guest(envelope(user_id="someone-else", context={"user_id": "someone-else"}))
    event["requestContext"]["authorizer"] = {"claims": {"sub": SUB}}
    # When it is accepted
    assert call(event, sink).status == 202
    # Then the record is still a guest's: no user id from anywhere but the route's own identity
    [record] = records_of(sink)
    assert record["user_id"] is None and record["guest_id"] == GUEST_IDENTITY
    assert b"someone-else" not in sink.records[0]


def test_guest_route_without_an_identity_pool_identity_is_401(sink):
    answer = call(_guest(identity_id=None), sink)
    assert answer.status == 401 and answer.error["code"] == "unauthorized"
    assert sink.records == []


def test_guest_events_validate_as_anonymous_visitors(sink):
    # Given an accepted guest request
    call(_guest(), sink)
    # When validation judges it
    judgement = judge_object(
        sink.records[0], source_key="raw/g.jsonl", options=JudgeOptions(lookback=timedelta(hours=72))
    )
    # Then every event is validated, with the visitor's anonymous id and no user
    assert judgement.quarantine == [] and judgement.validated == 3
    rows = [row_as_dict(r) for r in judgement.rows]
    assert {r["user_id"] for r in rows} == {None}
    assert {r["anonymous_id"] for r in rows} == {json.loads(NATIVE["body"])["anonymous_id"]}


def test_guest_tp2_route_takes_captured_batches(sink):
    # Given a captured tracker batch sent through the guest tp2 route
    capture = load_capture("tp2_plain_contexts")["requests"][0]
    event = guest_identity(captured_event(capture, path=GUEST_TP2, claims=None))
    # Then it is accepted as a guest's
    answer = call(event, sink)
    assert answer.status == 202
    assert {(r["user_id"], r["guest_id"], r["source"]) for r in records_of(sink)} == {
        (None, GUEST_IDENTITY, "snowplow")
    }


def test_the_user_pool_routes_do_not_accept_an_identity_pool_identity(sink):
    # Given an identity-pool caller on the token route (no user-pool claims)
    event = guest_identity(api_event(envelope(), claims=None))
    # Then it is a 401: a guest identity is only good on the guest routes
    assert call(event, sink).status == 401 and sink.records == []


# -- CORS ------------------------------------------------------------------------------------------------------
SHOP = "https://shop.example.com"


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (api_event(envelope()), 202),
        (api_event(raw="{not json"), 400),
        (api_event(envelope(), claims=None), 401),
        (api_event(envelope(), headers={"Content-Type": "text/html"}), 415),
        (api_event(envelope(), method="GET"), 405),
        (api_event(envelope(), path="/nope"), 404),
    ],
)
def test_every_answer_to_an_allowed_origin_carries_cors_headers(sink, event, status):
    # Given a shop origin allowed by configuration
    settings = Settings(allowed_origins=f"{SHOP},https://admin.example.com")
    event["headers"]["Origin"] = SHOP
    # When any request from it is answered, accepted or refused
    answer = call(event, sink, settings)
    # Then the answer names the origin, so the browser lets the page read it
    assert answer.status == status
    assert answer.headers["Access-Control-Allow-Origin"] == [SHOP]
    assert answer.headers["Vary"] == ["Origin"]
    # and allows credentials: trackers that fetch with credentials: 'include' are not refused by the browser
    assert answer.headers["Access-Control-Allow-Credentials"] == ["true"]


def test_a_foreign_origin_gets_no_cors_headers(sink):
    event = api_event(envelope(), headers={"Origin": "https://evil.example.net"})
    answer = call(event, sink, Settings(allowed_origins=SHOP))
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_wildcard_configuration_answers_star_and_patterns_match_subdomains(sink):
    star = call(api_event(envelope(), headers={"Origin": SHOP}), sink, Settings(allowed_origins="*"))
    assert star.headers["Access-Control-Allow-Origin"] == ["*"]
    # a browser never accepts * together with credentials: none are offered
    assert "Access-Control-Allow-Credentials" not in star.headers
    pattern = Settings(allowed_origins="https://*.example.com")
    sub = call(api_event(envelope(), headers={"Origin": "https://m.example.com"}), sink, pattern)
    assert sub.headers["Access-Control-Allow-Origin"] == ["https://m.example.com"]
    assert sub.headers["Access-Control-Allow-Credentials"] == ["true"]
    other = call(api_event(envelope(), headers={"Origin": "https://example.com.evil.net"}), sink, pattern)
    assert "Access-Control-Allow-Origin" not in other.headers


def test_503_exposes_retry_after_to_the_page(sink):
    from clickstream.core.errors import TransientError

    class Down:
        def put_records(self, records):
            raise TransientError("down")

    answer = call(api_event(envelope(), headers={"Origin": SHOP}), Down(), Settings(allowed_origins=SHOP))
    assert answer.status == 503 and answer.headers["Retry-After"] == ["5"]
    assert answer.headers["Access-Control-Expose-Headers"] == ["Retry-After"]


# -- gzip ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/gzip", "application/x-gzip"])
def test_application_gzip_body_is_accepted_with_or_without_content_encoding(sink, content_type):
    # Given gzip bytes labelled with a binary media type (API Gateway passes them base64-encoded, intact)
    data = gzip.compress(json.dumps(envelope()).encode())
    plain = api_event(raw=data, headers={"Content-Type": content_type})
    encoded = api_event(raw=data, headers={"Content-Type": content_type, "Content-Encoding": "gzip"})
    # Then both are one gzip layer with JSON inside
    assert call(plain, sink).body == {"accepted": 3}
    assert call(encoded, sink).body == {"accepted": 3}
    assert len(sink.records) == 2


def test_application_gzip_bomb_is_413(sink):
    bomb = gzip.compress(b"0" * 20_000_000, compresslevel=9, mtime=0)
    answer = call(api_event(raw=bomb, headers={"Content-Type": "application/gzip"}), sink)
    assert answer.status == 413 and sink.records == []


def test_gzip_mangled_into_text_by_the_gateway_is_415_naming_application_gzip(sink):
    # Given a gzip body sent as application/json + Content-Encoding: gzip that API Gateway decoded as UTF-8 text
    mangled = gzip.compress(json.dumps(envelope()).encode()).decode("utf-8", "replace")
    event = api_event(raw=mangled, headers={"Content-Encoding": "gzip"})
    assert event["isBase64Encoded"] is False
    # Then it is refused with a pointer to the content type that works
    answer = call(event, sink)
    assert answer.status == 415 and "application/gzip" in answer.error["message"]
    assert sink.records == []


def test_json_text_marked_gzip_was_inflated_upstream_and_is_read_as_is(sink):
    # Given API Gateway's request decompression: JSON text that still carries Content-Encoding: gzip
    event = api_event(envelope(), headers={"Content-Encoding": "gzip"})
    assert event["isBase64Encoded"] is False
    # Then it is read as the JSON it is (a gzip stream never starts with "{")
    assert call(event, sink).body == {"accepted": 3}
