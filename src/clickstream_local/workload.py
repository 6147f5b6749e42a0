"""What one hour of the store's traffic costs the stack in requests and bytes, measured on the laptop stack.

``measure_hour(events=N)`` generates an hour of traffic (the demo's generator, seed 0), posts every request through
the real ingest handler, writes the hour's records as Firehose would (one gzip object), validates it with the real
validate handler and runs the real state machine over it (``clickstream_local.bridge``), and records:

* per accepted request: its events, the record bytes ingest hands to Firehose, the request body's bytes as the
  shop's tracker sends it (gzip above 1 KiB, as ``web/tracker`` does), and the gzip bytes per event of requests
  as full as the tracker's batch (10 events);
* the raw object's gzip ratio, and what each lake prefix holds afterwards (bytes per validated event);
* every AWS API call each function makes (a botocore hook), by service and operation, with DynamoDB capacity
  units as the calls' sizes imply them;
* the state machine's transitions for the run (the states it entered);
* each function's log and metric bytes per invocation, and the wall time of the steps no benchmark covers.

``clickstream cost`` prices these figures (``clickstream_cli/cost/workload.json``, written by
``scripts/measure_workload.py``); sizes and counts are what the code does, durations of the heavy steps come from
``bench/`` (see the cost model).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import math
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickstream_local.invoke import (
    SAMPLE_ARRIVAL,
    SAMPLE_HOUR,
    SAMPLE_RUN_AT,
    LocalFunctions,
    captured_output,
    sample_object_key,
)

TRACKER_GZIP_ABOVE = 1024  # web/tracker/src/tracker.js: bodies longer than this are sent gzip-compressed
TRACKER_BATCH_SIZE = 10  # web/tracker/src/tracker.js: batchSize, the events a full request carries


class _Current(threading.local):
    """The function whose handler runs in this thread ("setup": the harness's own calls and moto's). Per thread: the
    state machine's Map runs its iterations in threads of their own while the harness polls the execution, so a
    process-wide name would count the polling as Sessionize and, once the first iteration ends, the other
    iterations' calls as the harness's. A handler's own transfer threads count as it (:func:`_pools_inherit`)."""

    name = "setup"


_current = _Current()
# One handler at a time: captured_output redirects the process's stdout and the logger's streams, which concurrent
# Map iterations would swap under each other (their lines, log bytes and invocation times mixed up).
_one_handler = threading.Lock()


@contextlib.contextmanager
def _pools_inherit() -> Iterator[None]:
    """While measuring, work a thread pool runs is counted as the function that submitted it (the Sessionize step
    overlaps its S3 transfers in a pool)."""
    submit = ThreadPoolExecutor.submit

    def inherit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        name = _current.name

        def attributed(*a: Any, **kw: Any) -> Any:
            outer, _current.name = _current.name, name
            try:
                return fn(*a, **kw)
            finally:
                _current.name = outer

        return submit(self, attributed, *args, **kwargs)

    ThreadPoolExecutor.submit = inherit  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]


def _dynamo_units(operation: str, params: dict[str, Any]) -> tuple[str, int]:
    """("write"|"read", capacity units) a DynamoDB call consumes, from the size of what it sends (on-demand:
    a write unit per 1 KB of item, a read unit per 4 KB; queries and scans are counted per call, at least one)."""
    size = len(json.dumps(params.get("Item") or params.get("Key") or params, default=str))
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return "write", max(1, math.ceil(size / 1024))
    if operation in ("BatchWriteItem", "TransactWriteItems"):
        items = sum(len(v) for v in (params.get("RequestItems") or {}).values()) or len(
            params.get("TransactItems") or []
        )
        return "write", max(1, items)
    return "read", max(1, math.ceil(size / 4096))


