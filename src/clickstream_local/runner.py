"""``clickstream demo``: the whole pipeline on simulated store traffic, in-process, against moto.

The same handlers as in Lambda, on one simulated clock:

1. generate the traffic (``clickstream_local.generator.traffic``), create the stack's resources in moto and put the
   settings in the environment, as Lambda's configuration would;
2. walk simulated time: each request goes through the real ingest handler (API Gateway event, Cognito claims,
   ``requestTimeEpoch`` = the simulated receive time) → Firehose's delivery buffer (emulated on the simulated
   clock: moto writes one object per call, the service one per buffer interval) → moto Firehose → the raw bucket
   → an S3 notification in SQS;
3. at each step boundary (hourly by default) drain the queue into the real validate handler (as Lambda's SQS
   event source would: batches of up to 10, partial batch failures left on the queue) and execute
   ``statemachine/pipeline.asl.json`` through the bridge with ``{"as_of": <simulated now>}``;
4. read the counters from the ledger and the warehouse, write ``summary.json`` and the report, print the KPIs;
5. with ``backfill``, re-process every simulated day once more through the state machine's back-fill path (the
   Distributed Map; from raw through the validate queue with ``revalidate``) into a fresh warehouse
   (``DIR/backfill/warehouse.duckdb``), and check it holds exactly what the incremental runs loaded.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from clickstream_local.generator.traffic import (
    DEFAULT_START,
    INTERNAL_NETWORK,
    Traffic,
    TrafficConfig,
    generate,
)
from clickstream_local.stack import environment as _environment

WAREHOUSE_FILE = "warehouse.duckdb"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
SQS_BATCH_SIZE = 10  # the validate function's event source batch size
MAX_RECEIVES = 5  # the queue's maxReceiveCount: after that a notification goes to the dead-letter queue
FIREHOSE_BUFFER_BYTES = 64 * 1024 * 1024  # the delivery stream's BufferingHints.SizeInMBs
# Simulated hours between pipeline runs in the demo. The stack runs hourly; every run is incremental and the
# warehouse after any sequence of runs equals one full recompute (tests/e2e/test_demo.py checks hourly against
# coarser runs), so the demo takes 6-hour steps to keep a week of traffic within a few minutes on a laptop.
DEFAULT_STEP_HOURS = 6.0
EXECUTION_POLL_SECONDS = 0.02  # how often the runner asks moto whether an execution has ended

# Lambda's environment for the handlers while the demo runs: quiet logs, no tracing, and never a real AWS profile
# (moto supplies fake credentials).
_RUNTIME_ENV: dict[str, str | None] = {
    "AWS_PROFILE": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "clickstream",
    "POWERTOOLS_METRICS_NAMESPACE": "Clickstream",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


class DemoError(Exception):
    """The demo cannot start as asked (for example a non-empty PostgreSQL warehouse)."""


@dataclass(frozen=True)
class DemoOptions:
    events: int = 60_000
    days: float = 7.0
    seed: int = 0
    out: Path = Path("demo-output")
    warehouse: str | None = None  # a URL; default: duckdb:///<out>/warehouse.duckdb
    step_hours: float = DEFAULT_STEP_HOURS
    buckets: int | None = None  # user-hash buckets (Settings.n_buckets when None)
    start: datetime = DEFAULT_START
    progress: bool = True
    backfill: bool = False  # after the walk, back-fill every day into a fresh warehouse and compare
    revalidate: bool = False  # the back-fill starts from raw (re-validation through the queue)


BACKFILL_DIR = "backfill"
# The tables a back-fill must reproduce exactly (pipeline_runs records the runs themselves, so it differs).
COMPARED_TABLES = ("events", "sessions", "users", "daily_kpis", "daily_revenue")


@dataclass
class WalkStats:
    """What the runner saw while driving the handlers."""

    accepted_requests: int = 0
    accepted_events: int = 0
    rejected_by_status: Counter = field(default_factory=Counter)
    validate_batches: int = 0
    validate_failures: int = 0
    # Each failed receive of a notification: the raw objects it names and the error (when the handler raised).
    validate_errors: list[dict[str, Any]] = field(default_factory=list)
    executions: Counter = field(default_factory=Counter)
    failed_executions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DemoResult:
    summary: dict[str, Any]
    out_dir: Path
    warehouse_url: str
    traffic: Traffic

    @property
    def ok(self) -> bool:
        return bool(self.summary["ok"])


# -- environment -----------------------------------------------------------------------------------------------
def _quiet_logs() -> Callable[[], None]:
    """Keep the handlers' INFO logs off the console during the demo; returns the undo."""
    from clickstream.core.observability import logger

    level = logger.log_level
    logger.setLevel("WARNING")
    return lambda: logger.setLevel(level)


