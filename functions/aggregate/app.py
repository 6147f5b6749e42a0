"""Aggregate: recompute daily KPIs for the affected days and publish the dashboard."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import get_settings
from clickstream.core.observability import annotate, failures_logged, logger, metrics, tracer
from clickstream.pipeline.aggregate import AggregateInput, run_aggregate


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@failures_logged
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    payload = AggregateInput.model_validate(event)
    annotate(run_id=payload.plan.run_id)
    result = run_aggregate(payload, get_settings())
    metrics.add_metric(name="DaysRecomputed", unit=MetricUnit.Count, value=len(result.days_recomputed))
    return result.model_dump(mode="json")
