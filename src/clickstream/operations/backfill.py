"""Back-fill: re-process a range of arrival days through the pipeline state machine.

``clickstream backfill --from DAY --to DAY [--revalidate]`` and the local runner share this module:

1. With ``revalidate``, the raw objects of those days are re-driven through the validate queue, as S3 notifications
   of exactly the shape S3 sends (the raw zone is the source of truth; validated outputs are named after their raw
   object, so a re-validation overwrites, never duplicates). The back-fill waits until the ledger shows every one
   of them validated again (in AWS the queue's event source runs the validate function; locally the runner drains
   the queue into the same handler).
2. One execution of the state machine with ``{"backfill": {"from", "to"}}``: Plan writes the manifest of those days'
   validated objects and one Distributed Map item per bucket; every affected visitor is sessionized again from the
   state and replaced in the warehouse; Commit records the run and leaves the watermark where it was.

Re-processing the same days again changes nothing: each step is idempotent and a visitor's sessions are a function
of its events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from clickstream.adapters.state import StateStore, iso
from clickstream.adapters.storage import ObjectStore
from clickstream.core import clock
from clickstream.core.keys import RAW_PREFIX
from clickstream.pipeline.manifest import BackfillRange
from clickstream.pipeline.plan import ledger_arrival_day, parse_instant
from clickstream.pipeline.sessionize import run_result_key

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
SQS_BATCH = 10


class BackfillError(RuntimeError):
    """The back-fill could not run (a range, a stack or a re-validation that never completed)."""


@dataclass(frozen=True)
class BackfillTarget:
    """What a back-fill talks to: the state machine, and the stack's buckets, queue and state table."""

    state_machine_arn: str
    lake: ObjectStore
    state: StateStore
    n_buckets: int
    raw: ObjectStore | None = None  # needed with revalidate
    queue_url: str | None = None  # the validate queue, needed with revalidate


@dataclass
class BackfillOutcome:
    execution_name: str
    status: str
    revalidated: int = 0
    buckets_done: int = 0
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


class Progress:
    """What a back-fill reports while it runs (the CLI draws it with rich; tests record it)."""

    def stage(self, description: str, total: int) -> None: ...
    def advance(self, done: int) -> None: ...


def execution_name(days: BackfillRange, now: datetime) -> str:
    """A unique, readable execution name (Step Functions keeps names for 90 days)."""
    return f"backfill-{days.start:%Y%m%d}-{days.end:%Y%m%d}-{now:%Y%m%dT%H%M%S}"


def raw_objects_of(days: BackfillRange, state: StateStore, raw: ObjectStore) -> list[str]:
    """The raw objects that arrived on those days: the ledger's (``plan.ledger_arrival_day``) and any object under
    ``raw/dt=DAY/`` never validated at all."""
    keys: set[str] = set()
    for row in state.all_ledger():
        day = ledger_arrival_day(row)
        if day is not None and days.start <= day <= days.end:
            keys.add(row["source_key"])
    day = days.start
    while day <= days.end:
        keys.update(raw.list_keys(f"{RAW_PREFIX}dt={day:%Y-%m-%d}/"))
        day += timedelta(days=1)
    return sorted(keys)


def notification(bucket: str, key: str) -> str:
    """The S3 ``ObjectCreated`` notification body S3 puts on the queue for ``key``."""
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "eventTime": iso(clock.now()),
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/=")}},
                }
            ]
        }
    )


def redrive(keys: Iterable[str], raw: ObjectStore, queue_url: str) -> int:
    """Put one notification per raw object on the validate queue; returns how many were sent."""
    from clickstream.adapters.aws import client

    sqs = client("sqs")
    keys = list(keys)
    for i in range(0, len(keys), SQS_BATCH):
        batch = keys[i : i + SQS_BATCH]
        entries = [{"Id": str(n), "MessageBody": notification(raw.bucket, k)} for n, k in enumerate(batch)]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed") or []
        if failed:
            raise BackfillError(f"the validate queue refused {len(failed)} notifications: {failed[0]}")
    return len(keys)


def revalidated(keys: Iterable[str], state: StateStore, since: datetime) -> int:
    """How many of the objects the ledger shows validated at or after ``since``."""
    n = 0
    for key in keys:
        row = state.get_ledger(key)
        if row and parse_instant(row["validated_at"]) >= since:
            n += 1
    return n


def run_backfill(
    target: BackfillTarget,
    days: BackfillRange,
    *,
    revalidate: bool = False,
    progress: Progress | None = None,
    drain: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 6 * 3600,
    name: str | None = None,
) -> BackfillOutcome:
    """Re-validate (optionally) and re-process the days; returns when the execution has ended.

    ``drain`` is called while waiting for re-validation (the local runner feeds the queue to the validate handler
    there; in AWS the event source does it). ``sleep`` is how the waits pass (tests substitute it).
    """
    from clickstream.adapters.aws import client

    progress = progress or Progress()
    started = clock.now()
    name = name or execution_name(days, started)
    outcome = BackfillOutcome(execution_name=name, status="RUNNING")
    deadline = time.monotonic() + timeout_seconds

    if revalidate:
        if target.raw is None or target.queue_url is None:
            raise BackfillError("--revalidate needs the raw bucket and the validate queue")
        keys = raw_objects_of(days, target.state, target.raw)
        progress.stage("re-validating raw objects", len(keys))
        redrive(keys, target.raw, target.queue_url)
        while True:
            if drain is not None:
                drain()
            done = revalidated(keys, target.state, started)
            progress.advance(done)
            if done >= len(keys):
                break
            if time.monotonic() > deadline:
                raise BackfillError(f"only {done} of {len(keys)} raw objects were validated again in time")
            sleep(poll_seconds)
        outcome.revalidated = len(keys)

    sfn = client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=target.state_machine_arn,
        name=name,
        input=json.dumps({"backfill": {"from": str(days.start), "to": str(days.end)}}),
    )["executionArn"]
    progress.stage("sessionizing buckets", target.n_buckets)
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        done = sum(1 for b in range(target.n_buckets) if target.lake.exists(run_result_key(name, b)))
        outcome.buckets_done = done
        progress.advance(done)
        if desc["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise BackfillError(f"execution {name} still {desc['status']} after {timeout_seconds:.0f}s")
        sleep(poll_seconds)
    outcome.status = desc["status"]
    outcome.output = json.loads(desc["output"]) if desc.get("output") else None
    outcome.error, outcome.cause = desc.get("error"), desc.get("cause")
    return outcome


def parse_days(start: str | date, end: str | date) -> BackfillRange:
    """The range as the CLI takes it; raises BackfillError for a bad day or an inverted range."""
    from pydantic import ValidationError

    try:
        return BackfillRange.model_validate({"from": start, "to": end})
    except ValidationError as exc:
        raise BackfillError(exc.errors()[0]["msg"]) from exc
