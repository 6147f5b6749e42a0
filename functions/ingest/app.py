"""IngestFunction: ``POST /v1/events`` behind API Gateway (REST, Cognito User Pool authorizer).

Routes, checks and the error mapping live in ``clickstream.ingest.api``; this handler adds the Lambda context to
the logs, traces the invocation, publishes the metrics and hands the request over with the settings parsed at entry.
"""

from __future__ import annotations

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import get_settings
from clickstream.core.observability import failures_logged, logger, metrics, tracer
from clickstream.ingest.api import app


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@failures_logged
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    app.append_context(settings=get_settings())
    return app.resolve(event, context)
