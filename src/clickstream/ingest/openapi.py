"""The ingest API's OpenAPI document, generated from the models the handler checks requests against.

``python -m clickstream.ingest.openapi`` regenerates the committed copies: ``docs/openapi.json`` and the function's
``clickstream/ingest/request_schemas.json`` (tests fail when either is out of date). Request bodies are the native
:class:`~clickstream.ingest.models.Envelope` and the Snowplow :class:`~clickstream.ingest.models.PayloadData`;
answers are :class:`AcceptedAnswer` and :class:`ErrorAnswer`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from clickstream.ingest.api import GUEST_NATIVE_PATH, GUEST_SNOWPLOW_PATH, NATIVE_PATH, SNOWPLOW_PATH
from clickstream.ingest.contract import SCHEMAS_FILE
from clickstream.ingest.models import Envelope, PayloadData, request_schemas

REF = "#/components/schemas/{model}"


class AcceptedAnswer(BaseModel):
    """202: every event of the request was accepted and stored (each is judged downstream)."""

    model_config = ConfigDict(extra="forbid")

    accepted: int = Field(ge=0, description="Number of events in the request.")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Machine-readable reason, e.g. invalid_envelope, payload_too_large.")
    message: str = Field(description="What is wrong, for a developer.")
    field: str | None = Field(
        default=None, description="Path of the failing field, e.g. events.3 or sent_at."
    )


class ErrorAnswer(BaseModel):
    """Every refusal, the handler's and API Gateway's own (Gateway Responses)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


ERRORS = {
    "400": "Malformed JSON, encoding or envelope; `field` names the failing path.",
    "401": "No or invalid identity (user pool token, or SigV4 identity on a guest route).",
    "403": "API Gateway: the signature or token does not grant this route.",
    "404": "No such route (or a guest route called without a SigV4 signature).",
    "405": "Method not allowed on this route (the Allow header names the one that is).",
    "413": "Body too large, also after decompression, or too many events.",
    "415": "Wrong Content-Type or Content-Encoding.",
    "429": "Throttled by API Gateway; retry after the Retry-After delay.",
    "503": "Events could not be stored; nothing was accepted, retry after the Retry-After delay.",
}

# path -> (operationId, request schema, security scheme, summary)
ROUTE_DOCS = {
    NATIVE_PATH: ("postEvents", "Envelope", "cognito", "Post a batch of events (native contract)."),
    SNOWPLOW_PATH: (
        "postSnowplow",
        "PayloadData",
        "cognito",
        "Post a Snowplow tracker protocol (tp2) batch.",
    ),
    GUEST_NATIVE_PATH: (
        "postGuestEvents",
        "Envelope",
        "sigv4",
        "Post a batch of events as a signed-out visitor.",
    ),
    GUEST_SNOWPLOW_PATH: (
        "postGuestSnowplow",
        "PayloadData",
        "sigv4",
        "Post a tp2 batch as a signed-out visitor.",
    ),
}


def _operation(operation_id: str, schema: str, security: str, summary: str) -> dict[str, Any]:
    ref = {"$ref": REF.format(model=schema)}
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorAnswer")}}}
    responses: dict[str, Any] = {
        "202": {
            "description": "Accepted.",
            "content": {"application/json": {"schema": {"$ref": REF.format(model="AcceptedAnswer")}}},
        }
    }
    responses |= {status: {"description": text, "content": error} for status, text in ERRORS.items()}
    return {
        "summary": summary,
        "operationId": operation_id,
        "security": [{security: []}],
        "parameters": [
            {
                "name": "Content-Encoding",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "enum": ["gzip", "x-gzip", "identity"]},
                "description": "gzip: the body is gzip-compressed JSON (send it as application/gzip through API "
                "Gateway, whose BinaryMediaTypes keep such bodies intact).",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ref},
                "text/plain": {"schema": ref},
                "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": responses,
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the ingest API (deterministic: same code, same bytes)."""
    _, defs = models_json_schema(
        [
            (Envelope, "validation"),
            (PayloadData, "validation"),
            (AcceptedAnswer, "serialization"),
            (ErrorAnswer, "serialization"),
        ],
        ref_template=REF,
    )
    schemas = dict(sorted(defs["$defs"].items()))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Clickstream ingest API",
            "version": "1",
            "description": "Shoppers' browsers post events here. The API checks the envelope only; events are "
            "judged one by one downstream, so one bad event never costs the good ones. Limits: 1 MiB per body "
            "(also after decompression), 500 events per request.",
        },
        "servers": [
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
                "variables": {
                    "api_id": {"default": "abc123defg"},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "dev"},
                },
            }
        ],
        "paths": {path: {"post": _operation(*docs)} for path, docs in ROUTE_DOCS.items()},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "cognito": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Cognito user pool ID or access token; user_id is its sub claim.",
                },
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS SigV4 with the Cognito identity pool's unauthenticated (guest) credentials.",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
            },
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def render_request_schemas() -> str:
    return json.dumps(request_schemas(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(docs_dir: Path) -> None:
    """Write ``openapi.json`` into ``docs_dir`` and the function's request schemas beside ``contract.py``."""
    (docs_dir / "openapi.json").write_text(render(), encoding="utf-8")
    Path(SCHEMAS_FILE).write_text(render_request_schemas(), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - exercised through the sync tests
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
