"""The request bodies' JSON Schemas, compiled once per process: what the ingest function checks requests against.

``request_schemas.json`` is generated from the pydantic models in ``clickstream.ingest.models`` by
``python -m clickstream.ingest.openapi`` (a test fails when it is out of date, another holds both validators equal on
generated bodies). fastjsonschema — the validator behind Powertools' validation utility — compiles each schema to
Python once; the function never imports pydantic, which is most of a cold start (see docs/decisions.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import fastjsonschema

from clickstream.ingest.rules import PATTERN_MESSAGES

SCHEMAS_FILE = os.path.join(os.path.dirname(__file__), "request_schemas.json")
SchemaError = fastjsonschema.JsonSchemaValueException


def load_schemas() -> dict[str, Any]:
    with open(SCHEMAS_FILE, encoding="utf-8") as handle:
        schemas: dict[str, Any] = json.load(handle)
    return schemas


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    # use_default=False: a validator must never write defaults into the client's document.
    return fastjsonschema.compile(schema, use_default=False)


SCHEMAS = load_schemas()
check_envelope = _compile(SCHEMAS["Envelope"])
check_payload_data = _compile(SCHEMAS["PayloadData"])


def schema_error(exc: SchemaError) -> tuple[str, str | None]:
    """(message, field path) of a schema failure in the API's terms: ``events.3``, not ``data.events[3]``."""
    path = [str(part) for part in (exc.path or [])[1:]]
    if exc.rule == "pattern" and exc.rule_definition in PATTERN_MESSAGES:
        return PATTERN_MESSAGES[exc.rule_definition], ".".join(path) or None
    if exc.rule == "required" and isinstance(exc.value, dict):
        missing = [name for name in exc.rule_definition or () if name not in exc.value]
        if missing:
            return "Field required", ".".join([*path, missing[0]])
    return exc.message.removeprefix(f"{exc.name} ").strip(), ".".join(path) or None
