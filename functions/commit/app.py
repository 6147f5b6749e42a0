"""Commit: move the watermark to the end of the run's window, record the run and give the pipeline lease back.

The state machine's failure path calls the same function with ``{"action": "release", "execution_id"}`` to give
the lease back without committing anything.

Every commit publishes ``WarehouseLagSeconds``: now minus the watermark the warehouse is complete up to (what the
dashboard's lag graph shows), beside ``RunsCommitted`` (what the freshness alarm counts)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core import clock
from clickstream.core.config import get_settings
from clickstream.core.observability import annotate, failures_logged, logger, metrics, tracer
from clickstream.core.times import parse_instant
from clickstream.pipeline.commit import CommitInput, ReleaseInput, release_run, run_commit


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@failures_logged
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("action") == "release":
        released = release_run(ReleaseInput.model_validate(event), get_settings())
        metrics.add_metric(
            name="LeasesReleasedOnFailure", unit=MetricUnit.Count, value=int(released.released)
        )
        return released.model_dump(mode="json")
    payload = CommitInput.model_validate(event)
    annotate(run_id=payload.plan.run_id)
    result = run_commit(payload, get_settings())
    lag = (clock.now() - parse_instant(result.watermark, field="watermark")).total_seconds()
    metrics.add_metric(name="RunsCommitted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ObjectsCommitted", unit=MetricUnit.Count, value=result.n_objects)
    metrics.add_metric(name="WarehouseLagSeconds", unit=MetricUnit.Seconds, value=max(0.0, lag))
    logger.info("warehouse lag", extra={"watermark": result.watermark, "lag_seconds": round(lag, 3)})
    return result.model_dump(mode="json")
