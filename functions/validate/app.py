"""ValidateFunction: S3 ObjectCreated notifications (via SQS) → validated Parquet, quarantine and ledger rows.

Each SQS message is processed on its own; a failed message is reported back (ReportBatchItemFailures), so only
it is retried and, after the queue's maxReceiveCount, parked in the dead-letter queue. Each message is a trace
subsegment annotated with its object's key, its log lines carry the key, and a failure is logged with its error
text clipped (an exception may quote a raw line).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.core.config import Settings, get_settings
from clickstream.core.errors import DomainError
from clickstream.core.observability import (
    NAMESPACE,
    SERVICE,
    annotate,
    failures_logged,
    log_failure,
    logger,
    metrics,
    shorten,
    tracer,
)
from clickstream.validate.notifications import parse_notification
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
        _quarantined_by_reason(row.quarantined)
    return len(rows)


def _quarantined_by_reason(quarantined: dict[str, int]) -> None:
    """One ``EventsQuarantined`` count per quarantine reason of an object, with dimensions ``service`` and
    ``reason`` (the dashboard's breakdown; the totals above, without ``reason``, feed the quarantine-rate alarm)."""
    for reason, count in quarantined.items():
        with single_metric(
            name="EventsQuarantined",
            unit=MetricUnit.Count,
            value=count,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="reason", value=reason)


def _object_key(body: str) -> str | None:
    """The raw object a message names (the first, if several), or None for a body that names none."""
    try:
        refs = parse_notification(body)
    except DomainError:
        return None
    return refs[0].key if refs else None


@tracer.capture_method(capture_response=False)
def _observed_record_handler(record: SQSRecord, settings: Settings) -> int:
    key = _object_key(record.body)
    if key is not None:
        annotate(object_key=key)
    try:
        return _record_handler(record, settings)
    except Exception as exc:
        log_failure("raw object failed", exc, message_id=record.message_id)
        shorten(exc)
        raise
    finally:
        logger.remove_keys(["object_key"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@failures_logged
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    settings = get_settings()
    return process_partial_response(
        event=event,
        record_handler=lambda record: _observed_record_handler(record, settings),
        processor=processor,
        context=context,
    )
