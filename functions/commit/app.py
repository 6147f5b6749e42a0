"""Commit: move the watermark to the end of the run's window, record the run and give the pipeline lease back.

The state machine's failure path calls the same function with ``{"action": "release", "execution_id"}`` to give
the lease back without committing anything."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import get_settings
from clickstream.core.observability import logger, metrics
from clickstream.pipeline.commit import CommitInput, ReleaseInput, release_run, run_commit


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("action") == "release":
        released = release_run(ReleaseInput.model_validate(event), get_settings())
        metrics.add_metric(
            name="LeasesReleasedOnFailure", unit=MetricUnit.Count, value=int(released.released)
        )
        return released.model_dump(mode="json")
    payload = CommitInput.model_validate(event)
    logger.append_keys(run_id=payload.plan.run_id)
    result = run_commit(payload, get_settings())
    metrics.add_metric(name="RunsCommitted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ObjectsCommitted", unit=MetricUnit.Count, value=result.n_objects)
    return result.model_dump(mode="json")
