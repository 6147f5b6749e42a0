"""docs/openapi.json is generated from the models and agrees with the handler's routes and answers."""

from __future__ import annotations

import json

import pytest

from clickstream.ingest.api import ROUTES
from clickstream.ingest.openapi import AcceptedAnswer, ErrorAnswer, openapi_document, render
from tests.conftest import REPO_ROOT

from .conftest import api_event, call, envelope

COMMITTED = REPO_ROOT / "docs/openapi.json"


def test_committed_openapi_is_in_sync_with_the_models():
    # Given the document generated from the code now
    # Then the committed copy is byte for byte the same (regenerate: python -m clickstream.ingest.openapi)
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run `.venv/bin/python -m clickstream.ingest.openapi`"
    )


def test_document_covers_every_route_with_its_security_and_error_shape():
    doc = openapi_document()
    assert set(doc["paths"]) == set(ROUTES)
    schemes = doc["components"]["securitySchemes"]
    for path, item in doc["paths"].items():
        op = item["post"]
        [security] = op["security"]
        assert set(security) <= set(schemes)
        assert ("sigv4" in security) == ("/guest" in path)
        assert {"202", "400", "401", "413", "415", "429", "503"} <= set(op["responses"])
    envelope_schema = doc["components"]["schemas"]["Envelope"]
    assert set(envelope_schema["required"]) == {"app_id", "sent_at", "anonymous_id", "events"}


@pytest.mark.parametrize(
    "event",
    [
        api_event(envelope()),
        api_event(raw="{"),
        api_event(envelope(), claims=None),
        api_event(envelope(), headers={"Content-Type": "text/html"}),
        api_event(envelope(), path="/nope"),
    ],
)
def test_the_handlers_answers_match_the_documented_models(sink, event):
    # When the handler answers, accepted or refused
    answer = call(event, sink)
    # Then the body is an instance of the documented answer model
    model = AcceptedAnswer if answer.status == 202 else ErrorAnswer
    model.model_validate_json(json.dumps(answer.body))
