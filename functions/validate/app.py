"""ValidateFunction: S3 ObjectCreated notifications (via SQS) → validated Parquet, quarantine and ledger rows.

Each SQS message is processed on its own; a failed message is reported back (ReportBatchItemFailures), so only
it is retried and, after the queue's maxReceiveCount, parked in the dead-letter queue.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import Settings, get_settings
from clickstream.core.observability import logger, metrics
from clickstream.validate.step import process_notification

processor = BatchProcessor(event_type=EventType.SQS)


def _record_handler(record: SQSRecord, settings: Settings) -> int:
    rows = process_notification(record.body, settings=settings)
    metrics.add_metric(name="ObjectsValidated", unit=MetricUnit.Count, value=len(rows))
    for row in rows:
        metrics.add_metric(name="EventsIn", unit=MetricUnit.Count, value=row.events_in)
        metrics.add_metric(name="EventsValidated", unit=MetricUnit.Count, value=row.validated)
        metrics.add_metric(name="EventsQuarantined", unit=MetricUnit.Count, value=row.quarantined_total)
        metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=row.duplicates)
    return len(rows)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    settings = get_settings()
    return process_partial_response(
        event=event,
        record_handler=lambda record: _record_handler(record, settings),
        processor=processor,
        context=context,
    )
