"""Raw records: one compact JSON line per accepted request (schema ``clickstream/raw/1``).

A request becomes one Firehose record holding its envelope and its events untouched. Only when that record would
exceed Firehose's record limit is it split into several, each with the same envelope, its share of the events in
their original order, and the request id suffixed ``#<n>`` (1-based).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from clickstream.adapters.sink import MAX_RECORD_BYTES
from clickstream.core.errors import BadRequest, PayloadTooLarge
from clickstream.core.schema import RAW_SCHEMA_VERSION
from clickstream.ingest.body import BadJson


@dataclass(frozen=True)
class RequestMeta:
    """What the API adds to the envelope: who sent it, from where, and when it arrived."""

    request_id: str
    source: str
    received_at: str
    user_id: str | None
    ip: str | None
    user_agent: str | None
    internal: bool
    guest_id: str | None = None


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape (\ud800) in the client's JSON
        raise BadJson("body holds text that is not valid Unicode") from exc
    except RecursionError as exc:
        raise BadJson("body is nested too deeply") from exc


def build_records(
    meta: RequestMeta,
    envelope: dict[str, Any],
    events: list[dict[str, Any]],
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> list[bytes]:
    """The request's raw record(s), each a JSON line of at most ``max_record_bytes`` bytes (newline included).

    ``envelope`` holds ``app_id``, ``sent_at``, ``anonymous_id`` and ``context``. An event too large to fit in a
    record on its own is a 413 naming it (``events.<i>``).
    """
    encoded: list[bytes] = []
    for i, event in enumerate(events):
        try:
            encoded.append(_dumps(event))
        except BadRequest as exc:
            exc.field = f"events.{i}"
            raise

    head, tail = _frame(meta, envelope, meta.request_id)
    whole = len(head) + len(tail) + sum(len(e) for e in encoded) + max(len(encoded) - 1, 0)
    if whole <= max_record_bytes:
        return [head + b",".join(encoded) + tail]
    return _split(meta, envelope, encoded, max_record_bytes)


def _frame(meta: RequestMeta, envelope: dict[str, Any], request_id: str) -> tuple[bytes, bytes]:
    """A record's bytes around its events: ``… "events":[`` and ``]}\\n``."""
    record: dict[str, Any] = {
        "schema": RAW_SCHEMA_VERSION,
        "request_id": request_id,
        "source": meta.source,
        "received_at": meta.received_at,
        "user_id": meta.user_id,
    }
    if meta.guest_id is not None:  # optional field: only records from the guest route carry it
        record["guest_id"] = meta.guest_id
    record |= {
        "ip": meta.ip,
        "user_agent": meta.user_agent,
        "internal": meta.internal,
        "app_id": envelope.get("app_id"),
        "sent_at": envelope.get("sent_at"),
        "anonymous_id": envelope.get("anonymous_id"),
        "context": envelope.get("context"),
        "events": [],
    }
    try:
        text = _dumps(record)
    except BadRequest as exc:
        exc.field = "context"
        raise
    head, tail = text[: -len(b"[]}")] + b"[", b"]}\n"  # ... "events":[ <events> ]}\n
    return head, tail


def _split(
    meta: RequestMeta, envelope: dict[str, Any], encoded: list[bytes], max_record_bytes: int
) -> list[bytes]:
    """The events in chunks, each under the limit, request ids ``<id>#1``, ``<id>#2`` …"""
    # Judge every event against the largest frame a chunk can have, so the verdict does not depend on where the
    # event would fall.
    widest, tail = _frame(meta, envelope, f"{meta.request_id}#{len(encoded)}")
    if len(widest) + len(tail) + 2 > max_record_bytes:
        raise PayloadTooLarge("the envelope alone is too large for one record", field="context")
    for i, data in enumerate(encoded):
        if len(widest) + len(data) + len(tail) > max_record_bytes:
            raise PayloadTooLarge(f"event {i} is too large ({len(data)} bytes)", field=f"events.{i}")

    records: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    head = _frame(meta, envelope, f"{meta.request_id}#1")[0]
    for data in encoded:
        extra = len(data) + (1 if chunk else 0)
        if chunk and len(head) + size + extra + len(tail) > max_record_bytes:
            records.append(head + b",".join(chunk) + tail)
            head = _frame(meta, envelope, f"{meta.request_id}#{len(records) + 1}")[0]
            chunk, size, extra = [], 0, len(data)
        chunk.append(data)
        size += extra
    records.append(head + b",".join(chunk) + tail)
    return records