@contextmanager
def _handler_output_muted() -> Iterator[None]:
    """The handlers' metric lines (EMF JSON on stdout, as CloudWatch reads them) stay off the demo's console."""
    with open(os.devnull, "w") as sink, redirect_stdout(sink), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        yield


# -- Firehose's buffer --------------------------------------------------------------------------------------
class DeliveryBuffer:
    """Firehose's delivery buffer on the simulated clock, between the ingest handler and moto's Firehose.

    The real service collects records until its buffering interval elapses (or the size hint is reached) and
    then writes one object; moto writes one object per ``PutRecordBatch`` call. Installed as the ingest
    handler's record sink, this keeps the records and hands them to ``sink`` (the same ``FirehoseSink`` ingest
    uses, into moto) once ``interval`` has passed since the buffer's first record, so the raw bucket receives
    objects of the size and cadence the stack would produce.
    """

    def __init__(
        self,
        sink: Any,
        interval: timedelta,
        clock: Callable[[], datetime],
        max_bytes: int = FIREHOSE_BUFFER_BYTES,
    ) -> None:
        self._sink = sink
        self._interval = interval
        self._clock = clock
        self._max_bytes = max_bytes
        self._records: list[bytes] = []
        self._bytes = 0
        self._opened_at: datetime | None = None
        self.flushes = 0

    def put_records(self, records: list[bytes]) -> None:
        self.tick(self._clock())
        if not self._records:
            self._opened_at = self._clock()
        self._records.extend(records)
        self._bytes += sum(len(r) for r in records)
        if self._bytes >= self._max_bytes:
            self.flush()

    def tick(self, now: datetime) -> None:
        """Deliver the buffer if its interval has elapsed by ``now``."""
        if self._records and self._opened_at is not None and now >= self._opened_at + self._interval:
            self.flush()

    def flush(self) -> None:
        if not self._records:
            return
        records, self._records, self._bytes, self._opened_at = self._records, [], 0, None
        self._sink.put_records(records)
        self.flushes += 1

    @property
    def pending(self) -> int:
        return len(self._records)


# -- SQS -> validate -------------------------------------------------------------------------------------------
def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's SQS event source hands it to a function."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "0"),
            "SenderId": attributes.get("SenderId", "s3.amazonaws.com"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def drain_queue(
    queue_url: str,
    validate: Callable[[dict, Any], dict],
    context_for: Callable[[], Any],
    stats: WalkStats,
    *,
    batch_size: int = SQS_BATCH_SIZE,
) -> int:
    """Feed every message on the queue to ``validate`` in batches of 10, as Lambda's event source does.

    Messages the handler reports in ``batchItemFailures`` are made visible again at once (the simulated clock
    does not wait for the visibility timeout); after ``MAX_RECEIVES`` receives the queue's redrive policy moves
    them to the dead-letter queue. An invocation that raises fails its whole batch, as in Lambda (Powertools
    raises when every record of a batch failed). Each failure is recorded in ``stats.validate_errors`` with the
    objects it names. Returns the number of messages processed successfully.
    """
    from clickstream.adapters.aws import client

    sqs = client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    region = queue_arn.split(":")[3]
    done = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch_size,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return done
        event = {"Records": [_sqs_record(m, queue_arn, region) for m in messages]}
        error: str | None = None
        try:
            answer = validate(event, context_for()) or {}
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        except Exception as exc:  # the invocation failed: every message of the batch is retried
            failed, error = {m["MessageId"] for m in messages}, _describe_error(exc)
        for m in messages:
            if m["MessageId"] in failed:
                stats.validate_errors.append(
                    {
                        "objects": _notified_keys(m["Body"]),
                        "error": error or "the validate handler reported the message as failed",
                    }
                )
        stats.validate_batches += 1
        stats.validate_failures += len(failed)
        ok = [m for m in messages if m["MessageId"] not in failed]
        if ok:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(ok)],
            )
        for m in messages:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
        done += len(ok)


