"""Property: whatever a client sends, the API answers in its JSON shape, never 5xx, and writes only on 202."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from datetime import timedelta

import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.core.config import Settings
from clickstream.validate.judge import JudgeOptions, judge_object
from tests.fakes.sink import MemorySink

from .conftest import GUEST_IDENTITY, SUB, api_event, call, envelope, guest_identity, load_capture

CLIENT_STATUSES = {202, 400, 401, 404, 405, 413, 415}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
timestamps = st.sampled_from(
    ["2026-03-02T14:05:09.412Z", "2026-03-02T14:05:09+02:00", "2026-03-02T14:05:09", "2026-03-02", "soon", ""]
)


@st.composite
def envelopes(draw) -> object:
    """Envelopes from valid to subtly wrong: each top-level field is the real one, a variant, or missing."""
    env = envelope(n_events=draw(st.integers(0, 4)))
    env["events"] = draw(
        st.one_of(
            st.just(env["events"]),
            st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=4), max_size=4),
            st.lists(json_values, max_size=4),
        )
    )
    for key, variants in {
        "app_id": st.text(max_size=70) | json_values,
        "sent_at": timestamps | json_values,
        "anonymous_id": st.text(max_size=130) | json_values,
        "context": st.dictionaries(
            st.sampled_from(["page", "utm", "locale", "screen", "user_id", "x"]), json_values, max_size=3
        )
        | json_values,
        "user_id": json_values,
    }.items():
        choice = draw(st.sampled_from(["keep", "keep", "keep", "change", "drop"]))
        if choice == "change":
            env[key] = draw(variants)
        elif choice == "drop":
            env.pop(key, None)
    return env


bodies = st.one_of(
    st.builds(lambda n: json.dumps(envelope(n_events=n)).encode(), st.integers(1, 5)),
    envelopes().map(lambda e: json.dumps(e).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
good_content_types = st.sampled_from(
    ["application/json", "text/plain;charset=UTF-8", "application/json; charset=utf-8"]
)
content_types = st.one_of(
    good_content_types,
    good_content_types,
    good_content_types,
    st.sampled_from(["application/json; charset=utf-16", "text/html", "", "application/jsonx"]),
    st.text(max_size=40),
)
# "match": gzip when the body is compressed, none otherwise (what an honest client sends).
content_encodings = st.sampled_from(
    ["match"] * 6 + [None, "gzip", "GZIP", "identity", "br", "gzip, gzip", ""]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=bodies,
    as_binary=st.booleans(),
    compress=st.booleans(),
    content_type=content_types,
    content_encoding=content_encodings,
    header_case=st.sampled_from([str.lower, str.upper, str.title]),
    extra_headers=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=30), max_size=3),
    signed_in=st.sampled_from([True, True, True, False]),
    max_body_bytes=st.sampled_from([64, 400, 1_048_576, 1_048_576, 1_048_576]),
    method=st.sampled_from(["POST"] * 6 + ["GET", "PUT"]),
    honest=st.booleans(),
)
def test_any_request_gets_a_client_answer_and_rejections_write_nothing(
    body,
    as_binary,
    compress,
    content_type,
    content_encoding,
    header_case,
    extra_headers,
    signed_in,
    max_body_bytes,
    method,
    honest,
):
    # Given any body, encoding and headers a client could send (half the time with honest headers)
    if honest:
        content_type, content_encoding, signed_in, method = "application/json", "match", True, "POST"
        max_body_bytes = 1_048_576
    data = gzip.compress(body, mtime=0) if compress else body
    if content_encoding == "match":
        content_encoding = "gzip" if compress else None
    headers = {**extra_headers, header_case("Content-Type"): content_type}
    if content_encoding is not None:
        headers[header_case("Content-Encoding")] = content_encoding
    event = api_event(
        raw=data if as_binary or compress else data.decode("utf-8", "surrogateescape"),
        headers=headers,
        drop_headers=("Content-Type",),
        claims=signed_in,
        method=method,
    )
    sink = MemorySink([])
    # When the API resolves it (no exception may escape)
    answer = call(event, sink, Settings(max_body_bytes=max_body_bytes))
    hypothesis.event(f"status {answer.status}")
    # Then the status is one of the client answers, and the body has the contract's shape
    assert answer.status in CLIENT_STATUSES
    if answer.status == 202:
        written = [json.loads(r) for r in sink.records]
        assert answer.body == {"accepted": sum(len(r["events"]) for r in written)} and written
        assert all(r["user_id"] == event["requestContext"]["authorizer"]["claims"]["sub"] for r in written)
    else:
        # And nothing is written for a rejected request
        assert sink.records == []
        assert set(answer.body) == {"error"}
        assert isinstance(answer.error["code"], str) and isinstance(answer.error["message"], str)
        assert set(answer.error) <= {"code", "message", "field"}


def _text_ok(value: object, min_len: int, max_len: int) -> bool:
    """Text of the right length without control characters (C0, DEL, C1)."""
    return (
        isinstance(value, str)
        and min_len <= len(value) <= max_len
        and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
    )


def _context_ok(context: object) -> bool:
    """An independent reading of the context rules: known fields typed, anything else free."""
    if context is None:
        return True
    if not isinstance(context, dict):
        return False
    page, utm = context.get("page"), context.get("utm")
    page_ok = page is None or (
        isinstance(page, dict)
        and all(isinstance(page.get(k), str | None) for k in ("url", "referrer", "title"))
    )
    utm_ok = utm is None or (isinstance(utm, dict) and all(isinstance(v, str | None) for v in utm.values()))
    locale = context.get("locale")
    locale_ok = locale is None or (isinstance(locale, str) and len(locale) <= 64)
    timezone = context.get("timezone")
    timezone_ok = timezone is None or (isinstance(timezone, str) and len(timezone) <= 64)
    screen_ok = isinstance(context.get("screen"), dict | None)
    consent_ok = isinstance(context.get("consent"), dict | None)
    return page_ok and utm_ok and locale_ok and timezone_ok and screen_ok and consent_ok


def envelope_is_valid(env: dict) -> bool:
    events = env.get("events")
    return (
        _text_ok(env.get("app_id"), 1, 64)
        and env.get("sent_at") in ("2026-03-02T14:05:09.412Z", "2026-03-02T14:05:09+02:00")
        and _text_ok(env.get("anonymous_id"), 1, 128)
        and _context_ok(env.get("context"))
        and isinstance(events, list)
        and 1 <= len(events) <= 500
        and all(isinstance(e, dict) for e in events)
    )


@settings(max_examples=300, deadline=None)
@given(body=envelopes(), compress=st.booleans())
def test_an_envelope_is_accepted_exactly_when_valid_with_its_events_untouched(body, compress):
    # Given an envelope built from valid and invalid field variants, sent plain or gzip-compressed
    sink = MemorySink([])
    raw = json.dumps(body).encode()
    event = api_event(raw=gzip.compress(raw) if compress else raw.decode())
    if compress:
        event["headers"]["Content-Encoding"] = "gzip"
    # When it is posted
    answer = call(event, sink)
    hypothesis.event(f"status {answer.status}")
    # Then it is accepted exactly when an independent reading of the rules says it is valid
    assert (answer.status == 202) == envelope_is_valid(body), answer.body
    if answer.status == 202:
        # And the events arrive exactly as sent, with the envelope's fields
        [record] = [json.loads(r) for r in sink.records]
        assert record["events"] == body["events"]
        assert record["anonymous_id"] == body["anonymous_id"] and record["sent_at"] == body["sent_at"]
    else:
        # Or it is a 400 naming a field of the envelope, and nothing is written
        assert answer.status == 400 and sink.records == []
        assert answer.error.get("field", "").split(".")[0] in {
            "app_id",
            "sent_at",
            "anonymous_id",
            "context",
            "events",
        }


# -- every route: native and Snowplow, signed in and guest ------------------------------------------------------
_CAPTURED_TP2 = [
    json.loads(r["body"])
    for name in ("tp2_plain_contexts", "tp2_base64_contexts")
    for r in load_capture(name)["requests"]
]
_TP2_KEYS = ["e", "eid", "dtm", "stm", "ttm", "duid", "nuid", "sid", "uid", "aid", "url", "refr", "page"]
_TP2_KEYS += ["se_ca", "se_ac", "se_la", "se_va", "ue_pr", "ue_px", "co", "cx", "pp_mix", "tv"]


@st.composite
def tp2_bodies(draw) -> object:
    """payload_data batches: captured ones, with events mutated field by field, or wrappers gone wrong."""
    doc = copy.deepcopy(draw(st.sampled_from(_CAPTURED_TP2)))
    events = doc["data"]
    for _ in range(draw(st.integers(0, 4))):
        event = events[draw(st.integers(0, len(events) - 1))]
        key = draw(st.sampled_from(_TP2_KEYS))
        action = draw(st.sampled_from(["drop", "text", "json", "b64"]))
        if action == "drop":
            event.pop(key, None)
        elif action == "text":
            event[key] = draw(st.text(max_size=30))
        elif action == "json":
            event[key] = draw(json_values)
        else:
            event[key] = base64.urlsafe_b64encode(json.dumps(draw(json_values)).encode()).decode()
    shape = draw(st.sampled_from(["keep"] * 6 + ["schema", "data", "empty", "list"]))
    if shape == "schema":
        doc["schema"] = draw(st.text(max_size=40) | json_values)
    elif shape == "data":
        doc["data"] = draw(json_values)
    elif shape == "empty":
        doc["data"] = []
    elif shape == "list":
        return events
    return doc


ROUTE_PATHS = [
    "/v1/events",
    "/com.snowplowanalytics.snowplow/tp2",
    "/v1/guest/events",
    "/guest/com.snowplowanalytics.snowplow/tp2",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(ROUTE_PATHS),
    body=st.one_of(
        tp2_bodies().map(lambda d: json.dumps(d).encode()),
        envelopes().map(lambda e: json.dumps(e).encode()),
        st.binary(max_size=200),
    ),
    identity=st.sampled_from(["token", "token", "guest", "guest", "none", "both"]),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json",
            "text/plain",
            "application/gzip",
            "application/x-gzip",
            "text/html",
        ]
    ),
    origin=st.sampled_from([None, "https://shop.example.com", "https://evil.example.net"]),
)
def test_every_route_answers_in_contract_and_validation_accounts_for_what_it_wrote(
    path, body, identity, content_type, origin
):
    # Given any body on any route, with a token, a guest identity, both or neither
    gz = content_type in ("application/gzip", "application/x-gzip")
    headers = {"Content-Type": content_type} | ({"Origin": origin} if origin else {})
    event = api_event(
        raw=gzip.compress(body, mtime=0) if gz else body.decode("utf-8", "surrogateescape"),
        headers=headers,
        drop_headers=("Content-Type", "Origin"),
        claims=identity in ("token", "both"),
        path=path,
    )
    if identity in ("guest", "both"):
        guest_identity(event)
        if identity == "both":
            event["requestContext"]["authorizer"] = {"claims": {"sub": SUB}}
    sink = MemorySink([])
    # When the API resolves it (no exception may escape)
    answer = call(event, sink, Settings(allowed_origins="https://shop.example.com"))
    hypothesis.event(f"{path} {answer.status}")
    # Then it is a client answer in the contract's shape, with CORS only for the allowed origin
    assert answer.status in CLIENT_STATUSES
    allowed = answer.headers.get("Access-Control-Allow-Origin")
    assert allowed == (["https://shop.example.com"] if origin == "https://shop.example.com" else None)
    if answer.status != 202:
        assert sink.records == [] and set(answer.body) == {"error"}
        return
    # And an accepted request was written under the route's identity and source
    records = [json.loads(r) for r in sink.records]
    guest = "/guest" in path
    for record in records:
        assert record["source"] == ("snowplow" if "snowplow" in path else "native")
        assert record["user_id"] == (None if guest else SUB)
        assert record.get("guest_id") == (GUEST_IDENTITY if guest else None)
    assert answer.body == {"accepted": sum(len(r["events"]) for r in records)}
    # And validation accounts for every written event (validated + quarantined + duplicates), never raising
    judgement = judge_object(
        b"".join(sink.records), source_key="raw/p.jsonl", options=JudgeOptions(lookback=timedelta(hours=72))
    )
    assert judgement.events_in == answer.body["accepted"]
