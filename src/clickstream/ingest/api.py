"""The ingest HTTP API: routes, and the one place where domain errors become status codes.

Routes: the native contract and the Snowplow tracker protocol (tp2), each behind the Cognito User Pool authorizer
and, for signed-out visitors, as a guest sibling behind IAM authorization (SigV4 with Cognito identity pool
credentials). Every answer is JSON. Errors are ``{"error": {"code", "message", "field"?}}``; client input can only
ever produce a 4xx. The only 5xx is a 503 when the record sink fails after its retries, and then nothing is
reported accepted. Every answer to an allowed ``Origin`` carries CORS headers, with credentials allowed for an origin named or
matched by a pattern. The CORS preflight (``OPTIONS`` on every route) is answered here too, without authorization:
API Gateway's own preflight can only name one static origin, and an answer that allows credentials must echo the
caller's origin when several origins or patterns are allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from clickstream.core.config import Settings, get_settings
from clickstream.core.errors import (
    BadRequest,
    DomainError,
    PayloadTooLarge,
    TransientError,
    Unauthorized,
    UnsupportedMediaType,
)
from clickstream.core.observability import NAMESPACE, SERVICE, clip, log_failure, logger, metrics
from clickstream.ingest.request import Caller, HttpRequest, guest_caller, token_caller
from clickstream.ingest.service import Accepted, ingest_native, ingest_snowplow
from clickstream.ingest.sink import get_sink

NATIVE_PATH = "/v1/events"
SNOWPLOW_PATH = "/com.snowplowanalytics.snowplow/tp2"
GUEST_NATIVE_PATH = "/v1/guest/events"
GUEST_SNOWPLOW_PATH = "/guest/com.snowplowanalytics.snowplow/tp2"
# Path -> methods it answers; any other method on a known path is a 405.
ROUTES: dict[str, frozenset[str]] = {
    path: frozenset({"POST"}) for path in (NATIVE_PATH, SNOWPLOW_PATH, GUEST_NATIVE_PATH, GUEST_SNOWPLOW_PATH)
}
CORS_EXPOSED_HEADERS = "Retry-After"
# The preflight's answer (template.yaml's IngestApi ``Cors`` block states the same values; a test holds them equal).
# Max-age: browsers cache a preflight at most this long (Chromium caps it at 2 hours), one invocation per origin,
# route and browser in that time.
PREFLIGHT_ALLOW_METHODS = "OPTIONS,POST"
PREFLIGHT_ALLOW_HEADERS = (
    "Authorization,Content-Type,Content-Encoding,X-Amz-Date,X-Amz-Security-Token,X-Amz-Content-Sha256"
)
PREFLIGHT_MAX_AGE_SECONDS = 7200

# Domain error class -> HTTP status. Looked up along the exception's class hierarchy.
STATUS_BY_ERROR: dict[type[DomainError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    TransientError: 503,
}
RETRY_AFTER_SECONDS = 5

app = APIGatewayRestResolver()


def origin_allowed(origin: str, allowed_origins: str) -> bool:
    """``origin`` matches one of the comma-separated ``allowed_origins`` (``*`` alone, exact, or a ``*`` pattern
    such as ``https://*.example.com``); case-insensitive, as origins are."""
    origin = origin.strip().lower()
    for pattern in (p.strip().lower() for p in allowed_origins.split(",")):
        if pattern and (
            pattern == "*" or pattern == origin or ("*" in pattern and fnmatchcase(origin, pattern))
        ):
            return True
    return False


def allows_every_origin(allowed_origins: str) -> bool:
    """The configuration is ``*`` alone: any origin, and then never with credentials."""
    return [p.strip() for p in allowed_origins.split(",") if p.strip()] == ["*"]


def cors_headers(origin: str | None, allowed_origins: str) -> dict[str, str]:
    """CORS headers for an answer to ``origin``: the origin echoed when allowed, nothing for a request without
    ``Origin`` or from a foreign one (the browser then withholds the answer).

    An origin allowed by name or pattern also gets ``Access-Control-Allow-Credentials: true``: trackers as they
    ship (the Snowplow browser tracker's ``fetch`` uses ``credentials: 'include'``) are refused by the browser
    without it. Browsers never accept ``*`` together with credentials, so a ``*`` configuration answers ``*``
    without them (a development setting: such trackers then need ``credentials: 'omit'``)."""
    if not origin or not origin_allowed(origin, allowed_origins):
        return {}
    if allows_every_origin(allowed_origins):
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": CORS_EXPOSED_HEADERS}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": CORS_EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    all_headers = dict(headers or {})
    try:
        event = app.current_event
    except AttributeError:  # outside a request (no event resolved yet)
        event = None
    if event is not None:
        origin = HttpRequest.origin_of(event.raw_event)
        all_headers.update(cors_headers(origin, _settings().allowed_origins))
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers=all_headers or None,
    )


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response[str]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return _json_response(status, {"error": error}, headers)


