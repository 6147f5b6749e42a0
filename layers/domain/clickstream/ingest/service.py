"""The ingest domain function: an API request in, raw records written, the number of accepted events out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clickstream.adapters.firehose import RecordSink
from clickstream.core.config import Settings
from clickstream.core.errors import TransientError
from clickstream.ingest.body import check_content_type, content_coding, gunzip_bounded, parse_json, raw_body
from clickstream.ingest.envelope import parse_envelope, trusted_context
from clickstream.ingest.records import RequestMeta, build_records
from clickstream.ingest.request import HttpRequest, received_at, verified_user_id


class DeliveryFailed(TransientError):
    """The record sink refused the records after its retries (HTTP 503: nothing was accepted)."""

    code = "delivery_failed"


@dataclass(frozen=True)
class Accepted:
    events: int
    records: int
    bytes: int


def decode_json_body(request: HttpRequest, settings: Settings) -> Any:
    """Content type, transfer encoding and size checks, then the JSON document (each refusal a typed error)."""
    check_content_type(request.header("content-type"))
    coding = content_coding(request.header("content-encoding"))
    data = raw_body(request.body, request.is_base64, settings.max_body_bytes)
    if coding == "gzip":
        data = gunzip_bounded(data, settings.max_body_bytes)
    return parse_json(data)


def ingest_native(request: HttpRequest, *, settings: Settings, sink: RecordSink) -> Accepted:
    """Check a native ``POST /v1/events`` request and write it as raw record(s) to ``sink``.

    Raises ``Unauthorized`` (no verified identity), ``UnsupportedMediaType``, ``PayloadTooLarge``,
    ``BadRequest`` (bad encoding, JSON or envelope; ``field`` names the path) or ``DeliveryFailed``.
    Nothing is written unless the whole request is accepted.
    """
    user_id = verified_user_id(request)
    document = decode_json_body(request, settings)
    envelope = parse_envelope(document, max_events=settings.max_events_per_request)
    meta = RequestMeta(
        request_id=request.request_id,
        source="native",
        received_at=received_at(request),
        user_id=user_id,
        ip=request.source_ip,
        user_agent=request.header("user-agent"),
        internal=request.internal,
    )
    header = {
        "app_id": envelope.app_id,
        "sent_at": envelope.sent_at,
        "anonymous_id": envelope.anonymous_id,
        "context": trusted_context(document),
    }
    events = document["events"]  # the client's objects, untouched (the model holds copies)
    records = build_records(meta, header, events)
    deliver(sink, records)
    return Accepted(events=len(events), records=len(records), bytes=sum(len(r) for r in records))


def deliver(sink: RecordSink, records: list[bytes]) -> None:
    """Write ``records``; any failure of the sink (after its own retries) is a ``DeliveryFailed``."""
    try:
        sink.put_records(records)
    except TransientError as exc:
        raise DeliveryFailed(str(exc)) from exc
    except Exception as exc:  # the sink's client errors (throttling, missing stream, network) alike
        raise DeliveryFailed(f"record delivery failed: {type(exc).__name__}") from exc
