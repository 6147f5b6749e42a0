"""The ingest API's request bodies as pydantic models: the single source of the contract.

The models are never imported by the ingest function. ``python -m clickstream.ingest.openapi`` turns them into
``docs/openapi.json`` and into ``request_schemas.json``, the JSON Schemas the function checks requests against
(``clickstream.ingest.envelope``, with fastjsonschema): the function's cold start then pays neither pydantic's
import nor its schema build (see docs/decisions.md). Tests hold the committed schemas equal to these models and
the two validators equal on generated bodies.

Every constraint is one JSON Schema can say (types, lengths, patterns), so both readings agree; the two it cannot
say come from ``clickstream.ingest.rules``, applied by the models (validators) and the function (after the schema).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from clickstream.core.schema import MAX_APP_ID, MAX_IDENTIFIER, PRINTABLE
from clickstream.ingest.rules import (
    ISO_DATETIME,
    PAYLOAD_DATA_PATTERN,
    aware_iso_datetime,
    too_many_events,
)

# The identifier rule (``clickstream.core.schema.PRINTABLE``), the same on the native and the Snowplow routes.
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER, pattern=PRINTABLE)]
AppId = Annotated[str, Field(min_length=1, max_length=MAX_APP_ID, pattern=PRINTABLE)]
IsoDateTime = Annotated[
    str, Field(min_length=10, max_length=64, pattern=ISO_DATETIME), AfterValidator(aware_iso_datetime)
]
ShortText = Annotated[str, Field(max_length=64)]


class PageContext(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    url: str | None = None
    referrer: str | None = None
    title: str | None = None


class RequestContext(BaseModel):
    """The envelope's ``context``: known fields are type-checked, anything else is kept as sent."""

    model_config = ConfigDict(strict=True, extra="allow")

    page: PageContext | None = None
    locale: ShortText | None = None
    timezone: ShortText | None = None
    screen: dict[str, Any] | None = None
    utm: dict[str, str | None] | None = None
    consent: dict[str, Any] | None = None


class Envelope(BaseModel):
    """``{"app_id", "sent_at", "anonymous_id", "context"?, "events": [{…}, …]}``; unknown top-level keys are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    app_id: AppId
    sent_at: IsoDateTime
    anonymous_id: Identifier
    context: RequestContext | None = None
    events: Annotated[list[dict[str, Any]], Field(min_length=1)]

    @field_validator("events")
    @classmethod
    def _at_most_max_events(cls, events: list[dict[str, Any]], info: ValidationInfo) -> list[dict[str, Any]]:
        message = too_many_events(len(events), (info.context or {}).get("max_events"))
        if message is not None:
            raise ValueError(message)
        return events


class SnowplowEvent(BaseModel):
    """One tp2 event: the tracker's string fields. The identifiers that become the record's app and visitor
    (``aid``, ``duid``, else ``nuid``) and the tracker version ``tv`` obey the native route's identifier rule;
    every other field is mapped as sent and judged downstream, event by event."""

    model_config = ConfigDict(strict=True, extra="allow")

    aid: AppId | None = None
    duid: Identifier | None = None
    nuid: Identifier | None = None
    tv: Identifier | None = None


class PayloadData(BaseModel):
    """``{"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-x", "data": [{…}, …]}``."""

    model_config = ConfigDict(strict=True, extra="ignore")

    schema_: Annotated[str, Field(alias="schema", pattern=PAYLOAD_DATA_PATTERN)]
    data: Annotated[list[SnowplowEvent], Field(min_length=1)]


def request_schemas() -> dict[str, Any]:
    """The JSON Schemas of the request bodies as the ingest function loads them: self-contained, flat.

    Each model's schema with its ``$ref`` pointers inlined and every optional value (``anyOf: [X, {"type": "null"}]``)
    written as ``X`` with ``"type": [X's type, "null"]`` — the same set of documents (keywords like
    ``properties`` or ``maxLength`` only apply to values of their type), but a failure inside an optional object
    is then reported at its own path (``context.page``), not as "no branch of anyOf matched" at ``context``.
    """
    out = {}
    for name, model in (("Envelope", Envelope), ("PayloadData", PayloadData)):
        schema = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
        defs = schema.pop("$defs", {})
        out[name] = _flatten(schema, defs)
    return out


def _flatten(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_flatten(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _flatten(defs[node["$ref"].removeprefix("#/$defs/")], defs)
        return {**target, **{k: _flatten(v, defs) for k, v in node.items() if k != "$ref"}}
    branches = node.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        [other] = [_flatten(b, defs) for b in branches if b != {"type": "null"}]
        if isinstance(other.get("type"), str) and "anyOf" not in other:
            rest = {k: _flatten(v, defs) for k, v in node.items() if k != "anyOf"}
            return {**other, **rest, "type": [other["type"], "null"]}
    return {k: _flatten(v, defs) for k, v in node.items()}
