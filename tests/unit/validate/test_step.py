"""The validate step against moto: outputs, ledger, redelivery, partial batch failures, real notifications."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from clickstream.adapters.aws import client
from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core import clock
from clickstream.core.config import get_settings
from clickstream.core.keys import object_stem
from clickstream.validate.step import validate_object
from tests.conftest import load_event
from tests.fakes.context import lambda_context
from tests.unit.validate.helpers import (
    T0,
    event,
    load_validate_handler,
    raw_object,
    record,
    s3_notification,
    sqs_event,
)

KEY = "raw/dt=2026-03-02/hr=10/clickstream-events-1-2026-03-02-10-05-00-abc"


@pytest.fixture
def sim_clock():
    sim = clock.SimulatedClock(datetime(2026, 3, 2, 10, 7, tzinfo=UTC))
    clock.set_clock(sim)
    yield sim
    clock.set_clock(None)


@pytest.fixture
def handler():
    return load_validate_handler()


def _stores(aws):
    s = aws.settings
    return S3ObjectStore(s.raw_bucket), S3ObjectStore(s.lake_bucket), DynamoStateStore(s.state_table)


def _lake_objects(aws) -> dict[str, bytes]:
    lake = S3ObjectStore(aws.settings.lake_bucket)
    return {k: lake.get_bytes(k) for k in lake.list_keys("")}


def _mixed_object():
    good, dup = event(), event("add_to_cart")
    return raw_object(
        record([good, dup, event(event_id="bad")]),
        record([dup], received_at=T0 + timedelta(seconds=30)),  # a retry of the same request part
        "garbage line",
    )


def test_validate_object_writes_parquet_quarantine_and_ledger(aws, sim_clock):
    # Given a raw object with 2 good events, a bad one, a retried duplicate and a corrupt line
    raw, lake, state = _stores(aws)
    raw.put_bytes(KEY, _mixed_object())
    # When validated
    row = validate_object(KEY, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    # Then the counts balance and the outputs sit under the object's arrival partition, named after it
    assert (row.records, row.events_in, row.validated, row.quarantined_total, row.duplicates) == (
        3,
        5,
        2,
        2,
        1,
    )
    assert row.quarantined == {"schema_violation": 1, "unparseable_record": 1}
    stem = object_stem(KEY)
    assert row.validated_key == f"validated/dt=2026-03-02/hr=10/{stem}.parquet"
    assert row.quarantine_key == f"quarantine/dt=2026-03-02/hr=10/{stem}.jsonl"
    objects = _lake_objects(aws)
    assert set(objects) == {row.validated_key, row.quarantine_key}
    q = [json.loads(line) for line in objects[row.quarantine_key].decode().splitlines()]
    assert [e["reason"] for e in q] == ["schema_violation", "unparseable_record"]
    assert all(e["source_object"] == KEY and e["quarantined_at"] for e in q)
    # And the ledger row is stored with the pipeline clock's validation time
    stored = state.get_ledger(KEY)
    assert stored["events_in"] == 5 and stored["quarantined"] == row.quarantined
    assert stored["validated_at"] == "2026-03-02T10:07:00.000000Z"
    assert stored["size"] == len(raw.get_bytes(KEY)) and len(stored["etag"]) == 32


def test_arrival_hour_from_max_received_at_when_the_key_has_no_partition(aws, sim_clock):
    # Given a key as moto's Firehose writes it (no dt=/hr=) and records received at 23:40 and 00:10
    raw, lake, state = _stores(aws)
    key = "raw/2030/01/01/00/clickstream-local-events-1-2030-01-01-00-00-00-xyz"
    late = datetime(2026, 3, 3, 0, 10, tzinfo=UTC)
    raw.put_bytes(
        key,
        raw_object(
            record([event()], received_at=late - timedelta(minutes=30)), record([event()], received_at=late)
        ),
    )
    # When validated
    row = validate_object(key, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    # Then the partition is the hour of the latest received_at (not the wall clock in the key)
    assert row.validated_key.startswith("validated/dt=2026-03-03/hr=00/")


def test_redelivery_three_times_rewrites_the_same_objects_and_one_ledger_row(aws, sim_clock, handler):
    # Given a raw object and its S3 notification
    raw, _, state = _stores(aws)
    raw.put_bytes(KEY, _mixed_object())
    body = s3_notification(aws.settings.raw_bucket, KEY)
    snapshots = []
    # When the same notification is delivered three times (the clock moving on between deliveries)
    for _ in range(3):
        answer = handler.lambda_handler(sqs_event(body), lambda_context("ValidateFunction"))
        assert answer == {"batchItemFailures": []}
        snapshots.append(_lake_objects(aws))
        sim_clock.advance(60)
    # Then the same keys hold the same Parquet bytes and the same quarantine rows (bar the timestamp)
    assert snapshots[0].keys() == snapshots[1].keys() == snapshots[2].keys()
    for name in snapshots[0]:
        if name.endswith(".parquet"):
            assert snapshots[0][name] == snapshots[1][name] == snapshots[2][name]
        else:
            rows = [
                [
                    {k: v for k, v in json.loads(x).items() if k != "quarantined_at"}
                    for x in s[name].splitlines()
                ]
                for s in snapshots
            ]
            assert rows[0] == rows[1] == rows[2]
    # And there is one ledger row, with the last validation time
    ledger = list(state.all_ledger())
    assert len(ledger) == 1 and ledger[0]["validated_at"] == "2026-03-02T10:09:00.000000Z"


def test_the_handler_emits_quarantined_counts_per_reason_beside_the_totals(aws, sim_clock, handler, capsys):
    # Given an object with a schema violation, an unparseable line and a duplicate
    raw, _, _ = _stores(aws)
    raw.put_bytes(KEY, _mixed_object())
    capsys.readouterr()
    # When the handler validates it
    handler.lambda_handler(sqs_event(s3_notification(aws.settings.raw_bucket, KEY)), lambda_context("v"))
    blobs = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    # Then one EventsQuarantined count per reason, with dimensions service and reason, in namespace Clickstream
    by_reason = {}
    for blob in blobs:
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        if "EventsQuarantined" in blob and "reason" in blob:
            assert directive["Namespace"] == "Clickstream"
            assert directive["Dimensions"] == [["service", "reason"]]
            assert blob["service"] == "clickstream"
            by_reason[blob["reason"]] = blob["EventsQuarantined"]
    assert by_reason == {"schema_violation": [1.0], "unparseable_record": [1.0]}
    # And the totals the quarantine-rate alarm reads are still there, without a reason
    totals = [b for b in blobs if "EventsIn" in b]
    assert len(totals) == 1 and "reason" not in totals[0]
    assert totals[0]["EventsQuarantined"] in ([2.0], 2.0)


def test_partial_batch_failure_reports_only_the_failed_message(aws, sim_clock, handler):
    # Given three messages: a good object, a missing object, and S3's test event
    raw, _, state = _stores(aws)
    raw.put_bytes(KEY, raw_object(record([event()])))
    bucket = aws.settings.raw_bucket
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket})
    batch = sqs_event(
        s3_notification(bucket, KEY),
        s3_notification(bucket, "raw/dt=2026-03-02/hr=10/missing-object"),
        test_event,
    )
    # When the batch is handled
    answer = handler.lambda_handler(batch, lambda_context("ValidateFunction"))
    # Then only the missing object's message is reported for retry; the good one is validated
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert state.get_ledger(KEY)["validated"] == 1


def test_keys_are_url_decoded_and_other_events_ignored(aws, sim_clock):
    # Given an object whose key has a space and a plus sign, announced URL-encoded
    from clickstream.validate.step import process_notification

    raw, _, state = _stores(aws)
    key = "raw/dt=2026-03-02/hr=10/odd name+1"
    raw.put_bytes(key, raw_object(record([event()])))
    bucket = aws.settings.raw_bucket
    # When the notification is processed, and a deletion and a non-raw key are announced too
    rows = process_notification(s3_notification(bucket, key), settings=get_settings())
    removed = process_notification(
        s3_notification(bucket, key, event_name="ObjectRemoved:Delete"), settings=get_settings()
    )
    elsewhere = process_notification(s3_notification(bucket, "errors/x"), settings=get_settings())
    # Then the decoded key is validated; the others do nothing
    assert [r.source_key for r in rows] == [key]
    assert state.get_ledger(key)["validated"] == 1
    assert removed == [] and elsewhere == []


def test_a_body_that_is_not_a_notification_fails_its_message(aws, handler):
    # Given two bodies that are not S3 notifications beside S3's test event
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    batch = sqs_event("not json", json.dumps({"hello": 1}), test_event)
    # When handled
    answer = handler.lambda_handler(batch, lambda_context("ValidateFunction"))
    # Then both are failed (retried, then parked in the DLQ), never silently dropped
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
    # And a batch where every message fails is failed whole (Powertools raises, Lambda retries the batch)
    with pytest.raises(BatchProcessingError):
        handler.lambda_handler(sqs_event("not json"), lambda_context("ValidateFunction"))


def test_a_fix_that_empties_an_output_removes_the_stale_file(aws, sim_clock):
    # Given an object validated once with a quarantined event
    raw, lake, state = _stores(aws)
    raw.put_bytes(KEY, raw_object(record([event(), event(event_id="bad")])))
    first = validate_object(KEY, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    assert first.quarantine_key is not None
    # When the object is re-validated after its content no longer yields a quarantined event
    raw.put_bytes(KEY, raw_object(record([event()])))
    second = validate_object(KEY, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    # Then the old quarantine file is gone and the ledger says so
    assert second.quarantine_key is None
    assert set(_lake_objects(aws)) == {second.validated_key}
    assert "quarantine_key" not in state.get_ledger(KEY)


def test_object_without_readable_records_keeps_its_first_arrival(aws, sim_clock):
    # Given an object of garbage under a key without partition
    raw, lake, state = _stores(aws)
    key = "raw/garbage-object"
    raw.put_bytes(key, b"\x00\x01 nothing here\n")
    first = validate_object(key, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    # When it is redelivered hours later
    sim_clock.advance(3 * 3600)
    second = validate_object(key, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    # Then it is quarantined under the same key both times, and no Parquet is written
    assert first.quarantine_key == second.quarantine_key
    assert first.quarantine_key.startswith("quarantine/dt=2026-03-02/hr=10/")
    assert (second.validated_key, second.events_in, second.quarantined) == (
        None,
        1,
        {"unparseable_record": 1},
    )


def test_end_to_end_through_moto_firehose_and_sqs(aws, sim_clock, handler, tmp_path):
    # Given records put through the real Firehose delivery stream (moto writes them to raw/ and notifies SQS)
    records = [record([event(), event("view_item")]), record([event("purchase")], anonymous_id="anon-2")]
    client("firehose").put_record_batch(
        DeliveryStreamName=aws.settings.delivery_stream,
        Records=[{"Data": (json.dumps(r) + "\n").encode()} for r in records],
    )
    sqs = client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)["Messages"]
    # When the queue's messages (moto's own S3 notification bodies, and its test event) are handled
    batch = sqs_event(*(m["Body"] for m in messages))
    answer = handler.lambda_handler(batch, lambda_context("ValidateFunction"))
    # Then every event is validated into one Parquet file readable by DuckDB
    assert answer == {"batchItemFailures": []}
    [ledger] = list(DynamoStateStore(aws.settings.state_table).all_ledger())
    assert (ledger["events_in"], ledger["validated"]) == (3, 3)
    lake = S3ObjectStore(aws.settings.lake_bucket)
    local = lake.download(ledger["validated_key"], tmp_path / "v.parquet")
    assert duckdb.connect().execute(
        f"SELECT count(DISTINCT event_id) FROM read_parquet('{local}')"
    ).fetchall() == [(3,)]


def test_sample_event_file_is_an_sqs_batch_with_an_s3_notification():
    # The sample for `sam local invoke` parses into one raw object of the configured raw bucket
    from clickstream.validate.notifications import parse_notification

    sample = load_event("validate_sqs.json")
    [ref] = parse_notification(sample["Records"][0]["body"])
    assert ref.bucket == "clickstream-local-raw"
    assert ref.key.startswith("raw/dt=2026-03-02/hr=09/")


def test_the_set_based_engine_and_the_python_judge_leave_the_same_outputs_and_ledger(
    aws, sim_clock, monkeypatch, tmp_path
):
    # Given an object of plain and odd events (a bad one, a retried duplicate, a conflicting reuse of an id)
    from clickstream.validate import engine

    good, dup = event(), event("add_to_cart")
    data = raw_object(
        record([good, dup, event(event_id="bad")]),
        record([dup, dict(good, properties={"x": 1})], received_at=T0 + timedelta(seconds=30)),
    )
    raw, lake, state = _stores(aws)
    raw.put_bytes(KEY, data)
    # When it is validated by the Python judge (small objects) and again with the engine's threshold at zero
    by_python = validate_object(KEY, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    python_lake = _lake_objects(aws)
    monkeypatch.setattr(engine, "ENGINE_MIN_BYTES", 0)
    calls = []
    real = engine.run_engine
    monkeypatch.setattr(engine, "run_engine", lambda *a, **k: calls.append(1) or real(*a, **k))
    by_engine = validate_object(KEY, settings=aws.settings, raw_store=raw, lake_store=lake, state=state)
    # Then the engine ran, and the ledger, the quarantine file and the Parquet rows are the same
    assert calls == [1]
    fields = ("validated_key", "quarantine_key", "events_in", "validated", "quarantined", "duplicates")
    assert [getattr(by_engine, f) for f in fields] == [getattr(by_python, f) for f in fields]
    assert by_engine.quarantined == {"duplicate_conflict": 1, "schema_violation": 1}
    engine_lake = _lake_objects(aws)
    assert engine_lake.keys() == python_lake.keys()
    q = by_engine.quarantine_key

    def entries(body: bytes) -> list[dict]:
        return [
            {k: v for k, v in json.loads(line).items() if k != "quarantined_at"} for line in body.splitlines()
        ]

    assert entries(engine_lake[q]) == entries(python_lake[q])
    rows = []
    for body in (python_lake[by_python.validated_key], engine_lake[by_engine.validated_key]):
        path = tmp_path / f"v-{len(rows)}.parquet"
        path.write_bytes(body)
        rows.append(
            duckdb.connect().execute(f"SELECT * EXCLUDE (items, properties) FROM '{path}'").fetchall()
        )
    assert rows[0] == rows[1] and len(rows[0]) == 2
