"""functions/ingest/app.py end to end: the real handler, Firehose in moto, the raw object in S3."""

from __future__ import annotations

import json

from clickstream.adapters.aws import client
from clickstream.core.config import get_settings
from clickstream.core.observability import metrics
from clickstream.ingest.sink import get_sink, set_sink
from tests.conftest import load_event
from tests.fakes.context import lambda_context
from tests.fakes.sink import MemorySink

from .conftest import SUB, api_event, envelope


def _raw_objects(bucket: str) -> list[str]:
    s3 = client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="raw/").get("Contents", [])
    return [s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode() for o in listed]


def test_handler_writes_the_request_through_firehose_to_the_raw_bucket(aws, ingest_handler):
    # Given the stack in moto (Firehose delivering into the raw bucket under raw/)
    event = load_event("ingest_native.json")
    # When API Gateway invokes the handler with the sample request
    response = ingest_handler.lambda_handler(event, lambda_context("IngestFunction", memory_mb=256))
    # Then it answers 202 with the count
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {"accepted": 3}
    # And the raw bucket holds the request as one JSON line
    [text] = _raw_objects(aws.settings.raw_bucket)
    lines = text.splitlines()
    assert len(lines) == 1 and text.endswith("\n")
    record = json.loads(lines[0])
    assert record["user_id"] == SUB
    assert record["events"] == json.loads(event["body"])["events"]
    assert record["received_at"] == "2026-03-02T14:05:09.731Z"


def test_handler_gzip_sample_reaches_s3(aws, ingest_handler):
    response = ingest_handler.lambda_handler(
        load_event("ingest_gzip.json"), lambda_context("IngestFunction", memory_mb=256)
    )
    assert response["statusCode"] == 202
    [text] = _raw_objects(aws.settings.raw_bucket)
    assert len(json.loads(text)["events"]) == 3


def test_handler_rejection_writes_nothing(aws, ingest_handler):
    # Given the sample with a broken envelope
    response = ingest_handler.lambda_handler(
        load_event("ingest_bad_envelope.json"), lambda_context("IngestFunction", memory_mb=256)
    )
    # Then it is a 400 and the raw bucket stays empty
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["field"] == "anonymous_id"
    assert _raw_objects(aws.settings.raw_bucket) == []


def test_missing_delivery_stream_is_503_with_nothing_accepted(aws, ingest_handler, monkeypatch):
    # Given the function configured for a delivery stream that does not exist
    monkeypatch.setenv("DELIVERY_STREAM", "no-such-stream")
    get_settings.cache_clear()
    # When a valid request arrives
    response = ingest_handler.lambda_handler(
        api_event(envelope()), lambda_context("IngestFunction", memory_mb=256)
    )
    # Then it is a 503 in the JSON error shape and nothing reached S3
    assert response["statusCode"] == 503
    body = json.loads(response["body"])
    assert body["error"]["code"] == "delivery_failed" and "accepted" not in body
    assert _raw_objects(aws.settings.raw_bucket) == []


def test_default_sink_is_firehose_on_the_configured_stream_and_can_be_replaced(aws, ingest_handler):
    # Given the default configuration
    settings = get_settings()
    # Then the sink is the configured Firehose stream
    assert get_sink(settings).stream_name == aws.settings.delivery_stream  # type: ignore[attr-defined]
    # And an installed sink takes its place for the real handler until removed
    memory = MemorySink([])
    set_sink(memory)
    try:
        response = ingest_handler.lambda_handler(
            api_event(envelope()), lambda_context("IngestFunction", memory_mb=256)
        )
    finally:
        set_sink(None)
    assert response["statusCode"] == 202 and len(memory.records) == 1
    assert _raw_objects(aws.settings.raw_bucket) == []
    assert get_sink(settings).stream_name == aws.settings.delivery_stream  # type: ignore[attr-defined]


def test_handler_publishes_accepted_events_metric(aws, ingest_handler, capsys):
    # Given no metrics pending from earlier direct calls of the API
    metrics.clear_metrics()
    # When a 3-event request is accepted
    ingest_handler.lambda_handler(
        load_event("ingest_native.json"), lambda_context("IngestFunction", memory_mb=256)
    )
    # Then the flushed EMF metrics count the accepted events
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    accepted = [m for m in emf if "AcceptedEvents" in m]
    assert accepted and accepted[-1]["AcceptedEvents"] == [3.0]


def test_handler_publishes_rejections_by_code(aws, ingest_handler, capsys):
    # Given no metrics pending from earlier direct calls of the API
    metrics.clear_metrics()
    # When a request without identity is refused
    ingest_handler.lambda_handler(
        api_event(envelope(), claims=None), lambda_context("IngestFunction", memory_mb=256)
    )
    # Then one rejection is counted under its code, and one in the invocation's total
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["RejectedRequests"] for m in emf if m.get("code") == "unauthorized"] == [[1.0]]
    assert [m["RejectedRequests"] for m in emf if "code" not in m and "RejectedRequests" in m] == [[1.0]]


def test_ingest_handler_imports_no_heavy_engine():
    # Given a fresh interpreter, as in a Lambda cold start
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(REPO_ROOT / 'functions/ingest/app.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(','.join(m for m in ('duckdb', 'pyarrow', 'pandas', 'psycopg', 'boto3', 'pydantic') if m in sys.modules))\n"
    )
    # When the ingest handler module is imported
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    # Then neither the engines, boto3 (created lazily on first use) nor pydantic (the contract is compiled JSON Schema) were loaded
    assert out.stdout.strip() == ""


def test_snowplow_and_guest_samples_reach_s3_through_the_real_handler(aws, ingest_handler):
    # Given the tp2 sample (a captured tracker batch) and the guest sample (SigV4, identity-pool identity)
    tp2 = load_event("ingest_snowplow.json")
    guest = load_event("ingest_guest.json")
    # When API Gateway invokes the handler with each
    answers = [
        ingest_handler.lambda_handler(e, lambda_context("IngestFunction", memory_mb=256))
        for e in (tp2, guest)
    ]
    # Then both are accepted and land in the raw bucket under their identities
    assert [a["statusCode"] for a in answers] == [202, 202]
    records = [
        json.loads(line) for text in _raw_objects(aws.settings.raw_bucket) for line in text.splitlines()
    ]
    by_source = {r["source"]: r for r in records}
    assert by_source["snowplow"]["user_id"] == SUB and "guest_id" not in by_source["snowplow"]
    native = by_source["native"]
    assert native["user_id"] is None
    assert native["guest_id"] == guest["requestContext"]["identity"]["cognitoIdentityId"]
