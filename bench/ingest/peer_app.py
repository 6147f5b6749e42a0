"""The peer the ingest benchmark compares against: a plain Powertools REST resolver with validation.

What a Powertools user would write for the same contract: ``APIGatewayRestResolver(enable_validation=True)``, a
pydantic model of the same envelope as the route's body, Logger + Metrics + Tracer decorators, the validation error
mapped to a 400. Records go to an in-memory list (the Firehose call is excluded from both sides).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

logger = Logger(service="peer")
metrics = Metrics(namespace="Peer", service="peer")
tracer = Tracer(service="peer")
app = APIGatewayRestResolver(enable_validation=True)
SINK: list[bytes] = []


class Page(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str | None = None
    referrer: str | None = None
    title: str | None = None


class Context(BaseModel):
    model_config = ConfigDict(extra="allow")
    page: Page | None = None
    locale: Annotated[str, Field(max_length=64)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    screen: dict[str, Any] | None = None
    utm: dict[str, str | None] | None = None
    consent: dict[str, Any] | None = None


class Envelope(BaseModel):
    app_id: Annotated[str, Field(min_length=1, max_length=64)]
    sent_at: AwareDatetime
    anonymous_id: Annotated[str, Field(min_length=1, max_length=128)]
    context: Context | None = None
    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=500)]


@app.post("/v1/events")
def post_events(envelope: Envelope):  # no return annotation: Powertools would model it
    claims = app.current_event.request_context.authorizer.claims or {}
    record = {
        "user_id": claims.get("sub"),
        "received_at": app.current_event.request_context.request_time_epoch,
        **envelope.model_dump(mode="json", exclude_none=True),
    }
    SINK.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")
    metrics.add_metric(name="AcceptedEvents", unit=MetricUnit.Count, value=len(envelope.events))
    logger.info("request accepted", extra={"events": len(envelope.events)})
    return Response(202, "application/json", json.dumps({"accepted": len(envelope.events)}))


@app.exception_handler(RequestValidationError)
def invalid(exc: RequestValidationError):
    first = exc.errors()[0]
    error = {
        "code": "invalid_envelope",
        "message": first["msg"],
        "field": ".".join(map(str, first["loc"][1:])),
    }
    return Response(400, "application/json", json.dumps({"error": error}))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: Any) -> dict:
    return app.resolve(event, context)