class CallLog:
    """Every AWS call, attributed to the function whose handler made it (``setup`` for the harness's own)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str, str]] = Counter()  # (function, service, operation)
        self.units: Counter[tuple[str, str]] = Counter()  # (function, "read"|"write") DynamoDB units

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        function = _current.name
        service, operation = model.service_model.service_name, model.name
        self.calls[(function, service, operation)] += 1
        if service == "dynamodb":
            kind, units = _dynamo_units(operation, params)
            self.units[(function, kind)] += units

    def per_function(self, function: str) -> dict[str, int]:
        return {
            f"{service}:{op}": n
            for (fn, service, op), n in sorted(self.calls.items())
            if fn == function and n
        }


def measure_hour(events: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """The figures of the module docstring for an hour of ``events`` generated events."""
    import boto3

    from clickstream.adapters.aws import client, reset_clients
    from clickstream.adapters.storage import S3ObjectStore
    from clickstream.core.clock import SimulatedClock, set_clock
    from clickstream.ingest.sink import set_sink
    from clickstream_local.bridge import create_pipeline_state_machine, load_handler, run_pipeline
    from clickstream_local.generator.traffic import TrafficConfig, generate
    from clickstream_local.stack import environment, local_settings, local_stack

    calls = CallLog()
    out: dict[str, Any] = {"events_generated": events, "seed": seed}
    with (
        tempfile.TemporaryDirectory(prefix="workload-") as tmp,
        environment({"AWS_PROFILE": None, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}),
        _pools_inherit(),
    ):
        settings = local_settings(warehouse_url=f"duckdb://{tmp}/warehouse.duckdb")
        with local_stack(settings, with_cognito=False) as stack:
            # moto starts a fresh default session: the hook goes on it, and every client is made anew after
            boto3._get_default_session().events.register("before-call", calls)
            reset_clients()
            local = LocalFunctions(stack, warehouse_url=settings.warehouse_url)
            clock = SimulatedClock(SAMPLE_HOUR)
            set_clock(clock)
            try:
                out["ingest"] = _ingest_hour(local, clock, events, seed, set_sink, generate, TrafficConfig)
                raw = out["ingest"].pop("_object")
                client("s3").put_object(Bucket=settings.raw_bucket, Key=sample_object_key(), Body=raw)
                out["raw_object"] = {
                    "bytes": len(raw),
                    "uncompressed_bytes": out["ingest"]["record_bytes"],
                    "gzip_ratio": round(len(raw) / out["ingest"]["record_bytes"], 4),
                }
                clock.set(SAMPLE_ARRIVAL)
                validate = _timed(local, "ValidateFunction", _validate_event(), calls)
                out["validate"] = validate
                clock.set(SAMPLE_RUN_AT)
                logs: dict[str, list[str]] = defaultdict(list)
                seconds: dict[str, list[float]] = defaultdict(list)
                handlers = {
                    name: _attributed(name, load_handler(name), logs, seconds)
                    for name in ("plan", "sessionize", "load", "aggregate", "commit")
                }
                arn = create_pipeline_state_machine(stack, handlers)
                run = run_pipeline(
                    arn,
                    f"hourly-{SAMPLE_RUN_AT:%Y-%m-%dT%H}",
                    {"as_of": (SAMPLE_RUN_AT - timedelta(minutes=5)).isoformat()},
                )
                if run["status"] != "SUCCEEDED":
                    raise RuntimeError(f"the measured run failed: {run['failures']}")
                out["pipeline"] = {
                    "state_transitions": len(run["states"]),
                    "buckets": settings.n_buckets,
                    "steps": {
                        name: {
                            "invocations": len(seconds[name]),
                            "seconds_local": round(sum(seconds[name]), 3),
                            "aws_calls": calls.per_function(name),
                            "log_bytes": sum(len(line) + 1 for line in logs[name]),
                        }
                        for name in handlers
                    },
                }
                out["dynamodb_units"] = {f"{fn}:{kind}": n for (fn, kind), n in sorted(calls.units.items())}
                lake = S3ObjectStore(settings.lake_bucket)
                out["lake_bytes"] = _prefix_bytes(lake)
            finally:
                set_clock(None)
                set_sink(None)
    out["ingest"]["aws_calls"] = calls.per_function("IngestFunction")
    out["validate"]["aws_calls"] = calls.per_function("ValidateFunction")
    return out


def _ingest_hour(local, clock, events, seed, set_sink, generate, config_cls) -> dict[str, Any]:
    traffic = generate(
        config_cls(
            events=events,
            days=(SAMPLE_ARRIVAL - SAMPLE_HOUR).total_seconds() / 86_400,
            seed=seed,
            start=SAMPLE_HOUR,
            stage=local.stack.settings.stage,
        )
    )
    from clickstream.adapters.sink import FirehoseSink

    records: list[bytes] = []
    firehose = FirehoseSink(local.stack.settings.delivery_stream)

    class _Tee:  # the records, and Firehose's calls as ingest makes them (moto's stream writes its own objects)
        def put_records(self, batch: list[bytes]) -> None:
            records.extend(batch)
            firehose.put_records(batch)

    set_sink(_Tee())
    per_request: list[tuple[int, int, int]] = []  # (events, record bytes, body bytes as the tracker sends it)
    full_batches: list[
        tuple[int, int]
    ] = []  # (events, gzip bytes) of requests as full as the tracker's batch
    log_bytes: list[int] = []
    metric_bytes: list[int] = []
    _current.name = "IngestFunction"
    try:
        for request in traffic.requests:
            if request.received_at >= SAMPLE_ARRIVAL:
                continue
            clock.set(request.received_at)
            before = len(records)
            answer = local.call("IngestFunction", request.event)
            logs = [line for line in answer.logs if line.startswith("{")]
            log_bytes.append(sum(len(line) + 1 for line in logs if '"_aws"' not in line))
            metric_bytes.append(sum(len(line) + 1 for line in logs if '"_aws"' in line))
            if not answer.ok or answer.response.get("statusCode") != 202:
                continue
            n = json.loads(answer.response["body"])["accepted"]
            body = request.event.get("body") or ""
            raw = base64.b64decode(body) if request.event.get("isBase64Encoded") else body.encode("utf-8")
            wire = len(gzip.compress(raw)) if len(raw) > TRACKER_GZIP_ABOVE else len(raw)
            per_request.append((n, sum(len(r) for r in records[before:]), wire))
            if n >= TRACKER_BATCH_SIZE:
                full_batches.append((n, len(gzip.compress(raw))))
    finally:
        _current.name = "setup"
    data = b"".join(r if r.endswith(b"\n") else r + b"\n" for r in records)
    n_events = sum(n for n, _, _ in per_request)
    intercept, slope = _fit([(n, b) for n, b, _ in per_request])
    return {
        "requests_posted": len(log_bytes),
        "requests_accepted": len(per_request),
        "events_accepted": n_events,
        "events_per_request": {
            "mean": round(n_events / len(per_request), 2),
            "median": statistics.median(n for n, _, _ in per_request),
            "max": max(n for n, _, _ in per_request),
        },
        "record_bytes": len(data),
        "record_bytes_fit": {"per_request": round(intercept, 1), "per_event": round(slope, 1)},
        "tracker_body_bytes_per_event": round(sum(w for _, _, w in per_request) / n_events, 1),
        "gzip_bytes_per_event_full_batch": round(
            sum(z for _, z in full_batches) / max(1, sum(n for n, _ in full_batches)), 1
        ),
        "log_bytes_per_invocation": round(statistics.mean(log_bytes), 1),
        "metric_bytes_per_invocation": round(statistics.mean(metric_bytes), 1),
        "sessions": len({json.loads(r)["anonymous_id"] for r in records}),
        "_object": gzip.compress(data, mtime=0),
    }


def _fit(points: list[tuple[int, int]]) -> tuple[float, float]:
    """Least squares ``bytes = a + b * events``."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / var if var else my / max(mx, 1)
    return my - slope * mx, slope


