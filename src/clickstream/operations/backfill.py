"""Back-fill: re-process a range of arrival days through the pipeline state machine.

``clickstream backfill --from DAY --to DAY [--revalidate]`` and the local runner share this module; it talks to the
stack through its adapters (``adapters.factory.Adapters``: the buckets, the state table, Step Functions and the
validate queue):

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
from typing import Any, Protocol
from urllib.parse import quote_plus

from pydantic import ValidationError

from clickstream.adapters.executions import Execution
from clickstream.adapters.factory import Adapters
from clickstream.adapters.queue import QueueRefused
from clickstream.adapters.state import StateStore
from clickstream.adapters.storage import ObjectStore
from clickstream.core import clock
from clickstream.core.keys import RAW_PREFIX
from clickstream.core.times import iso, parse_instant
from clickstream.pipeline.manifest import BackfillRange, ledger_arrival_day, run_result_key


class BackfillError(RuntimeError):
    """The back-fill could not run (a range, a stack or a re-validation that never completed)."""


@dataclass(frozen=True)
class BackfillTarget:
    """What a back-fill talks to: the state machine, and the stack's adapters (buckets, state table, executions and,
    to re-validate, the validate queue); the bucket count is ``adapters.settings.n_buckets``."""

    state_machine_arn: str
    adapters: Adapters

    @property
    def n_buckets(self) -> int:
        return self.adapters.settings.n_buckets


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


class Progress(Protocol):
    """What a back-fill reports while it runs (the CLI draws it with rich; tests record it)."""

    def stage(self, description: str, total: int) -> None: ...
    def advance(self, done: int) -> None: ...


class SilentProgress:
    """A back-fill that reports nothing."""

    def stage(self, description: str, total: int) -> None:
        return None

    def advance(self, done: int) -> None:
        return None


def execution_name(days: BackfillRange, now: datetime) -> str:
    """A unique, readable execution name (Step Functions keeps names for 90 days)."""
    return f"backfill-{days.start:%Y%m%d}-{days.end:%Y%m%d}-{now:%Y%m%dT%H%M%S}"


def raw_objects_of(days: BackfillRange, state: StateStore, raw: ObjectStore) -> list[str]:
    """The raw objects that arrived on those days: the ledger's (``manifest.ledger_arrival_day``) and any object
    under ``raw/dt=DAY/`` never validated at all."""
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


def redrive(keys: Iterable[str], adapters: Adapters) -> int:
    """Put one notification per raw object on the validate queue; returns how many were sent."""
    keys = list(keys)
    try:
        adapters.queue.send([notification(adapters.raw.bucket, k) for k in keys])
    except QueueRefused as exc:
        raise BackfillError(f"the validate queue refused notifications: {exc}") from exc
    except LookupError as exc:  # no queue configured
        raise BackfillError("--revalidate needs the raw bucket and the validate queue") from exc
    return len(keys)


def revalidated(keys: Iterable[str], state: StateStore, since: datetime) -> int:
    """How many of the objects the ledger shows validated at or after ``since``."""
    n = 0
    for key in keys:
        row = state.get_ledger(key)
        if row and parse_instant(row["validated_at"], field="validated_at") >= since:
            n += 1
    return n


def run_backfill(
    target: BackfillTarget,
    days: BackfillRange,
    *,
    revalidate: bool = False,
    progress: Progress | None = None,
    drain: Callable[[], object] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 6 * 3600,
    name: str | None = None,
) -> BackfillOutcome:
    """Re-validate (optionally) and re-process the days; returns when the execution has ended.

    ``drain`` is called while waiting for re-validation (the local runner feeds the queue to the validate handler
    there; in AWS the event source does it). ``sleep`` is how the waits pass (tests substitute it).
    """
    progress = progress or SilentProgress()
    started = clock.now()
    name = name or execution_name(days, started)
    outcome = BackfillOutcome(execution_name=name, status="RUNNING")
    deadline = time.monotonic() + timeout_seconds
    if revalidate:
        outcome.revalidated = _revalidate(
            target, days, started, progress, drain, sleep, poll_seconds, deadline
        )
    executions = target.adapters.executions
    arn = executions.start(
        target.state_machine_arn, name, {"backfill": {"from": str(days.start), "to": str(days.end)}}
    )
    progress.stage("sessionizing buckets", target.n_buckets)
    while True:
        execution = executions.describe(arn)
        done = sum(1 for b in range(target.n_buckets) if target.adapters.lake.exists(run_result_key(name, b)))
        outcome.buckets_done = done
        progress.advance(done)
        if execution.ended:
            break
        if time.monotonic() > deadline:
            raise BackfillError(f"execution {name} still {execution.status} after {timeout_seconds:.0f}s")
        sleep(poll_seconds)
    return _ended(outcome, execution)


def _revalidate(
    target: BackfillTarget,
    days: BackfillRange,
    since: datetime,
    progress: Progress,
    drain: Callable[[], object] | None,
    sleep: Callable[[float], None],
    poll_seconds: float,
    deadline: float,
) -> int:
    """Send the days' raw objects through validation again and wait until the ledger shows each validated since
    ``since``; returns how many there were."""
    adapters = target.adapters
    keys = raw_objects_of(days, adapters.state, adapters.raw)
    progress.stage("re-validating raw objects", len(keys))
    redrive(keys, adapters)
    while True:
        if drain is not None:
            drain()
        done = revalidated(keys, adapters.state, since)
        progress.advance(done)
        if done >= len(keys):
            return len(keys)
        if time.monotonic() > deadline:
            raise BackfillError(f"only {done} of {len(keys)} raw objects were validated again in time")
        sleep(poll_seconds)


def _ended(outcome: BackfillOutcome, execution: Execution) -> BackfillOutcome:
    outcome.status = execution.status
    outcome.output = execution.output
    outcome.error, outcome.cause = execution.error, execution.cause
    return outcome


def parse_days(start: str | date, end: str | date) -> BackfillRange:
    """The range as the CLI takes it; raises BackfillError for a bad day or an inverted range."""
    try:
        return BackfillRange.model_validate({"from": start, "to": end})
    except ValidationError as exc:
        raise BackfillError(exc.errors()[0]["msg"]) from exc
