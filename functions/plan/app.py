"""Plan: choose the window of newly arrived validated objects and write the run's manifest."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import get_settings
from clickstream.core.observability import annotate, failures_logged, logger, metrics, tracer
from clickstream.pipeline.plan import PlanInput, run_plan


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@failures_logged
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    payload = PlanInput.model_validate(event)
    annotate(run_id=payload.execution_name)
    result = run_plan(payload, get_settings())
    metrics.add_metric(name="ObjectsPlanned", unit=MetricUnit.Count, value=result.n_objects)
    return result.model_dump(mode="json")