def _validate_event() -> dict[str, Any]:
    from clickstream_local.invoke import sample_event

    return sample_event("validate_sqs.json")


def _timed(local: LocalFunctions, function: str, event: Any, calls: CallLog) -> dict[str, Any]:
    _current.name = function
    try:
        started = time.perf_counter()
        answer = local.call(function, event)
        elapsed = time.perf_counter() - started
    finally:
        _current.name = "setup"
    if not answer.ok:
        raise RuntimeError(f"{function} failed: {answer.error}")
    lines = [line for line in answer.logs if line.startswith("{")]
    return {
        "seconds_local": round(elapsed, 3),
        "log_bytes": sum(len(line) + 1 for line in lines if '"_aws"' not in line),
        "metric_bytes": sum(len(line) + 1 for line in lines if '"_aws"' in line),
    }


def _attributed(name: str, handler: Any, logs: dict[str, list[str]], seconds: dict[str, list[float]]) -> Any:
    def run(event: Any, context: Any) -> Any:
        with _one_handler, captured_output() as out:
            _current.name = name
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                seconds[name].append(time.perf_counter() - started)
                logs[name].extend(line for line in out.getvalue().splitlines() if line.strip())
                _current.name = "setup"

    return run


def _prefix_bytes(lake: Any) -> dict[str, int]:
    from clickstream.adapters.aws import client

    sizes: Counter[str] = Counter()
    paginator = client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=lake.bucket):
        for obj in page.get("Contents", []):
            sizes[obj["Key"].split("/", 1)[0]] += obj["Size"]
    return dict(sorted(sizes.items()))


def write_measurement(path: Path, sizes: tuple[int, ...] = (2_000, 20_000)) -> dict[str, Any]:
    """Measure an hour of each size in ``sizes`` and write them as the ``measured`` section of the cost model's
    workload file (the rest of the file is kept). Two sizes let the model tell what a run costs whatever its size
    from what each event adds."""
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    doc["measured"] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "how": "scripts/measure_workload.py: clickstream_local.workload.measure_hour for each size",
        "hours": [measure_hour(n) for n in sizes],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc
