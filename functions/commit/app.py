"""Commit: move the watermark to the end of the run's window and record the run."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import get_settings
from clickstream.core.observability import logger, metrics
from clickstream.pipeline.commit import commit_run
from clickstream.pipeline.contracts import CommitInput


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    payload = CommitInput.model_validate(event)
    logger.append_keys(run_id=payload.plan.run_id)
    result = commit_run(payload, get_settings())
    metrics.add_metric(name="RunsCommitted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ObjectsCommitted", unit=MetricUnit.Count, value=result.n_objects)
    return result.model_dump(mode="json")
