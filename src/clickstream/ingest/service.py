"""The ingest domain functions: an API request in, raw records written, the number of accepted events out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clickstream.adapters.sink import RecordSink
from clickstream.core.config import Settings
from clickstream.core.errors import TransientError, UnsupportedMediaType
from clickstream.ingest.body import (
    GZIP_MEDIA_TYPES,
    check_content_type,
    content_coding,
    gunzip_bounded,
    gzip_arrived_as_text,
    parse_json,
    raw_body,
)
from clickstream.ingest.envelope import parse_envelope, trusted_context
from clickstream.ingest.records import RequestMeta, build_records
from clickstream.ingest.request import Caller, HttpRequest, received_at, token_caller
from clickstream.ingest.snowplow import map_batch, parse_payload


class DeliveryFailed(TransientError):
    """The record sink refused the records after its retries (HTTP 503: nothing was accepted)."""

    code = "delivery_failed"


@dataclass(frozen=True)
class Accepted:
    events: int
    records: int
    bytes: int


def decode_json_body(request: HttpRequest, settings: Settings) -> Any:
    """Content type, transfer encoding and size checks, then the JSON document (each refusal a typed error).

    A body is gzip when its ``Content-Type`` is ``application/gzip`` (or ``application/x-gzip``) or its
    ``Content-Encoding`` is ``gzip`` — one gzip layer either way. A text body marked gzip that does not start
    like a gzip stream was already decoded upstream (API Gateway's request decompression) and is read as is; one
    that does was mangled into text on the way (not sent as ``application/gzip``) and is a 415.
    """
    media_type = check_content_type(request.header("content-type"))
    gzipped = media_type in GZIP_MEDIA_TYPES or content_coding(request.header("content-encoding")) == "gzip"
    if gzipped and not request.is_base64:
        if gzip_arrived_as_text(request.body, request.is_base64):
            raise UnsupportedMediaType(
                "a gzip body must be sent as Content-Type: application/gzip (JSON inside); "
                "this one arrived decoded as text"
            )
        gzipped = (
            media_type in GZIP_MEDIA_TYPES
        )  # text already inflated upstream, unless labelled a gzip type
    data = raw_body(request.body, request.is_base64, settings.max_body_bytes)
    if gzipped:
        data = gunzip_bounded(data, settings.max_body_bytes)
    return parse_json(data)


def _meta(request: HttpRequest, caller: Caller, source: str, request_id: str | None = None) -> RequestMeta:
    return RequestMeta(
        request_id=request_id or request.request_id,
        source=source,
        received_at=received_at(request),
        user_id=caller.user_id,
        guest_id=caller.guest_id,
        ip=request.source_ip,
        user_agent=request.header("user-agent"),
        internal=request.internal,
    )


def ingest_native(
    request: HttpRequest, *, settings: Settings, sink: RecordSink, caller: Caller | None = None
) -> Accepted:
    """Check a native ``POST /v1/events`` request and write it as raw record(s) to ``sink``.

    ``caller`` is the identity the route established (default: the Cognito token's user). Raises
    ``Unauthorized`` (no verified identity), ``UnsupportedMediaType``, ``PayloadTooLarge``, ``BadRequest`` (bad
    encoding, JSON or envelope; ``field`` names the path) or ``DeliveryFailed``. Nothing is written unless the
    whole request is accepted.
    """
    caller = caller or token_caller(request)
    document = decode_json_body(request, settings)
    checked = parse_envelope(document, max_events=settings.max_events_per_request)
    header = {
        "app_id": checked.app_id,
        "sent_at": checked.sent_at,
        "anonymous_id": checked.anonymous_id,
        "context": trusted_context(document),
    }
    events = document["events"]  # the client's objects, as sent
    records = build_records(_meta(request, caller, "native"), header, events)
    deliver(sink, records)
    return Accepted(events=len(events), records=len(records), bytes=sum(len(r) for r in records))


def ingest_snowplow(
    request: HttpRequest, *, settings: Settings, sink: RecordSink, caller: Caller | None = None
) -> Accepted:
    """Check a Snowplow tracker protocol (tp2) batch, map its events and write them as raw record(s).

    Same identity, body and size rules and the same errors as :func:`ingest_native`; the body must be a
    ``payload_data`` batch. One raw record (or more, when split) per (app, visitor, send time) group.
    """
    caller = caller or token_caller(request)
    document = decode_json_body(request, settings)
    events = parse_payload(document, max_events=settings.max_events_per_request)
    groups = map_batch(events)
    records: list[bytes] = []
    for n, group in enumerate(groups, start=1):
        request_id = request.request_id if len(groups) == 1 else f"{request.request_id}.{n}"
        header = {
            "app_id": group.app_id,
            "sent_at": group.sent_at,
            "anonymous_id": group.anonymous_id,
            "context": group.context,
        }
        records.extend(build_records(_meta(request, caller, "snowplow", request_id), header, group.events))
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
