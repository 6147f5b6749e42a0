"""The floor of the validate benchmark: gunzip + msgspec typed decode of every record and event, no checks.

The Structs below have the contract's fields and types (the TypedDicts of ``clickstream.validate.models``) and
none of its constraints: no lengths, patterns or ranges, unknown fields allowed. Decoding into them is what turning
JSON into typed values costs at all; the step does that and everything else (constraints, judging, enrichment,
dedupe, the Parquet write), so its rate over this one says how much of its time is beyond the decode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType


class Page(Struct, gc=False):
    url: str
    referrer: str | UnsetType | None = UNSET
    title: str | UnsetType | None = UNSET


class Item(Struct, gc=False):
    product_id: str
    name: str | UnsetType | None = UNSET
    category: str | UnsetType | None = UNSET
    brand: str | UnsetType | None = UNSET
    price: float | UnsetType | None = UNSET
    quantity: int | UnsetType = UNSET


class Event(Struct, gc=False):
    event_id: str
    event_type: str
    occurred_at: datetime
    page: Page | UnsetType | None = UNSET
    properties: dict[str, Any] | UnsetType | None = UNSET
    items: list[Item] | UnsetType | None = UNSET
    value: float | UnsetType | None = UNSET
    currency: str | UnsetType | None = UNSET
    transaction_id: str | UnsetType | None = UNSET
    client_session_id: str | UnsetType | None = UNSET


class Record(Struct, kw_only=True, gc=False):
    received_at: datetime
    app_id: str
    sent_at: datetime
    anonymous_id: str
    schema: str | None = None
    request_id: str | None = None
    source: str | None = None
    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    internal: bool | None = None
    context: dict[str, Any] | None = None
    events: list[Event]


_DECODER = msgspec.json.Decoder(Record)


def decode_object(payload: bytes) -> int:
    """Decode every line of a gunzipped object into Structs; the number of events decoded. A record the types do
    not fit (the input holds a few malformed events on purpose) is decoded untyped instead."""
    events = 0
    decode = _DECODER.decode
    for line in payload.split(b"\n"):
        if line.strip():
            try:
                events += len(decode(line).events)
            except msgspec.ValidationError:
                events += len(msgspec.json.decode(line)["events"])
    return events


def polars_schema() -> dict[str, Any]:
    """The same fields as a Polars schema (envelope and events; ``context`` and ``properties``, free-form maps, are
    left out: Polars reads a JSON object only into a struct of known fields)."""
    import polars as pl

    item = pl.Struct(
        {
            "product_id": pl.String,
            "name": pl.String,
            "category": pl.String,
            "brand": pl.String,
            "price": pl.Float64,
            "quantity": pl.Int64,
        }
    )
    event = pl.Struct(
        {
            "event_id": pl.String,
            "event_type": pl.String,
            "occurred_at": pl.String,
            "page": pl.Struct({"url": pl.String, "referrer": pl.String, "title": pl.String}),
            "items": pl.List(item),
            "value": pl.Float64,
            "currency": pl.String,
            "transaction_id": pl.String,
            "client_session_id": pl.String,
        }
    )
    return {
        "schema": pl.String,
        "request_id": pl.String,
        "source": pl.String,
        "received_at": pl.String,
        "user_id": pl.String,
        "ip": pl.String,
        "user_agent": pl.String,
        "internal": pl.Boolean,
        "app_id": pl.String,
        "sent_at": pl.String,
        "anonymous_id": pl.String,
        "events": pl.List(event),
    }
