"""The function's compiled JSON Schemas are the pydantic models' contract, read the same way."""

from __future__ import annotations

import json
from typing import Any

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clickstream.ingest.contract import SCHEMAS_FILE
from clickstream.ingest.envelope import InvalidEnvelope, parse_envelope
from clickstream.ingest.models import Envelope, PayloadData
from clickstream.ingest.openapi import render_request_schemas
from clickstream.ingest.snowplow import InvalidPayload, parse_payload

from .conftest import envelope
from .test_properties import envelopes, json_values

MAX_EVENTS = 3


def test_committed_request_schemas_are_in_sync_with_the_models():
    # Given the schemas generated from the models now
    # Then the file the function loads is byte for byte the same (regenerate: python -m clickstream.ingest.openapi)
    with open(SCHEMAS_FILE, encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == render_request_schemas(), (
        "request_schemas.json is stale: run `.venv/bin/python -m clickstream.ingest.openapi`"
    )


def _model_verdict(model: Any, document: Any, **context: Any) -> tuple[bool, set[str]]:
    try:
        model.model_validate(document, context=context)
    except ValidationError as exc:
        return False, {".".join(str(p) for p in e["loc"]) for e in exc.errors()}
    return True, set()


def _function_verdict(check: Any, error: type[Exception], document: Any) -> tuple[bool, str | None]:
    try:
        check(document, max_events=MAX_EVENTS)
    except error as exc:
        return False, getattr(exc, "field", None)
    return True, None


def _named_by_the_model(field: str | None, model_fields: set[str]) -> bool:
    """The function's field is one the model also refused, or a path inside/above one of them."""
    if field is None:
        return True
    return any(f == field or f.startswith(field + ".") or field.startswith(f + ".") for f in model_fields)


@settings(max_examples=500, deadline=None)
@given(document=envelopes())
def test_envelope_schema_and_model_agree_on_every_body(document):
    # Given any envelope, from valid to subtly wrong
    # When the pydantic model and the function's compiled schema both judge it
    model_ok, model_fields = _model_verdict(Envelope, document, max_events=MAX_EVENTS)
    function_ok, field = _function_verdict(parse_envelope, InvalidEnvelope, document)
    hypothesis.event("accepted" if model_ok else "refused")
    # Then they accept exactly the same bodies, and a refusal names a field the model also refuses
    assert model_ok == function_ok, (model_fields, field)
    assert function_ok or _named_by_the_model(field, model_fields), (model_fields, field)


payload_documents = st.fixed_dictionaries(
    {},
    optional={
        "schema": st.sampled_from(
            [
                "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
                "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/2-0-0",
                "iglu:com.acme/payload_data/jsonschema/1-0-0",
                "",
            ]
        )
        | json_values,
        "data": st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=5)
        | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(document=payload_documents)
def test_payload_data_schema_and_model_agree_on_every_body(document):
    # Given any tp2 wrapper, from valid to wrong
    model_ok, model_fields = _model_verdict(PayloadData, document)
    if model_ok and len(document["data"]) > MAX_EVENTS:
        model_ok, model_fields = False, {"data"}
    # When the function judges it
    function_ok, field = _function_verdict(parse_payload, InvalidPayload, document)
    hypothesis.event("accepted" if model_ok else "refused")
    # Then both agree, naming the same field
    assert model_ok == function_ok, (model_fields, field)
    assert function_ok or _named_by_the_model(field, model_fields), (model_fields, field)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"anonymous_id": "a\x85b"}, "anonymous_id", "must be printable text (no control characters)"),
        ({"sent_at": "2026-13-45T10:00:00Z"}, "sent_at", "must be an ISO-8601 date-time"),
        ({"sent_at": "2026-03-02T14:05:09"}, "sent_at", "must be an ISO-8601 date-time"),
        ({"context": {"page": {"url": 7}}}, "context.page.url", "must be string or null"),
        ({"events": [{}, {}, {}, {}]}, "events", "at most 3 events per request, got 4"),
        ({"events": [{}, "x"]}, "events.1", "must be object"),
    ],
)
def test_refusals_name_the_path_and_say_what_is_wrong(change, field, message):
    # Given an envelope with one wrong field
    with pytest.raises(InvalidEnvelope) as refused:
        parse_envelope(envelope(**change), max_events=MAX_EVENTS)
    # Then the refusal names the field's path and the rule in plain words
    assert refused.value.field == field
    assert str(refused.value).startswith(message)


def test_the_check_leaves_the_clients_document_as_sent():
    # Given an envelope without the optional context
    document = envelope()
    document.pop("context", None)
    before = json.dumps(document, sort_keys=True)
    # When it is checked (a schema validator could fill in the models' defaults)
    parse_envelope(document, max_events=MAX_EVENTS)
    # Then not a key was added
    assert json.dumps(document, sort_keys=True) == before
