"""LoadWarehouse: replace the run's recomputed visitors in the warehouse, in one transaction."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import get_settings
from clickstream.core.observability import annotate, failures_logged, logger, metrics, tracer
from clickstream.pipeline.load import LoadInput, run_load


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@failures_logged
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    payload = LoadInput.model_validate(event)
    annotate(run_id=payload.plan.run_id)
    result = run_load(payload, get_settings())
    metrics.add_metric(name="EventsLoaded", unit=MetricUnit.Count, value=result.events_loaded)
    metrics.add_metric(name="SessionsLoaded", unit=MetricUnit.Count, value=result.sessions_loaded)
    return result.model_dump(mode="json")
