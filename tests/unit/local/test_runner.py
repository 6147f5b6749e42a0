"""The demo runner's pieces: step boundaries, execution names, and draining SQS into the validate handler."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from clickstream.adapters.aws import client
from clickstream_local.runner import (
    MAX_RECEIVES,
    WalkStats,
    boundaries,
    drain_queue,
    execution_name,
    kpi_table,
)

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def test_boundaries_cover_every_request_and_end_after_the_last():
    # Given a start, the last receive time and an hourly step
    last = T0 + timedelta(hours=2, minutes=10)
    # When the boundaries are laid out
    steps = boundaries(T0, last, timedelta(hours=1))
    # Then they are hourly, and the last one is the first boundary after the last request
    assert steps == [T0 + timedelta(hours=h) for h in (1, 2, 3)]
    # And a last request exactly on a boundary still gets a run after it
    assert boundaries(T0, T0 + timedelta(hours=2), timedelta(hours=1))[-1] == T0 + timedelta(hours=3)
    # And coarser steps give fewer runs
    assert len(boundaries(T0, T0 + timedelta(days=7) - timedelta(microseconds=1), timedelta(hours=6))) == 28


def test_execution_names_are_unique_per_step_and_valid_for_step_functions():
    # Given a week of hourly steps
    steps = boundaries(T0, T0 + timedelta(days=7) - timedelta(microseconds=1), timedelta(hours=1))
    # When each gets a name
    names = [execution_name(5, s) for s in steps]
    # Then they are unique, at most 80 characters, of the allowed characters
    assert len(set(names)) == len(names) == 168
    assert all(len(n) <= 80 and n.replace("-", "").isalnum() for n in names)


def _notification(key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "raw"}, "object": {"key": key}}}
            ]
        }
    )


def _fill(queue_url: str, n: int) -> None:
    """Replace what is on the queue (S3's own test event when the notification was configured) with n notices."""
    sqs = client("sqs")
    sqs.purge_queue(QueueUrl=queue_url)
    for i in range(n):
        sqs.send_message(QueueUrl=queue_url, MessageBody=_notification(f"raw/o{i:03d}"))


def _depth(queue_url: str) -> int:
    attrs = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_drain_feeds_batches_of_ten_shaped_like_lambdas_sqs_event(aws):
    # Given 23 notifications on the raw-objects queue and a validate handler that records what it gets
    _fill(aws.queue_url, 23)
    seen: list[dict] = []

    def validate(event, context):
        seen.append(event)
        assert context.function_name == "validate"
        return {"batchItemFailures": []}

    stats = WalkStats()
    # When the runner drains the queue
    done = drain_queue(aws.queue_url, validate, lambda: _Ctx("validate"), stats)
    # Then every message went through once, in batches of at most 10, shaped as Lambda's SQS event
    assert done == 23 and stats.validate_batches == 3
    assert [len(e["Records"]) for e in seen] == [10, 10, 3]
    record = seen[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith("-objects")
    assert json.loads(record["body"])["Records"][0]["s3"]["object"]["key"].startswith("raw/o")
    keys = [json.loads(r["body"])["Records"][0]["s3"]["object"]["key"] for e in seen for r in e["Records"]]
    assert sorted(keys) == [f"raw/o{i:03d}" for i in range(23)]
    # And the queue is empty
    assert _depth(aws.queue_url) == 0


def test_drain_redelivers_a_partial_failure_until_it_succeeds(aws):
    # Given a handler that fails one message the first time it sees it
    _fill(aws.queue_url, 5)
    attempts: Counter = Counter()

    def validate(event, context):
        failures = []
        for r in event["Records"]:
            key = json.loads(r["body"])["Records"][0]["s3"]["object"]["key"]
            attempts[key] += 1
            if key == "raw/o002" and attempts[key] == 1:
                failures.append({"itemIdentifier": r["messageId"]})
        return {"batchItemFailures": failures}

    stats = WalkStats()
    # When the runner drains the queue
    done = drain_queue(aws.queue_url, validate, lambda: _Ctx("validate"), stats)
    # Then only the failed message came back, once, and then everything is done
    assert attempts["raw/o002"] == 2 and all(n == 1 for k, n in attempts.items() if k != "raw/o002")
    assert done == 5 and stats.validate_failures == 1
    assert _depth(aws.queue_url) == 0


def test_drain_leaves_a_message_that_always_fails_to_the_dead_letter_queue(aws):
    # Given a handler that always fails one message
    _fill(aws.queue_url, 3)
    attempts: Counter = Counter()

    def validate(event, context):
        failures = []
        for r in event["Records"]:
            key = json.loads(r["body"])["Records"][0]["s3"]["object"]["key"]
            attempts[key] += 1
            if key == "raw/o001":
                failures.append({"itemIdentifier": r["messageId"]})
        return {"batchItemFailures": failures}

    # When the runner drains the queue
    done = drain_queue(aws.queue_url, validate, lambda: _Ctx("validate"), WalkStats())
    # Then the message was tried maxReceiveCount times and then moved to the dead-letter queue
    assert done == 2
    assert attempts["raw/o001"] == MAX_RECEIVES
    assert _depth(aws.queue_url) == 0
    assert _depth(aws.dlq_url) == 1


def test_kpi_table_totals_rates_from_counts_not_averages_of_rates():
    # Given two days with different volumes
    kpis = [
        {"day": "2026-03-02", "sessions": 100, "visitors": 80, "engaged_sessions": 50, "converted_sessions": 2,
         "engagement_rate": 0.5, "conversion_rate": 0.02, "orders": 2, "gross_revenue": 300.0, "refunds": 0.0,
         "net_revenue": 300.0, "aov": 150.0, "currency": "USD"},
        {"day": "2026-03-03", "sessions": 300, "visitors": 200, "engaged_sessions": 240, "converted_sessions": 12,
         "engagement_rate": 0.8, "conversion_rate": 0.04, "orders": 12, "gross_revenue": 1500.0, "refunds": 200.0,
         "net_revenue": 1300.0, "aov": 125.0, "currency": "USD"},
    ]  # fmt: skip
    # When the console table is built
    table = kpi_table(kpis)
    # Then the total line weighs days by their sessions: 290/400 engaged, 14/400 converted, AOV = gross 1800/14
    total = [col._cells[-1] for col in table.columns]
    assert total[:2] == ["Total", "400"]
    assert total[3] == "72.5%" and total[4] == "3.5%"
    assert total[5:] == ["14", "1,800.00", "200.00", "1,600.00", "128.57"]
    assert "money in USD" in str(table.title)


class _Ctx:
    def __init__(self, name: str) -> None:
        self.function_name = name


@pytest.fixture(autouse=True)
def _no_leftover_clock():
    yield
    from clickstream.core.clock import set_clock

    set_clock(None)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    def put_records(self, records: list[bytes]) -> None:
        self.calls.append(list(records))


def test_delivery_buffer_writes_one_batch_per_interval_on_the_simulated_clock():
    # Given Firehose's buffer with a 300 s interval in front of a recording sink
    from clickstream.core.clock import SimulatedClock
    from clickstream_local.runner import DeliveryBuffer

    clock = SimulatedClock(T0)
    sink = _Recorder()
    buffer = DeliveryBuffer(sink, timedelta(seconds=300), clock)
    # When three requests arrive within five minutes and a fourth after the interval
    for seconds, record in ((0, b"a"), (100, b"b"), (299, b"c"), (300, b"d")):
        clock.set(T0 + timedelta(seconds=seconds))
        buffer.put_records([record])
    # Then the first three went out together, in order, when the interval elapsed; the fourth waits
    assert sink.calls == [[b"a", b"b", b"c"]]
    assert buffer.pending == 1
    # And a tick past its own interval delivers it, and a flush with nothing pending writes nothing
    buffer.tick(T0 + timedelta(seconds=599))
    assert buffer.pending == 1
    buffer.tick(T0 + timedelta(seconds=600))
    buffer.flush()
    assert sink.calls == [[b"a", b"b", b"c"], [b"d"]] and buffer.flushes == 2


def test_delivery_buffer_delivers_early_when_the_size_hint_is_reached():
    # Given a buffer whose size hint is 10 bytes
    from clickstream.core.clock import SimulatedClock
    from clickstream_local.runner import DeliveryBuffer

    clock = SimulatedClock(T0)
    sink = _Recorder()
    buffer = DeliveryBuffer(sink, timedelta(seconds=300), clock, max_bytes=10)
    # When 12 bytes arrive at once
    buffer.put_records([b"123456", b"789012"])
    # Then they are delivered at once, without waiting for the interval
    assert sink.calls == [[b"123456", b"789012"]] and buffer.pending == 0
