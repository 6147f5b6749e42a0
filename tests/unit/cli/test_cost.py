"""``clickstream cost``: the model against a case computed by hand, the price table's form, the command's output."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from clickstream_cli.cost.model import (
    CostError,
    Fit,
    StackFacts,
    Workload,
    estimate,
    fit_two,
    hours_between_runs,
    load_prices,
    load_workload,
    stack_facts,
    tiered,
)
from clickstream_cli.main import main
from clickstream_local.template import load_template

PRICES = load_prices("us-east-1")

STACK = StackFacts(
    memory_mb={
        "IngestFunction": 512,
        "ValidateFunction": 2048,
        "PlanFunction": 512,
        "SessionizeFunction": 3008,
        "LoadFunction": 2048,
        "AggregateFunction": 1024,
        "CommitFunction": 256,
    },
    n_buckets=4,
    hours_per_run=1.0,
    firehose_buffer_seconds=300,
    firehose_buffer_mb=64,
    raw_retention_days=400,
    log_retention_days=30,
    warehouse_instance_class="db.t4g.micro",
    warehouse_storage_gb=20,
    warehouse_multi_az=False,
    warehouse_interface_endpoints=3,
    alarm_metrics=20,
    dashboards=1,
    kms_keys=1,
)
ZERO = Fit(0.0, 0.0)
STEPS = ("plan", "sessionize", "load", "aggregate", "commit")
WORKLOAD = Workload(
    events_per_request=5.0,
    record_bytes=Fit(1000.0, 400.0),  # 10 events: 5,000 bytes, billed as 5,120
    gzip_ratio=0.1,
    gzip_bytes_per_event_full_batch=100.0,
    ingest_log_bytes=400.0,
    ingest_metric_bytes=300.0,
    validate_seconds=Fit(1.0, 0.0),
    validate_log_bytes=1000.0,
    validate_s3=(2, 1),
    validate_units=(2, 2),
    step_invocations={"plan": 1, "sessionize": 4, "load": 1, "aggregate": 1, "commit": 1},
    step_seconds={name: Fit(1.0, 0.0) for name in STEPS},
    step_log_bytes={name: Fit(1000.0, 0.0) for name in STEPS},
    run_s3=(Fit(10.0, 0.0), Fit(20.0, 0.0)),
    run_units=(Fit(10.0, 0.0), Fit(10.0, 0.0)),
    transitions_per_run=11,
    lake_bytes={"sessionized": Fit(0.0, 100.0), "runs": Fit(1000.0, 0.0)},
    bench={
        "ingest_handler_ms": 0.67,
        "ingest_import_ms": 136,
        "validate_events_per_second": 25_000,
        "sessionize_seconds_per_million_events": 3.0,
        "load_seconds_per_million_events": 18.0,
    },
    assumed={
        "hours_per_month": 730,
        "firehose_put_ms": 20,
        "cold_start_share": 0.001,
        "lambda_platform_log_bytes": 300,
        "api_access_log_bytes": 400,
        "log_storage_compression": 0.15,
        "warehouse_bytes_per_event": 350,
        "months_of_data": 12,
        "sqs_idle_receives_per_second": 0.25,
        "sqs_requests_per_message": 3,
        "xray_reservoir_per_second": 1,
        "xray_sampled_share": 0.05,
        "alb_request_header_bytes": 1500,
        "alb_new_connection_share": 1.0,
        "endpoint_azs": 2,
        "store_page_views_per_event": 0.25,
        "store_bytes_per_page_view": 60_000,
        "store_requests_per_page_view": 6,
    },
    custom_metrics=40,
)


def _line(est, service: str, item: str):
    (line,) = [x for x in est.lines if x.service == service and x.item.startswith(item)]
    return line


def test_hand_computed_case_at_10_requests_a_second() -> None:
    est = estimate(10, events_per_request=10, stack=STACK, workload=WORKLOAD, prices=PRICES)
    # 10 requests/s x 730 h x 3,600 s = 26,280,000 requests a month
    assert _line(est, "API Gateway", "REST").quantity == 26_280_000
    assert _line(est, "API Gateway", "REST").usd == pytest.approx(91.98)  # 26.28 M x $3.50
    assert _line(est, "Lambda", "ingest invocations").usd == pytest.approx(5.256)  # 26.28 M x $0.20
    # 0.67 + 20 ms -> 21 ms billed at 0.5 GB: 275,940 GB-s; cold starts 26,280 x 0.136 s x 0.5 GB = 1,787.04
    compute = _line(est, "Lambda", "ingest compute")
    assert compute.quantity == pytest.approx(277_727.04)
    assert compute.usd == pytest.approx(277_727.04 * 0.0000166667)
    # a 5,000-byte record is billed as 5,120: 26.28 M x 5,120 B = 125.3127 GiB x $0.029
    assert _line(est, "Firehose", "ingestion").quantity == pytest.approx(125.3127, rel=1e-6)
    assert _line(est, "Firehose", "ingestion").usd == pytest.approx(3.634068, rel=1e-6)
    # 180 MB of records an hour, under the 64 MB x 12 buffers: 12 objects an hour, 8,760 a month; 730 runs
    # of 4 + 4 = 8 invocations (1 + 4 + 1 + 1 + 1): 8,760 + 5,840 = 14,600 invocations
    assert _line(est, "Lambda", "validate and pipeline").quantity == pytest.approx(14_600)
    # validate: 1 s + 30,000 events / 25,000 per s = 2.2 s x 2 GB x 8,760 objects = 38,544 GB-s
    assert _line(est, "Lambda", "validate compute").quantity == pytest.approx(38_544)
    # a run of 360,000 events (each step's seconds summed over its invocations): sessionize 1 + 1.08 s at
    # 2.9375 GB, load 1 + 6.48 s at 2 GB, plan 1 s at 0.5 GB, aggregate 1 s at 1 GB, commit 1 s at 0.25 GB
    assert _line(est, "Lambda", "pipeline compute").quantity == pytest.approx(
        730 * (2.08 * 3008 / 1024 + 7.48 * 2 + 0.5 + 1 + 0.25)
    )
    # S3 PUTs: 8,760 x (1 Firehose + 2) + 730 x 10 = 33,580; GETs 8,760 + 730 x 20 = 23,360
    assert _line(est, "S3", "PUT").quantity == 33_580
    assert _line(est, "S3", "GET").quantity == 23_360
    # SQS: 8,760 x 3 + 2,628,000 s x 0.25 = 683,280 requests x $0.40 / M
    assert _line(est, "SQS", "requests").usd == pytest.approx(0.273312)
    assert _line(est, "Step Functions", "state transitions").quantity == 8_030  # 730 x 11
    assert _line(est, "RDS", "PostgreSQL").usd == pytest.approx(11.68)  # 730 h x $0.016
    # 262.8 M events x 12 months x 350 B = 1,027.96 GiB of gp3 x $0.115
    assert _line(est, "RDS", "gp3").quantity == pytest.approx(1027.96, rel=1e-5)
    assert _line(est, "VPC", "interface").usd == pytest.approx(43.8)  # 3 x 2 AZ x 730 h x $0.01
    # X-Ray: 1 + 5 % of 9 = 1.45 traces/s x 2,628,000 s + 8,760 objects + 730 runs
    assert _line(est, "X-Ray", "traces").quantity == pytest.approx(3_820_090)
    assert _line(est, "CloudWatch", "custom metrics").usd == pytest.approx(12.0)
    assert _line(est, "CloudWatch", "alarms").usd == pytest.approx(2.0)
    # logs: 26.28 M x (400 + 300 + 300 + 400) + 8,760 x 1,300 + 730 x 5,000 + 5,840 x 300 bytes
    logs = (26_280_000 * 1400 + 8760 * 1300 + 730 * 5000 + 5840 * 300) / 1024**3
    assert _line(est, "CloudWatch", "logs ingested").quantity == pytest.approx(logs)
    assert est.total == pytest.approx(sum(x.usd for x in est.lines))
    assert sum(est.by_service().values()) == pytest.approx(est.total)


def test_volume_tiers_of_the_apis() -> None:
    # 1,000 requests/s: 2.628 B requests: 333 M x 3.50 + 667 M x 2.80 + 1.628 B x 2.38 = 6,907.74
    rest = estimate(1000, events_per_request=10, stack=STACK, workload=WORKLOAD, prices=PRICES)
    assert _line(rest, "API Gateway", "REST").usd == pytest.approx(6907.74)
    http = estimate(1000, events_per_request=10, api="http", stack=STACK, workload=WORKLOAD, prices=PRICES)
    assert _line(http, "API Gateway", "HTTP").usd == pytest.approx(2395.2)  # 300 M x 1.00 + 2,328 M x 0.90
    alb = estimate(1000, events_per_request=10, api="alb", stack=STACK, workload=WORKLOAD, prices=PRICES)
    # 40 LCU (1,000 new connections/s / 25) x 730 h x $0.008 + 730 h x $0.0225
    assert sum(x.usd for x in alb.lines if x.service == "Load balancer") == pytest.approx(233.6 + 16.425)
    assert tiered(10, [[5, 1e6], [None, 2e6]]) == pytest.approx(15.0)


def test_records_round_up_to_5_kb_and_buffers_fill_by_size() -> None:
    at_11 = estimate(10, events_per_request=11, stack=STACK, workload=WORKLOAD, prices=PRICES)
    assert "billed as 10240" in _line(at_11, "Firehose", "ingestion").note  # 5,400 bytes -> 2 x 5 KB
    # 1,000 requests/s of 5,000-byte records: 18 GB an hour fills 64 MiB buffers 268 times an hour
    busy = estimate(1000, events_per_request=10, stack=STACK, workload=WORKLOAD, prices=PRICES)
    assert "268.2 raw objects an hour" in _line(busy, "Lambda", "validate compute").note


def test_warehouse_options_and_bad_inputs() -> None:
    byo = estimate(10, warehouse="byo", stack=STACK, workload=WORKLOAD, prices=PRICES)
    assert not [x for x in byo.lines if x.service in ("VPC", "Secrets Manager")]
    assert _line(byo, "RDS", "bring your own").usd == 0
    multi = estimate(10, stack=replace(STACK, warehouse_multi_az=True), workload=WORKLOAD, prices=PRICES)
    assert _line(multi, "RDS", "PostgreSQL").usd == pytest.approx(23.36)
    with pytest.raises(CostError, match="instance class"):
        estimate(
            10, stack=replace(STACK, warehouse_instance_class="db.x9.huge"), workload=WORKLOAD, prices=PRICES
        )
    for rps in (0, -1, float("nan"), float("inf")):
        with pytest.raises(CostError, match="--rps"):
            estimate(rps, stack=STACK, workload=WORKLOAD, prices=PRICES)
    with pytest.raises(CostError, match="region 'eu-west-9'"):
        load_prices("eu-west-9")
    assert estimate(10, stack=STACK, workload=WORKLOAD, prices=PRICES).events_per_request == 5.0
    with pytest.raises(CostError, match="--months"):
        estimate(10, months=0.5, stack=STACK, workload=WORKLOAD, prices=PRICES)


def test_the_store_behind_cloudfront_is_priced_on_request() -> None:
    plain = estimate(10, events_per_request=10, stack=STACK, workload=WORKLOAD, prices=PRICES)
    assert _line(plain, "CloudFront", "store").usd == 0
    cdn = estimate(10, events_per_request=10, store_cdn=True, stack=STACK, workload=WORKLOAD, prices=PRICES)
    # 262.8 M events / 4 = 65.7 M page views: x 60,000 B = 3,671.3 GiB x $0.085; x 6 requests x $0.01 / 10,000
    assert _line(cdn, "CloudFront", "store: data out").usd == pytest.approx(312.06, rel=1e-4)
    assert _line(cdn, "CloudFront", "store: HTTPS").usd == pytest.approx(394.2)
    assert cdn.total - plain.total == pytest.approx(312.06 + 394.2, rel=1e-4)


def test_every_price_is_dated_and_sourced() -> None:
    for key, price in PRICES.items():
        assert price["as_of"] and price["source"].startswith("https://aws.amazon.com/"), key
        assert price["unit"], key
        assert "price" in price or "tiers" in price or "classes" in price, key


def test_the_stack_is_read_from_the_template() -> None:
    facts = stack_facts(load_template())
    assert facts.memory_mb["IngestFunction"] == 512
    assert set(WORKLOAD.step_invocations) == set(STEPS)
    assert facts.warehouse_instance_class == "db.t4g.micro"
    assert facts.hours_per_run == 1.0 and facts.n_buckets == 4
    assert facts.firehose_buffer_seconds == 300 and facts.firehose_buffer_mb == 64
    assert facts.dashboards == 1 and facts.kms_keys >= 1 and facts.warehouse_interface_endpoints == 3
    assert facts.alarm_metrics >= 17  # one per alarm at least, more for metric-math alarms
    assert hours_between_runs("rate(15 minutes)") == 0.25 and hours_between_runs("rate(1 day)") == 24


def test_the_measured_workload_loads() -> None:
    work = load_workload()
    assert 1 <= work.events_per_request <= 10  # the tracker's batch size caps what a request carries
    assert work.record_bytes.per_event > 0 and 0 < work.gzip_ratio < 1
    assert fit_two([(1000, 3.0), (10_000, 12.0)]) == Fit(2.0, 0.001)


def test_the_command_prints_every_service_and_the_assumptions(capsys) -> None:
    assert main(["cost", "--rps", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    services = set(doc["by_service"])
    assert {"API Gateway", "Lambda", "Firehose", "S3", "SQS", "Step Functions", "DynamoDB", "RDS"} <= services
    assert {"CloudWatch", "CloudFront"} <= services
    assert doc["total_usd_per_month"] == pytest.approx(sum(line["usd"] for line in doc["lines"]), abs=0.01)
    assert any("List prices as of" in text for text in doc["assumptions"])
    assert main(["cost", "--rps", "100", "--api", "http", "--events-per-request", "10"]) == 0
    text = capsys.readouterr().out
    assert "HTTP API requests" in text and "Total" in text and "Assumptions" in text
    assert main(["cost", "--rps", "10", "--region", "eu-west-9"]) == 2
    assert "no prices for region 'eu-west-9'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cost", "--rps", "0"])


def test_the_command_says_when_there_is_no_template(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("CLICKSTREAM_TEMPLATE", str(tmp_path / "missing.yaml"))
    assert main(["cost", "--rps", "10"]) == 2
    assert "no such file" in capsys.readouterr().err