def status_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def _count_rejection(code: str) -> None:
    """Rejected requests: in total (with the invocation's metrics) and by error code (its own dimension)."""
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    with single_metric(
        name="RejectedRequests",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name="code", value=code)


def _settings() -> Settings:
    settings = app.context.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


Ingest = Callable[..., Accepted]


def _accept(ingest: Ingest, identify: Callable[[HttpRequest], Caller]) -> Response[str]:
    settings = _settings()
    request = HttpRequest.from_api_gateway(app.current_event.raw_event)
    caller = identify(request)
    sink = app.context.get("sink") or get_sink(settings)
    accepted = ingest(request, settings=settings, sink=sink, caller=caller)
    metrics.add_metric(name="AcceptedEvents", unit=MetricUnit.Count, value=accepted.events)
    metrics.add_metric(name="AcceptedRequests", unit=MetricUnit.Count, value=1)
    logger.info(
        "request accepted",
        extra={
            "events": accepted.events,
            "records": accepted.records,
            "bytes": accepted.bytes,
            "guest": caller.guest_id is not None,
        },
    )
    return _json_response(202, {"accepted": accepted.events})


@app.post(NATIVE_PATH)
def post_events() -> Response[str]:
    return _accept(ingest_native, token_caller)


@app.post(SNOWPLOW_PATH)
def post_snowplow() -> Response[str]:
    return _accept(ingest_snowplow, token_caller)


@app.post(GUEST_NATIVE_PATH)
def post_guest_events() -> Response[str]:
    return _accept(ingest_native, guest_caller)


@app.post(GUEST_SNOWPLOW_PATH)
def post_guest_snowplow() -> Response[str]:
    return _accept(ingest_snowplow, guest_caller)


def preflight_response(origin: str | None, allowed_origins: str) -> Response[str]:
    """The answer to a CORS preflight from ``origin``: 204 with the CORS headers of :func:`cors_headers` (the origin
    echoed, credentials allowed unless the configuration is ``*``) plus the methods, headers and max-age; a request
    without ``Origin`` or from a foreign one gets a 403 in the API's error shape and no CORS header, so the browser
    sends nothing."""
    headers = cors_headers(origin, allowed_origins)
    if not headers:
        _count_rejection("origin_not_allowed")
        return error_response(403, "origin_not_allowed", "origin not allowed")  # no CORS header: not allowed
    headers.update(
        {
            "Access-Control-Allow-Methods": PREFLIGHT_ALLOW_METHODS,
            "Access-Control-Allow-Headers": PREFLIGHT_ALLOW_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            "Vary": "Origin",
        }
    )
    return Response(status_code=204, body="", headers=headers)


def _preflight() -> Response[str]:
    return preflight_response(HttpRequest.origin_of(app.current_event.raw_event), _settings().allowed_origins)


for _path in ROUTES:
    app.route(_path, method="OPTIONS")(_preflight)


@app.exception_handler(DomainError)  # type: ignore[untyped-decorator]
def handle_domain_error(exc: DomainError) -> Response[str]:

    status = status_for(exc)
    _count_rejection(exc.code)
    if status >= 500:
        logger.error("request failed", extra={"code": exc.code, "reason": clip(exc.message)})
        return error_response(
            status,
            exc.code,
            "events could not be stored; nothing was accepted, retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    logger.info("request rejected", extra={"status": status, "code": exc.code, "field": exc.field})
    return error_response(status, exc.code, exc.message, exc.field)


@app.not_found
def handle_not_found(_: NotFoundError) -> Response[str]:
    event = app.current_event
    methods = ROUTES.get(event.path)
    if methods is not None and event.http_method.upper() not in methods:
        _count_rejection("method_not_allowed")
        allowed = ", ".join(sorted(methods))
        return error_response(
            405,
            "method_not_allowed",
            f"{event.http_method} is not allowed here; use {allowed}",
            headers={"Allow": allowed},
        )
    _count_rejection("not_found")
    return error_response(404, "not_found", "no such resource")


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def handle_unexpected(exc: Exception) -> Response[str]:
    # A defect, not a client error: logged (clipped, where it was raised; an exception may quote the body),
    # answered in the same JSON shape.
    log_failure("unexpected error", exc)
    _count_rejection("internal_error")
    return error_response(500, "internal_error", "internal error")