def _describe_error(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` of what failed; for Powertools' all-records-failed error, of the first record's error."""
    children = getattr(exc, "child_exceptions", None) or []
    first = next((c[1] for c in children if isinstance(c, tuple) and len(c) > 1 and c[1] is not None), None)
    cause = first if isinstance(first, BaseException) else exc
    text = f"{type(cause).__name__}: {cause}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _notified_keys(body: str) -> list[str]:
    """The raw object keys an S3 notification names (the body itself, shortened, if it is not one)."""
    from clickstream.validate.notifications import parse_notification

    try:
        return [ref.key for ref in parse_notification(body)]
    except Exception:  # not a notification: name the message by its body
        return [body[:200]]


def _queue_depth(queue_url: str) -> int:
    from clickstream.adapters.aws import client

    attrs = client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
        attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


# -- the demo ----------------------------------------------------------------------------------------------------
def execution_name(seed: int, as_of: datetime) -> str:
    """A unique, readable execution name per pipeline run (Step Functions requires one; it is the run id)."""
    return f"demo-s{seed}-{as_of:%Y%m%dT%H%M%S}"


def boundaries(start: datetime, last: datetime, step: timedelta) -> list[datetime]:
    """Step boundaries start+step, start+2·step, … up to the first one after ``last``."""
    n = max(1, math.floor((last - start) / step) + 1)
    return [start + step * (k + 1) for k in range(n)]


def _prepare_out(out: Path, warehouse: str | None) -> str:
    out.mkdir(parents=True, exist_ok=True)
    for name in (REPORT_FILE, SUMMARY_FILE):
        (out / name).unlink(missing_ok=True)
    if warehouse:
        from clickstream_local.summary import warehouse_is_empty

        if not warehouse_is_empty(warehouse):
            raise DemoError(
                "the warehouse already holds events: the demo's counters reconcile only against an empty "
                "warehouse (give a fresh database)"
            )
        return warehouse
    # A fresh embedded warehouse per run: the moto stack behind it is fresh too.
    for name in (WAREHOUSE_FILE, WAREHOUSE_FILE + ".wal"):
        (out / name).unlink(missing_ok=True)
    return f"duckdb:///{(out / WAREHOUSE_FILE).as_posix().lstrip('/')}"


def run_demo(options: DemoOptions, console: Any = None) -> DemoResult:
    """Run the demo; returns the summary (also written to ``<out>/summary.json``)."""
    from clickstream.adapters.aws import reset_clients
    from clickstream.core.clock import set_clock
    from clickstream.core.config import get_settings
    from clickstream.ingest.sink import set_sink
    from clickstream_local.stack import local_stack

    out = options.out.resolve()
    warehouse_url = _prepare_out(out, options.warehouse)
    step = timedelta(hours=options.step_hours)
    if step <= timedelta(0):
        raise DemoError("--step-hours must be positive")
    demo = _Demo(options, out, warehouse_url, console)
    undo_logs = _quiet_logs()
    try:
        with _environment(_RUNTIME_ENV), local_stack(demo.settings()) as stack:
            demo.start(stack)
            demo.walk(step)
            if options.backfill:
                demo.backfill = _backfill_all_days(
                    options,
                    demo.stack.settings,
                    demo.stack,
                    demo.sfn_arn,
                    demo.clock,
                    demo.validate,
                    demo.validate_ctx,
                    demo.stats,
                    console,
                    out,
                )
            demo.collect()
    finally:
        set_sink(None)
        set_clock(None)
        get_settings.cache_clear()
        reset_clients()
        undo_logs()
    return demo.result()


class _Demo:
    """One demo run: the simulated stack and clock, the handlers, and what the runner saw and read back."""

    def __init__(self, options: DemoOptions, out: Path, warehouse_url: str, console: Any) -> None:
        from clickstream_local.bridge import FakeLambdaContext

        self.options = options
        self.out = out
        self.warehouse_url = warehouse_url
        self.console = console
        self.stats = WalkStats()
        self.ingest_ctx = _context_factory(FakeLambdaContext, "ingest")
        self.validate_ctx = _context_factory(FakeLambdaContext, "validate")
        self.backfill: dict[str, Any] | None = None

    def settings(self) -> Any:
        """The laptop stack's settings for this demo (its warehouse, internal network and bucket count)."""
        from clickstream_local.stack import local_settings

        overrides: dict[str, Any] = {
            "warehouse_url": self.warehouse_url,
            "internal_ip_ranges": INTERNAL_NETWORK,
        }
        if self.options.buckets:
            overrides["n_buckets"] = self.options.buckets
        return local_settings(**overrides)

    def start(self, stack: Any) -> None:
        """The simulated clock, the traffic, the state machine, the handlers and Firehose's buffer."""
        from clickstream.adapters.sink import FirehoseSink
        from clickstream.core.clock import SimulatedClock, set_clock
        from clickstream.ingest.sink import set_sink
        from clickstream_local.bridge import create_pipeline_state_machine, load_handler
        from clickstream_local.stack import REGION, template_parameter_default

        options, settings = self.options, stack.settings
        self.stack = stack
        self.clock = SimulatedClock(options.start)
        set_clock(self.clock)
        self.traffic = generate(
            TrafficConfig(
                events=options.events,
                days=options.days,
                seed=options.seed,
                start=options.start,
                stage=settings.stage,
                issuer=f"https://cognito-idp.{REGION}.amazonaws.com/{stack.user_pool_id}",
                client_id=stack.user_pool_client_id,
            )
        )
        self.sfn_arn = create_pipeline_state_machine(stack)
        self.ingest = load_handler("ingest")
        self.validate = load_handler("validate")
        self.buffer_seconds = int(template_parameter_default("FirehoseBufferSeconds") or 300)
        self.delivery = DeliveryBuffer(
            FirehoseSink(settings.delivery_stream), timedelta(seconds=self.buffer_seconds), self.clock
        )
        set_sink(self.delivery)

    def pipeline_step(self, as_of: datetime, *, final: bool = False) -> None:
        """At a step boundary: deliver Firehose's buffer when due, drain the queue into validate, run the pipeline."""
        from clickstream_local.bridge import run_pipeline

        stats = self.stats
        self.clock.set(as_of)
        if final:
            self.delivery.flush()
        else:
            self.delivery.tick(as_of)
        with _handler_output_muted():
            drain_queue(self.stack.queue_url, self.validate, self.validate_ctx, stats)
            result = run_pipeline(
                self.sfn_arn,
                execution_name(self.options.seed, as_of),
                {"as_of": as_of.isoformat()},
                poll_seconds=EXECUTION_POLL_SECONDS,
            )
        stats.executions["started"] += 1
        if result["status"] == "SUCCEEDED":
            stats.executions["succeeded"] += 1
        else:
            stats.executions["failed"] += 1
            stats.failed_executions.append(
                {k: result.get(k) for k in ("status", "failed_step", "error", "cause")}
            )

    def post(self, request: Any) -> None:
        """One request through the ingest handler at its simulated receive time."""
        import json

        stats = self.stats
        self.clock.set(request.received_at)
        self.delivery.tick(request.received_at)
        with _handler_output_muted():
            answer = self.ingest(request.event, self.ingest_ctx())
        status = int(answer.get("statusCode", 0))
        if status == 202:
            stats.accepted_requests += 1
            stats.accepted_events += json.loads(answer["body"]).get("accepted", 0)
        else:
            stats.rejected_by_status[status] += 1

    def walk(self, step: timedelta) -> None:
        """Post every request in time order, running the pipeline at each step boundary on the way."""
        traffic, delivery = self.traffic, self.delivery
        last = max(traffic.end - timedelta(microseconds=1), traffic.last_received_at)
        steps = boundaries(self.options.start, last, step)
        with _progress(self.console, self.options.progress) as progress:
            posted = progress.add_task("requests posted", total=len(traffic.requests))
            runs = progress.add_task("pipeline runs", total=len(steps))
            next_step = 0
            for request in traffic.requests:
                while next_step < len(steps) and request.received_at >= steps[next_step]:
                    self.pipeline_step(steps[next_step])
                    next_step += 1
                    progress.advance(runs)
                self.post(request)
                progress.advance(posted)
            while next_step < len(steps):
                # The last step delivers whatever Firehose still buffers: nothing is left behind.
                self.pipeline_step(steps[next_step], final=next_step == len(steps) - 1)
                next_step += 1
                progress.advance(runs)
            # A last drain and run if anything is still queued (a notification made visible again).
            if _queue_depth(self.stack.queue_url) or delivery.pending:
                self.pipeline_step(steps[-1] + step, final=True)

    def collect(self) -> None:
        """What the stack holds at the end: the ledger, the sessionizer's drops, the dead letters, the report."""
        from clickstream.adapters.aws import client
        from clickstream.adapters.state import DynamoStateStore
        from clickstream.adapters.storage import S3ObjectStore
        from clickstream.sessionize.state import bucket_state_totals
        from clickstream_local.summary import LedgerTotals

        settings, out = self.stack.settings, self.out
        self.ledger = LedgerTotals.from_rows(DynamoStateStore(settings.state_table).all_ledger())
        lake = S3ObjectStore(settings.lake_bucket)
        self.totals = bucket_state_totals(lake, settings.n_buckets)
        self.dead = int(
            client("sqs")
            .get_queue_attributes(
                QueueUrl=self.stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            .get("ApproximateNumberOfMessages", 0)
        )
        if lake.exists(settings.report_key):
            (out / REPORT_FILE).write_bytes(lake.get_bytes(settings.report_key))

    def result(self) -> DemoResult:
        """The summary (written to ``summary.json``) from what was collected and the warehouse."""
        import json

        from clickstream_local.summary import build_summary, read_warehouse

        options, out, stats, traffic = self.options, self.out, self.stats, self.traffic
        warehouse_url, backfill = self.warehouse_url, self.backfill
        facts = read_warehouse(warehouse_url)
        summary = build_summary(
            generated_events=traffic.generated_events,
            accepted_requests=stats.accepted_requests,
            accepted_events=stats.accepted_events,
            rejected_by_status=stats.rejected_by_status,
            ledger=self.ledger,
            cross_object_duplicates=self.totals.duplicates,
            duplicate_conflicts=self.totals.conflicts,
            warehouse=facts,
            executions=dict(stats.executions),
            dead_lettered=self.dead,
        )
        summary["report_written"] = (out / REPORT_FILE).is_file()
        summary["checks"]["report_written"] = {
            "ok": summary["report_written"],
            "detail": f"{REPORT_FILE} {'written' if summary['report_written'] else 'missing'}",
        }
        summary["ok"] = summary["ok"] and summary["report_written"]
        if stats.failed_executions:
            summary["failed_executions"] = stats.failed_executions[:10]
        summary["simulation"] = {
            "seed": options.seed,
            "days": options.days,
            "start": options.start.isoformat(),
            "step_hours": options.step_hours,
            "buckets": self.stack.settings.n_buckets,
            "requests": len(traffic.requests),
            "firehose_buffer_seconds": self.buffer_seconds,
            "injected": traffic.counts,
        }
        summary["warehouse"] = _describe_warehouse(warehouse_url)
        if backfill is not None:
            backfill["matches"] = backfill["ok"] and _same_tables(warehouse_url, backfill["warehouse_url"])
            summary["backfill"] = {k: v for k, v in backfill.items() if k != "ok"}
            summary["checks"]["backfill_matches"] = {
                "ok": backfill["matches"],
                "detail": f"back-fill {backfill['status']}: "
                + ("the same " if backfill["matches"] else "NOT the same ")
                + ", ".join(COMPARED_TABLES)
                + " as the incremental runs",
            }
            summary["ok"] = summary["ok"] and backfill["matches"]
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n")
        summary["daily_kpis"] = facts.kpis  # for the console table; not part of summary.json
        return DemoResult(summary=summary, out_dir=out, warehouse_url=warehouse_url, traffic=traffic)


def _backfill_all_days(
    options: DemoOptions,
    settings: Any,
    stack: Any,
    sfn_arn: str,
    clock: Any,
    validate: Callable[[dict, Any], dict],
    validate_ctx: Callable[[], Any],
    stats: WalkStats,
    console: Any,
    out: Path,
) -> dict[str, Any]:
    """Back-fill every simulated day into a fresh warehouse, through the same state machine (Distributed Map)."""
    from clickstream.adapters.factory import Adapters
    from clickstream.adapters.queue import SqsQueue
    from clickstream.core.config import get_settings
    from clickstream.operations.backfill import BackfillTarget, run_backfill
    from clickstream.pipeline.manifest import BackfillRange, arrival_day
    from clickstream_cli.args import StageProgress

    folder = out / BACKFILL_DIR
    folder.mkdir(exist_ok=True)
    for name in (WAREHOUSE_FILE, WAREHOUSE_FILE + ".wal", REPORT_FILE):
        (folder / name).unlink(missing_ok=True)
    url = f"duckdb:///{(folder / WAREHOUSE_FILE).as_posix().lstrip('/')}"
    adapters = Adapters(settings, queue=SqsQueue(stack.queue_url))
    arrivals = [row["validated_key"] for row in adapters.state.all_ledger() if row.get("validated_key")]
    days = sorted(d for d in (arrival_day(k) for k in arrivals) if d is not None)
    if not days:
        return {"ok": False, "status": "NOTHING TO BACK-FILL", "warehouse_url": url}
    target = BackfillTarget(state_machine_arn=sfn_arn, adapters=adapters)
    clock.advance(3600)
    with _environment({"WAREHOUSE_URL": url}), _progress(console, options.progress) as bar:
        get_settings.cache_clear()
        try:
            with _handler_output_muted():
                outcome = run_backfill(
                    target,
                    BackfillRange.model_validate({"from": days[0], "to": days[-1]}),
                    revalidate=options.revalidate,
                    progress=StageProgress(bar),
                    drain=lambda: drain_queue(stack.queue_url, validate, validate_ctx, stats),
                    sleep=lambda _s: None,
                    poll_seconds=EXECUTION_POLL_SECONDS,
                )
        finally:
            get_settings.cache_clear()
    return {
        "ok": outcome.ok,
        "status": outcome.status,
        "from": str(days[0]),
        "to": str(days[-1]),
        "revalidated_objects": outcome.revalidated,
        "execution": outcome.execution_name,
        "warehouse_url": url,
    }


def _same_tables(left_url: str, right_url: str) -> bool:
    """Whether two DuckDB warehouses hold the same rows in ``COMPARED_TABLES`` (PostgreSQL: not compared)."""
    import duckdb

    from clickstream.core.sql import literal
    from clickstream.sessionize.rule import one_row

    if not (left_url.startswith("duckdb:") and right_url.startswith("duckdb:")):
        return False
    left, right = (u.split("duckdb://", 1)[1] for u in (left_url, right_url))
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {literal(left)} AS l (READ_ONLY)")
        con.execute(f"ATTACH {literal(right)} AS r (READ_ONLY)")
        for table in COMPARED_TABLES:
            # Ratios are floating-point sums whose last bits depend on the order DuckDB adds them in.
            columns = ", ".join(
                f'round("{name}", 9)' if typ in ("DOUBLE", "FLOAT") else f'"{name}"'
                for name, typ, *_ in con.execute(f"DESCRIBE l.{table}").fetchall()
            )
            left_rows, right_rows = (f"SELECT {columns} FROM {side}.{table}" for side in ("l", "r"))
            (diff,) = one_row(
                con,
                f"SELECT (SELECT count(*) FROM ({left_rows} EXCEPT ALL {right_rows}))"
                f" + (SELECT count(*) FROM ({right_rows} EXCEPT ALL {left_rows}))",
            )
            if diff:
                return False
    finally:
        con.close()
    return True


def _context_factory(context_cls: Callable[..., Any], name: str) -> Callable[[], Any]:
    """A fresh Lambda context per invocation of the ``name`` function (a new request id each time)."""
    from clickstream_local.stack import ACCOUNT, REGION

    function_name = f"clickstream-local-{name}"
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
    return lambda: context_cls(function_name=function_name, invoked_function_arn=arn)


def _describe_warehouse(url: str) -> str:
    from clickstream.adapters.warehouse import open_warehouse

    return open_warehouse(url).describe()


# -- progress ------------------------------------------------------------------------------------------------------
def _progress(console: Any, enabled: bool) -> AbstractContextManager[Any]:
    from clickstream_cli.args import progress_bars

    return progress_bars(console, enabled, label_width=16)


# -- console output -------------------------------------------------------------------------------------------------
def kpi_table(kpis: list[dict[str, Any]]) -> Any:
    """A rich table of daily KPIs with a total line (money in the store currency: gross revenue = the day's orders,
    refunds on the refund's day, net = gross - refunds, AOV = gross / orders)."""
    from rich import box
    from rich.table import Table

    currency = next((str(r["currency"]) for r in kpis if r.get("currency")), "")
    title = "Daily KPIs (bots and internal traffic excluded" + (
        f"; money in {currency})" if currency else ")"
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    columns = ("Day", "Sessions", "Visitors", "Engaged", "Conv.", "Orders", "Gross", "Refunds", "Net", "AOV")
    for name in columns:
        table.add_column(name, justify="left" if name == "Day" else "right")

    def pct(x: Any) -> str:
        return "—" if x is None else f"{float(x):.1%}"

    def money(x: Any) -> str:
        return "—" if x is None else f"{float(x):,.2f}"

    def total(key: str) -> float:
        return sum(float(r.get(key) or 0) for r in kpis)

    for row in kpis:
        table.add_row(
            str(row.get("day")),
            f"{int(row.get('sessions') or 0):,}",
            f"{int(row.get('visitors') or 0):,}",
            pct(row.get("engagement_rate")),
            pct(row.get("conversion_rate")),
            f"{int(row.get('orders') or 0):,}",
            *(money(row.get(k)) for k in ("gross_revenue", "refunds", "net_revenue", "aov")),
        )
    sessions, engaged, converted = (
        int(total(k)) for k in ("sessions", "engaged_sessions", "converted_sessions")
    )
    orders, gross = int(total("orders")), total("gross_revenue")
    table.add_section()
    table.add_row(
        "Total",
        f"{sessions:,}",
        "",
        pct(engaged / sessions) if sessions else "—",
        pct(converted / sessions) if sessions else "—",
        f"{orders:,}",
        money(gross),
        money(total("refunds")),
        money(total("net_revenue")),
        money(gross / orders) if orders else "—",
    )
    return table


def counters_table(summary: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title="Where every event went (ledger and warehouse)", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("Counter")
    table.add_column("Value", justify="right")
    for key in (
        "generated_events",
        "sent_events",
        "rejected_requests",
        "validated_events",
        "quarantined_events",
        "duplicate_events",
        "warehouse_events",
        "warehouse_sessions",
        "pipeline_runs",
    ):
        table.add_row(key, f"{summary[key]:,}")
    for reason, n in summary["quarantine_by_reason"].items():
        table.add_row(f"  quarantined: {reason}", f"{n:,}")
    table.add_row("reconciles", "[green]yes[/]" if summary["reconciles"] else "[red]NO[/]")
    costs = summary.get("run_costs") or {}
    for key in (
        "events_arrived",
        "events_loaded",
        "state_rows_read",
        "state_bytes_read",
        "state_rows_written",
    ):
        if key in costs:
            table.add_row(f"runs: {key}", f"{costs[key]:,}")
    if costs.get("loaded_per_arrived") is not None:
        table.add_row("runs: loaded / arrived", f"{costs['loaded_per_arrived']:.2f}")
    return table


def print_outcome(result: DemoResult, console: Any) -> None:
    from clickstream_local.summary import failed_checks

    summary = result.summary
    console.print(kpi_table(summary.get("daily_kpis", [])))
    console.print(counters_table(summary))
    for line in failed_checks(summary):
        console.print(f"[red]check failed[/] {line}")
    out = result.out_dir
    console.print(
        f"Wrote {out / WAREHOUSE_FILE if result.warehouse_url.startswith('duckdb') else summary['warehouse']}, "
        f"{out / REPORT_FILE} and {out / SUMMARY_FILE}"
    )


# -- shared with ``clickstream serve`` (clickstream_local.serve) ------------------------------------------------
RUNTIME_ENV = _RUNTIME_ENV
environment = _environment
quiet_logs = _quiet_logs
context_factory = _context_factory
queue_depth = _queue_depth
handler_output_muted = _handler_output_muted
