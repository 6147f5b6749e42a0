"""The monthly cost of running the stack at a given request rate, per service, from three inputs kept apart:

* **the stack** (:class:`StackFacts`, read from ``template.yaml``): each function's memory, the pipeline's schedule
  and buckets, Firehose's buffer, retentions, the warehouse's instance class and storage, the alarms' metrics,
  dashboards, KMS keys and the VPC endpoints the warehouse option creates;
* **the workload** (:class:`Workload`): what an hour of traffic costs the stack in requests and bytes, measured on the
  laptop stack at two sizes (``workload.json``, ``scripts/measure_workload.py``; the two sizes separate what a run
  costs whatever its size from what each event adds), the heavy steps' durations from ``bench/`` and the stated
  assumptions (``assumptions.json``);
* **the prices** (``prices.json``): dated AWS list prices, each with its source.

:func:`estimate` turns them into :class:`Line` s (service, item, quantity, unit price, USD a month). Free tiers are
left out (they are per account, not per stack). A month is ``hours_per_month`` hours.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
GIB = 1024**3
API_KINDS = ("rest", "http", "alb")
WAREHOUSE_KINDS = ("rds", "byo")
# The functions of the state machine, by the name the measurement gives each step.
STEP_FUNCTIONS = {
    "plan": "PlanFunction",
    "sessionize": "SessionizeFunction",
    "load": "LoadFunction",
    "aggregate": "AggregateFunction",
    "commit": "CommitFunction",
}
# S3 operations billed at the PUT price (the rest at the GET price); calls the harness makes are not the stack's.
S3_PUT_CLASS = {
    "PutObject",
    "CopyObject",
    "ListObjectsV2",
    "ListObjects",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "DeleteObjects",
}
HARNESS_SERVICES = {"stepfunctions", "lambda"}


class CostError(ValueError):
    """The inputs cannot be priced (an unknown region or instance class, a bad rate)."""


# -- inputs -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackFacts:
    """What the template fixes that the bill depends on (its parameters' defaults)."""

    memory_mb: Mapping[str, int]
    n_buckets: int
    hours_per_run: float
    firehose_buffer_seconds: int
    firehose_buffer_mb: int
    raw_retention_days: int
    log_retention_days: int
    warehouse_instance_class: str
    warehouse_storage_gb: int
    warehouse_multi_az: bool
    warehouse_interface_endpoints: int
    alarm_metrics: int
    dashboards: int
    kms_keys: int


def _default(template: Mapping[str, Any], name: str) -> Any:
    return template["Parameters"][name]["Default"]


def hours_between_runs(schedule: str) -> float:
    """Hours between two runs of an EventBridge ``rate(...)`` expression (a ``cron(...)`` is taken as hourly)."""
    m = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", schedule.strip())
    if not m:
        return 1.0
    n, unit = int(m.group(1)), m.group(2).rstrip("s")
    return n * {"minute": 1 / 60, "hour": 1.0, "day": 24.0}[unit]


def stack_facts(template: Mapping[str, Any]) -> StackFacts:
    """:class:`StackFacts` of ``template`` (a loaded ``template.yaml``)."""
    resources = template["Resources"]
    glob = template.get("Globals", {}).get("Function", {})
    memory = {
        name: int(r.get("Properties", {}).get("MemorySize", glob.get("MemorySize", 128)))
        for name, r in resources.items()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    streams = [r for r in resources.values() if r.get("Type") == "AWS::KinesisFirehose::DeliveryStream"]
    hints = streams[0]["Properties"]["ExtendedS3DestinationConfiguration"]["BufferingHints"]
    buffer_s = hints["IntervalInSeconds"]
    buffer_s = _default(template, buffer_s["Ref"]) if isinstance(buffer_s, dict) else buffer_s
    alarm_metrics = 0
    for r in resources.values():
        if r.get("Type") == "AWS::CloudWatch::Alarm":
            metrics = r["Properties"].get("Metrics")
            alarm_metrics += sum(1 for m in metrics if "MetricStat" in m) if metrics else 1
    endpoints = sum(
        1
        for r in resources.values()
        if r.get("Type") == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    )
    return StackFacts(
        memory_mb=memory,
        n_buckets=int(_default(template, "NBuckets")),
        hours_per_run=hours_between_runs(str(_default(template, "PipelineSchedule"))),
        firehose_buffer_seconds=int(buffer_s),
        firehose_buffer_mb=int(hints["SizeInMBs"]),
        raw_retention_days=int(_default(template, "RawRetentionDays")),
        log_retention_days=int(_default(template, "LogRetentionDays")),
        warehouse_instance_class=str(_default(template, "WarehouseInstanceClass")),
        warehouse_storage_gb=int(_default(template, "WarehouseAllocatedStorageGb")),
        warehouse_multi_az=str(_default(template, "WarehouseMultiAz")) == "true",
        warehouse_interface_endpoints=endpoints,
        alarm_metrics=alarm_metrics,
        dashboards=sum(1 for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Dashboard"),
        kms_keys=sum(1 for r in resources.values() if r.get("Type") == "AWS::KMS::Key"),
    )


@dataclass(frozen=True)
class Fit:
    """``fixed + per_event * events`` of one quantity of a pipeline run (or of a raw object)."""

    fixed: float
    per_event: float

    def at(self, events: float) -> float:
        return max(0.0, self.fixed + self.per_event * events)


def fit_two(points: list[tuple[float, float]]) -> Fit:
    """The line through the smallest and the largest of ``(events, value)`` points (one point: all per event)."""
    points = sorted(points)
    (x0, y0), (x1, y1) = points[0], points[-1]
    if x1 == x0:
        return Fit(0.0, y1 / x1 if x1 else 0.0)
    slope = (y1 - y0) / (x1 - x0)
    return Fit(y0 - slope * x0, slope)


@dataclass(frozen=True)
class Workload:
    """Per request, per raw object and per run figures (sizes and counts measured, durations benchmarked)."""

    events_per_request: float  # the generator's mean through the tracker's batching
    record_bytes: Fit  # per request: ingest's Firehose record, by the request's events
    gzip_ratio: float  # raw object bytes / record bytes
    gzip_bytes_per_event_full_batch: float  # the tracker's body, gzip, in a full batch
    ingest_log_bytes: float  # per invocation, JSON log lines
    ingest_metric_bytes: float  # per invocation, EMF lines
    validate_seconds: Fit  # per raw object, by its events (laptop; only the fixed part is used)
    validate_log_bytes: float  # per object (logs + EMF)
    validate_s3: tuple[float, float]  # (PUT-class, GET-class) calls per object
    validate_units: tuple[float, float]  # DynamoDB (read, write) units per object
    step_invocations: Mapping[str, float]  # per run
    step_seconds: Mapping[str, Fit]  # per run, laptop stack
    step_log_bytes: Mapping[str, Fit]  # per run
    run_s3: tuple[Fit, Fit]  # (PUT-class, GET-class) calls per run
    run_units: tuple[Fit, Fit]  # DynamoDB (read, write) units per run
    transitions_per_run: float
    lake_bytes: Mapping[str, Fit]  # per run, by prefix of the lake bucket
    bench: Mapping[str, float]
    assumed: Mapping[str, float]
    custom_metrics: int
    measured_on: str = ""


def _s3_split(calls: Mapping[str, int]) -> tuple[int, int]:
    put = get = 0
    for key, n in calls.items():
        service, op = key.split(":", 1)
        if service != "s3":
            continue
        if op in S3_PUT_CLASS:
            put += n
        else:
            get += n
    return put, get


def _units(hour: Mapping[str, Any], functions: list[str]) -> tuple[int, int]:
    units = hour.get("dynamodb_units", {})
    read = sum(units.get(f"{fn}:read", 0) for fn in functions)
    write = sum(units.get(f"{fn}:write", 0) for fn in functions)
    return read, write


def load_workload(
    workload: Mapping[str, Any] | None = None, assumptions: Mapping[str, Any] | None = None
) -> Workload:
    """:class:`Workload` from ``workload.json`` and ``assumptions.json`` (this package's, unless given)."""
    workload = workload or json.loads((HERE / "workload.json").read_text(encoding="utf-8"))
    assumptions = assumptions or json.loads((HERE / "assumptions.json").read_text(encoding="utf-8"))
    hours = sorted(workload["measured"]["hours"], key=lambda h: h["ingest"]["events_accepted"])
    big = hours[-1]

    def per_run(get: Any) -> Fit:
        return fit_two([(h["ingest"]["events_accepted"], float(get(h))) for h in hours])

    steps = {name: [h["pipeline"]["steps"][name] for h in hours] for name in STEP_FUNCTIONS}
    metrics = assumptions["custom_metrics"]
    return Workload(
        events_per_request=big["ingest"]["events_per_request"]["mean"],
        record_bytes=Fit(
            big["ingest"]["record_bytes_fit"]["per_request"], big["ingest"]["record_bytes_fit"]["per_event"]
        ),
        gzip_ratio=big["raw_object"]["gzip_ratio"],
        gzip_bytes_per_event_full_batch=big["ingest"]["gzip_bytes_per_event_full_batch"],
        ingest_log_bytes=big["ingest"]["log_bytes_per_invocation"],
        ingest_metric_bytes=big["ingest"]["metric_bytes_per_invocation"],
        validate_seconds=per_run(lambda h: h["validate"]["seconds_local"]),
        validate_log_bytes=big["validate"]["log_bytes"] + big["validate"]["metric_bytes"],
        validate_s3=_s3_split(big["validate"]["aws_calls"]),
        validate_units=_units(big, ["ValidateFunction"]),
        step_invocations={name: big["pipeline"]["steps"][name]["invocations"] for name in STEP_FUNCTIONS},
        step_seconds={
            name: per_run(lambda h, n=name: h["pipeline"]["steps"][n]["seconds_local"]) for name in steps
        },
        step_log_bytes={
            name: per_run(lambda h, n=name: h["pipeline"]["steps"][n]["log_bytes"]) for name in steps
        },
        run_s3=(
            per_run(lambda h: sum(_s3_split(s["aws_calls"])[0] for s in h["pipeline"]["steps"].values())),
            per_run(lambda h: sum(_s3_split(s["aws_calls"])[1] for s in h["pipeline"]["steps"].values())),
        ),
        run_units=(
            per_run(lambda h: _units(h, list(STEP_FUNCTIONS))[0]),
            per_run(lambda h: _units(h, list(STEP_FUNCTIONS))[1]),
        ),
        transitions_per_run=big["pipeline"]["state_transitions"],
        lake_bytes={
            prefix: per_run(lambda h, p=prefix: h["lake_bytes"].get(p, 0)) for prefix in big["lake_bytes"]
        },
        bench={k: float(v["value"]) for k, v in assumptions["bench"].items()},
        assumed={k: float(v["value"]) for k, v in assumptions["assumed"].items()},
        custom_metrics=len(metrics["names"]) + sum(metrics["per_dimension_value"].values()),
        measured_on=workload["measured"].get("date", ""),
    )


def load_prices(region: str, prices: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The price table of ``region`` (``prices.json`` of this package unless given)."""
    prices = prices or json.loads((HERE / "prices.json").read_text(encoding="utf-8"))
    regions = prices["regions"]
    if region not in regions:
        raise CostError(
            f"no prices for region {region!r} in the price table (it has {', '.join(sorted(regions))})"
        )
    return dict(regions[region])


# -- the estimate -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    quantity: float
    unit: str
    usd: float
    note: str = ""


@dataclass
class Estimate:
    rps: float
    events_per_request: float
    api: str
    warehouse: str
    region: str
    lines: list[Line] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def by_service(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[line.service] = out.get(line.service, 0.0) + line.usd
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "rps": self.rps,
            "events_per_request": self.events_per_request,
            "api": self.api,
            "warehouse": self.warehouse,
            "region": self.region,
            "total_usd_per_month": round(self.total, 2),
            "by_service": {k: round(v, 2) for k, v in self.by_service().items()},
            "lines": [asdict(line) for line in self.lines],
            "assumptions": self.assumptions,
        }


def tiered(quantity: float, tiers: list[list[float | None]]) -> float:
    """Cost of ``quantity`` units under ``[[tier size or None, price per million], ...]``."""
    cost, left = 0.0, quantity
    for size, price in tiers:
        assert price is not None
        take = left if size is None else min(left, size)
        cost += take / 1e6 * price
        left -= take
        if left <= 0:
            break
    return cost


def _price(prices: Mapping[str, Any], key: str) -> float:
    return float(prices[key]["price"])


def estimate(
    rps: float,
    *,
    events_per_request: float | None = None,
    api: Literal["rest", "http", "alb"] = "rest",
    warehouse: Literal["rds", "byo"] = "rds",
    region: str = "us-east-1",
    store_cdn: bool = False,
    months: float | None = None,
    stack: StackFacts,
    workload: Workload,
    prices: Mapping[str, Any],
) -> Estimate:
    """The monthly bill at ``rps`` accepted requests a second of ``events_per_request`` events each."""
    if not (rps > 0 and math.isfinite(rps)):
        raise CostError(f"--rps must be a positive number, not {rps}")
    k = workload.events_per_request if events_per_request is None else events_per_request
    if not (k >= 1 and math.isfinite(k)):
        raise CostError(f"--events-per-request must be at least 1, not {k}")
    if api not in API_KINDS:
        raise CostError(f"--api must be one of {', '.join(API_KINDS)}")
    if warehouse not in WAREHOUSE_KINDS:
        raise CostError(f"--warehouse must be one of {', '.join(WAREHOUSE_KINDS)}")
    a, b = workload.assumed, workload.bench
    hours = a["hours_per_month"]
    seconds = hours * 3600
    requests = rps * seconds
    events = requests * k
    events_per_hour = rps * k * 3600
    runs = hours / stack.hours_per_run
    events_per_run = events_per_hour * stack.hours_per_run
    months = a["months_of_data"] if months is None else months
    if not (months >= 1 and math.isfinite(months)):
        raise CostError(f"--months must be at least 1, not {months}")
    est = Estimate(rps=rps, events_per_request=k, api=api, warehouse=warehouse, region=region)
    add = est.lines.append
    gb_s, lambda_req = _price(prices, "lambda_gb_second"), _price(prices, "lambda_per_million_requests")

    # API
    record = workload.record_bytes.at(k)
    if api == "rest":
        add(
            Line(
                "API Gateway",
                "REST API requests",
                requests,
                "requests",
                tiered(requests, prices["api_gateway_rest_per_million"]["tiers"]),
            )
        )
    elif api == "http":
        add(
            Line(
                "API Gateway",
                "HTTP API requests",
                requests,
                "requests",
                tiered(requests, prices["api_gateway_http_per_million"]["tiers"]),
            )
        )
    else:
        body = workload.gzip_bytes_per_event_full_batch * k + a["alb_request_header_bytes"]
        lcus = max(
            rps * a["alb_new_connection_share"] / 25,
            rps * 3600 * body / 1e9,
            rps / 1000,
        )
        add(Line("Load balancer", "ALB hours", hours, "hours", hours * _price(prices, "alb_hour")))
        add(
            Line(
                "Load balancer",
                "ALB capacity units",
                lcus * hours,
                "LCU-hours",
                lcus * hours * _price(prices, "alb_lcu_hour"),
                "an option priced, not built: the stack's ingest is behind API Gateway",
            )
        )

    # Lambda: ingest per request, validate per raw object, the pipeline per run
    ingest_ms = math.ceil(b["ingest_handler_ms"] + a["firehose_put_ms"])
    ingest_gb = stack.memory_mb["IngestFunction"] / 1024
    ingest_gbs = requests * ingest_ms / 1000 * ingest_gb
    init_gbs = requests * a["cold_start_share"] * b["ingest_import_ms"] / 1000 * ingest_gb
    add(Line("Lambda", "ingest invocations", requests, "invocations", requests / 1e6 * lambda_req))
    add(
        Line(
            "Lambda",
            "ingest compute",
            ingest_gbs + init_gbs,
            "GB-s",
            (ingest_gbs + init_gbs) * gb_s,
            f"{ingest_ms} ms billed a request at {ingest_gb * 1024:.0f} MB",
        )
    )
    record_bytes_per_hour = rps * 3600 * record
    objects_per_hour = max(
        3600 / stack.firehose_buffer_seconds, record_bytes_per_hour / (stack.firehose_buffer_mb * 1024**2)
    )
    objects = objects_per_hour * hours
    events_per_object = events_per_hour / objects_per_hour
    validate_s = workload.validate_seconds.fixed + events_per_object / b["validate_events_per_second"]
    validate_gbs = objects * validate_s * stack.memory_mb["ValidateFunction"] / 1024
    pipeline_invocations = runs * sum(workload.step_invocations.values())
    pipeline_gbs = 0.0
    for name, function in STEP_FUNCTIONS.items():
        per_run = workload.step_seconds[name]
        if name == "sessionize":
            secs = per_run.fixed + events_per_run * b["sessionize_seconds_per_million_events"] / 1e6
        elif name == "load":
            secs = per_run.fixed + events_per_run * b["load_seconds_per_million_events"] / 1e6
        else:
            secs = per_run.at(events_per_run)
        pipeline_gbs += runs * max(0.0, secs) * stack.memory_mb[function] / 1024
    add(
        Line(
            "Lambda",
            "validate and pipeline invocations",
            objects + pipeline_invocations,
            "invocations",
            (objects + pipeline_invocations) / 1e6 * lambda_req,
        )
    )
    add(
        Line(
            "Lambda",
            "validate compute",
            validate_gbs,
            "GB-s",
            validate_gbs * gb_s,
            f"{objects_per_hour:.1f} raw objects an hour",
        )
    )
    add(Line("Lambda", "pipeline compute", pipeline_gbs, "GB-s", pipeline_gbs * gb_s, f"{runs:.0f} runs"))

    # Firehose: each record (one per request) rounded up to 5 KB
    billed = math.ceil(record / 5120) * 5120
    fh_gb = requests * billed / GIB
    add(
        Line(
            "Firehose",
            "ingestion (5 KB increments)",
            fh_gb,
            "GB",
            fh_gb * _price(prices, "firehose_ingest_gb"),
            f"a {record:.0f}-byte record is billed as {billed}",
        )
    )

    # S3: storage in the months_of_data-th month, requests
    raw_gb_month = requests * record * workload.gzip_ratio / GIB
    raw_months = min(months, stack.raw_retention_days / (hours / 24))
    add(
        Line(
            "S3",
            "raw objects, Standard (first 30 days)",
            raw_gb_month,
            "GB-month",
            raw_gb_month * _price(prices, "s3_standard_gb_month"),
        )
    )
    ia_gb = raw_gb_month * max(0.0, raw_months - 1)
    add(
        Line(
            "S3",
            "raw objects, Standard-IA (older)",
            ia_gb,
            "GB-month",
            ia_gb * _price(prices, "s3_standard_ia_gb_month"),
        )
    )
    lake_gb = 0.0
    for prefix, fit in workload.lake_bytes.items():
        kept = min(months, 1.0) if prefix == "runs" else months  # runs/ expires after 30 days
        lake_gb += runs * fit.at(events_per_run) * kept / GIB
    add(
        Line(
            "S3",
            "lake (Parquet, quarantine, reports, run files)",
            lake_gb,
            "GB-month",
            lake_gb * _price(prices, "s3_standard_gb_month"),
        )
    )
    puts = objects * (1 + workload.validate_s3[0]) + runs * workload.run_s3[0].at(events_per_run)
    gets = objects * workload.validate_s3[1] + runs * workload.run_s3[1].at(events_per_run)
    add(
        Line("S3", "PUT/LIST requests", puts, "requests", puts / 1000 * _price(prices, "s3_put_per_thousand"))
    )
    add(
        Line("S3", "GET/HEAD requests", gets, "requests", gets / 1000 * _price(prices, "s3_get_per_thousand"))
    )

    # SQS, Step Functions, DynamoDB
    sqs = objects * a["sqs_requests_per_message"] + seconds * a["sqs_idle_receives_per_second"]
    add(Line("SQS", "requests", sqs, "requests", sqs / 1e6 * _price(prices, "sqs_per_million")))
    transitions = runs * workload.transitions_per_run
    add(
        Line(
            "Step Functions",
            "state transitions",
            transitions,
            "transitions",
            transitions / 1000 * _price(prices, "sfn_per_thousand_transitions"),
        )
    )
    reads = objects * workload.validate_units[0] + runs * workload.run_units[0].at(events_per_run)
    writes = objects * workload.validate_units[1] + runs * workload.run_units[1].at(events_per_run)
    add(
        Line(
            "DynamoDB",
            "read request units",
            reads,
            "RRU",
            reads / 1e6 * _price(prices, "dynamodb_per_million_reads"),
        )
    )
    add(
        Line(
            "DynamoDB",
            "write request units",
            writes,
            "WRU",
            writes / 1e6 * _price(prices, "dynamodb_per_million_writes"),
        )
    )

    # The warehouse
    if warehouse == "rds":
        classes = prices["rds_postgres_instance_hour"]["classes"]
        cls = stack.warehouse_instance_class
        if cls not in classes:
            raise CostError(f"no price for the instance class {cls!r} (the table has {', '.join(classes)})")
        az = 2 if stack.warehouse_multi_az else 1
        add(Line("RDS", f"PostgreSQL {cls}", hours * az, "instance-hours", hours * az * classes[cls]))
        db_gb = max(stack.warehouse_storage_gb, events * months * a["warehouse_bytes_per_event"] / GIB)
        add(
            Line(
                "RDS",
                "gp3 storage",
                db_gb * az,
                "GB-month",
                db_gb * az * _price(prices, "rds_gp3_gb_month"),
                "every event kept",
            )
        )
        add(
            Line(
                "Secrets Manager",
                "warehouse secret",
                1,
                "secrets",
                _price(prices, "secrets_manager_secret_month"),
            )
        )
        ep_hours = stack.warehouse_interface_endpoints * a["endpoint_azs"] * hours
        add(
            Line(
                "VPC",
                "interface endpoints (Secrets Manager, Step Functions, SNS)",
                ep_hours,
                "endpoint-AZ-hours",
                ep_hours * _price(prices, "vpc_interface_endpoint_az_hour"),
                "no NAT gateway",
            )
        )
    else:
        add(
            Line("RDS", "bring your own warehouse", 0, "", 0.0, "the warehouse's own bill is not the stack's")
        )

    # CloudWatch and X-Ray
    platform = a["lambda_platform_log_bytes"]
    log_bytes = requests * (
        workload.ingest_log_bytes + workload.ingest_metric_bytes + platform + a["api_access_log_bytes"]
    )
    log_bytes += objects * (workload.validate_log_bytes + platform)
    log_bytes += runs * sum(f.at(events_per_run) for f in workload.step_log_bytes.values())
    log_bytes += pipeline_invocations * platform
    log_gb = log_bytes / GIB
    add(
        Line(
            "CloudWatch",
            "logs ingested",
            log_gb,
            "GB",
            log_gb * _price(prices, "cloudwatch_logs_ingest_gb"),
            "JSON logs, EMF metric lines, Lambda's own lines, API access log",
        )
    )
    stored = log_gb * min(months, stack.log_retention_days / (hours / 24)) * a["log_storage_compression"]
    add(
        Line(
            "CloudWatch",
            "logs stored",
            stored,
            "GB-month",
            stored * _price(prices, "cloudwatch_logs_store_gb_month"),
        )
    )
    add(
        Line(
            "CloudWatch",
            "custom metrics",
            workload.custom_metrics,
            "metrics",
            workload.custom_metrics * _price(prices, "cloudwatch_metric_month"),
        )
    )
    add(
        Line(
            "CloudWatch",
            "alarms",
            stack.alarm_metrics,
            "alarm metrics",
            stack.alarm_metrics * _price(prices, "cloudwatch_alarm_metric_month"),
        )
    )
    add(
        Line(
            "CloudWatch",
            "dashboard",
            stack.dashboards,
            "dashboards",
            stack.dashboards * _price(prices, "cloudwatch_dashboard_month"),
        )
    )
    per_second = min(rps, a["xray_reservoir_per_second"]) + a["xray_sampled_share"] * max(
        0.0, rps - a["xray_reservoir_per_second"]
    )
    traces = per_second * seconds + objects + runs
    add(
        Line(
            "X-Ray",
            "traces recorded",
            traces,
            "traces",
            traces / 1e6 * _price(prices, "xray_per_million_traces"),
            "default sampling: 1 a second + 5 %",
        )
    )
    add(
        Line(
            "KMS",
            "customer managed keys",
            stack.kms_keys,
            "keys",
            stack.kms_keys * _price(prices, "kms_key_month"),
        )
    )

    if store_cdn:
        views = events * a["store_page_views_per_event"]
        cdn_gb = views * a["store_bytes_per_page_view"] / GIB
        cdn_req = views * a["store_requests_per_page_view"]
        add(Line("CloudFront", "store: data out", cdn_gb, "GB", cdn_gb * _price(prices, "cloudfront_gb")))
        add(
            Line(
                "CloudFront",
                "store: HTTPS requests",
                cdn_req,
                "requests",
                cdn_req / 1e4 * _price(prices, "cloudfront_per_10k_https"),
            )
        )
    else:
        add(
            Line(
                "CloudFront",
                "store (not part of the stack)",
                0,
                "",
                0.0,
                "--store-cdn prices serving the store",
            )
        )

    est.assumptions = _assumptions(stack, workload, k, record, objects_per_hour, ingest_ms, months, prices)
    return est


def _assumptions(
    stack: StackFacts,
    w: Workload,
    k: float,
    record: float,
    objects_per_hour: float,
    ingest_ms: int,
    months: float,
    prices: Mapping[str, Any],
) -> list[str]:
    a, b = w.assumed, w.bench
    dates = sorted({v["as_of"] for v in prices.values() if isinstance(v, dict) and "as_of" in v})
    return [
        f"List prices as of {', '.join(dates)} (prices.json, each with its source page), to be checked; no free tier.",
        f"A month is {a['hours_per_month']:.0f} hours; every request accepted and carrying {k:g} events"
        f" (the tracker's batching of generated traffic gives {w.events_per_request:g} on average; measured {w.measured_on}).",
        f"Ingest: {b['ingest_handler_ms']:g} ms handler (bench ingest, p50) + {a['firehose_put_ms']:g} ms Firehose call (assumed)"
        f" = {ingest_ms} ms billed at {stack.memory_mb['IngestFunction']} MB; {a['cold_start_share']:.1%} cold starts of"
        f" {b['ingest_import_ms']:g} ms (bench ingest, import).",
        f"Firehose: one record per request, {w.record_bytes.fixed:.0f} + {w.record_bytes.per_event:.0f} bytes an event"
        f" ({record:.0f} bytes) rounded up to 5 KB; raw objects gzip to {w.gzip_ratio:.1%};"
        f" {objects_per_hour:.1f} objects an hour (buffer {stack.firehose_buffer_seconds} s or {stack.firehose_buffer_mb} MB).",
        f"Validate: {b['validate_events_per_second']:,.0f} events/s (bench validate) + {w.validate_seconds.fixed:.2f} s"
        f" an object (laptop stack); sessionize {b['sessionize_seconds_per_million_events']:g} s and load"
        f" {b['load_seconds_per_million_events']:g} s per million events (bench) + each step's fixed time on the laptop"
        f" stack; pipeline every {stack.hours_per_run:g} h over {stack.n_buckets} buckets.",
        f"Storage as in month {months:g} of running (--months): raw to Standard-IA after 30 days, kept {stack.raw_retention_days} days;"
        f" the lake keeps everything a run writes; the warehouse keeps {a['warehouse_bytes_per_event']:g} bytes an event.",
        f"CloudWatch: {w.ingest_log_bytes + w.ingest_metric_bytes:.0f} bytes of logs and metrics per ingest request (measured)"
        f" + {a['lambda_platform_log_bytes']:g} of Lambda's lines + {a['api_access_log_bytes']:g} of access log;"
        f" {w.custom_metrics} custom metrics, {stack.alarm_metrics} alarm metrics, {stack.dashboards} dashboard(s).",
        "Not priced: data transfer out (answers are a few hundred bytes), Cognito (the Plus plan of AUDIT threat protection"
        " is per monthly active user; guests are free), WAF (off by default), Athena queries, S3 access logs.",
    ]
