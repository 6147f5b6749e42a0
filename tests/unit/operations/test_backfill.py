"""The back-fill's re-validation: which raw objects a range names, and the notifications it re-drives."""

from __future__ import annotations

from datetime import timedelta

from clickstream.adapters.aws import client
from clickstream.adapters.factory import Adapters
from clickstream.adapters.queue import SqsQueue
from clickstream.core.times import iso
from clickstream.operations.backfill import notification, parse_days, raw_objects_of, redrive, revalidated
from clickstream.validate.notifications import parse_notification
from tests.unit.pipeline.conftest import T0


def test_a_range_names_the_raw_objects_that_arrived_on_its_days(aws, state, lake):
    # Given ledger rows (one object validated into another day's partition, one with no valid event) and a raw
    # object that never reached the ledger
    from clickstream.adapters.storage import S3ObjectStore

    raw = S3ObjectStore(aws.settings.raw_bucket)
    state.put_ledger(
        {
            "source_key": "raw/a",
            "validated_at": T0,
            "validated_key": "validated/dt=2026-03-02/hr=09/a.parquet",
        }
    )
    state.put_ledger(
        {
            "source_key": "raw/b",
            "validated_at": T0,
            "validated_key": "validated/dt=2026-03-04/hr=01/b.parquet",
        }
    )
    state.put_ledger({"source_key": "raw/dt=2026-03-03/hr=02/c", "validated_at": T0 + timedelta(days=1)})
    raw.put_bytes("raw/dt=2026-03-03/hr=05/never-validated", b"{}")
    raw.put_bytes("raw/dt=2026-03-05/hr=05/later", b"{}")
    # When the range 2026-03-02..03 is resolved
    keys = raw_objects_of(parse_days("2026-03-02", "2026-03-03"), state, raw)
    # Then it holds the objects of those arrival days only
    assert keys == ["raw/a", "raw/dt=2026-03-03/hr=02/c", "raw/dt=2026-03-03/hr=05/never-validated"]


def test_redriven_notifications_are_what_the_validate_function_reads(aws):
    # Given a raw key with characters S3 encodes
    key = "raw/dt=2026-03-02/hr=09/clickstream events+1"
    # When its notification is built and re-driven through the validate queue
    assert redrive([key], Adapters(aws.settings, queue=SqsQueue(aws.queue_url))) == 1
    messages = client("sqs").receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)["Messages"]
    # Then the validate function's parser reads back the bucket and the exact key (beside S3's own test event)
    (ref,) = [r for m in messages for r in parse_notification(m["Body"])]
    assert (ref.bucket, ref.key) == (aws.settings.raw_bucket, key)
    assert parse_notification(notification("b", "k")) and "ObjectCreated:Put" in notification("b", "k")


def test_only_rows_validated_since_the_backfill_started_count_as_revalidated(aws, state):
    # Given two objects, one validated again after the back-fill started
    state.put_ledger({"source_key": "raw/a", "validated_at": T0})
    state.put_ledger({"source_key": "raw/b", "validated_at": T0 + timedelta(minutes=5)})
    # Then only it counts
    assert revalidated(["raw/a", "raw/b", "raw/missing"], state, T0 + timedelta(minutes=1)) == 1
    assert iso(T0)
