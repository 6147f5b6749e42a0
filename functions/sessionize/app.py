"""Sessionize: one user bucket of a run: dedupe, sessions of the affected visitors, new bucket state."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import get_settings
from clickstream.core.observability import annotate, failures_logged, logger, metrics, tracer
from clickstream.pipeline.sessionize import SessionizeInput, run_sessionize


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@failures_logged
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = SessionizeInput.model_validate(event)
    annotate(run_id=request.run_id, bucket=request.bucket)
    result = run_sessionize(request, get_settings(), function_memory_mb=int(context.memory_limit_in_mb or 0))
    metrics.add_metric(name="SessionizedEvents", unit=MetricUnit.Count, value=result.n_events)
    metrics.add_metric(name="Sessions", unit=MetricUnit.Count, value=result.n_sessions)
    return result.model_dump(mode="json")
