"""The Commit step: move the watermark to the end of the run's window and record the run.

This is the only place the watermark moves, and the state machine reaches it only after every other step
succeeded, so a failed execution leaves the watermark where it was and the next run re-reads the same objects.
The watermark never moves backwards: committing an older window (a replayed execution) leaves it alone, and a
back-fill (which re-reads arrival days, not a window after the watermark) never moves it at all.
Committing the same run twice has the same effect as once.

Commit first checks that its execution still holds the pipeline lease (fencing: an execution whose lease expired
and was taken by another moves nothing), then gives the lease back (``pipeline.lease``), so the next execution may
start; the state machine's failure path calls :func:`release_run` through the same function to give it back after
a failure.
"""

from __future__ import annotations

from typing import Any

from clickstream.adapters.state import StateStore, iso
from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.observability import logger
from clickstream.pipeline.lease import hold_pipeline_lease, release_pipeline_lease
from clickstream.pipeline.manifest import (
    BACKFILL,
    CommitInput,
    CommitResult,
    ReleaseInput,
    ReleaseResult,
)
from clickstream.pipeline.plan import parse_instant

RUN_SK = "run"
SUCCEEDED = "SUCCEEDED"


def run_pk(run_id: str) -> str:
    """Partition key of a run's record in the state table."""
    return f"run#{run_id}"


def commit_run(payload: CommitInput, settings: Settings, *, state: StateStore | None = None) -> CommitResult:
    """Advance the watermark to ``plan.watermark_to`` (forward only) and record the run as succeeded."""
    state = state if state is not None else _default_state(settings)
    plan = payload.plan
    previous = state.get_item(run_pk(plan.run_id), RUN_SK)
    committed = bool(previous and previous.get("status") == SUCCEEDED)
    if not committed:  # a retry of a Commit that succeeded has given the lease back itself
        hold_pipeline_lease(state, payload.execution_id)
    target = parse_instant(plan.watermark_to)
    current = state.get_watermark()
    moved = plan.kind != BACKFILL and (current is None or target > current)
    if moved:
        state.set_watermark(target, plan.run_id)
    watermark = target if moved or current is None else current

    committed_at = (
        previous["committed_at"] if committed and previous.get("committed_at") else iso(clock.now())
    )
    record: dict[str, Any] = {
        "run_id": plan.run_id,
        "execution_id": payload.execution_id,
        "status": SUCCEEDED,
        "watermark_from": plan.watermark_from,
        "watermark_to": plan.watermark_to,
        "watermark": iso(watermark),
        "watermark_moved": moved or (previous or {}).get("watermark_moved", False),
        "n_objects": plan.n_objects,
        "kind": plan.kind,
        "n_buckets": plan.n_buckets,
        "buckets": len(plan.buckets),
        "manifest_key": plan.manifest_key,
        "committed_at": committed_at,
    }
    state.put_item(run_pk(plan.run_id), RUN_SK, record)
    released = release_pipeline_lease(state, payload.execution_id)
    logger.info(
        "committed run",
        extra={
            "run_id": plan.run_id,
            "watermark": record["watermark"],
            "moved": moved,
            "n_objects": plan.n_objects,
            "lease_released": released,
        },
    )
    return CommitResult(
        run_id=plan.run_id,
        watermark=iso(watermark),
        n_objects=plan.n_objects,
        status=SUCCEEDED,
        lease_released=released,
    )


def release_run(
    payload: ReleaseInput, settings: Settings, *, state: StateStore | None = None
) -> ReleaseResult:
    """The failure path: give the pipeline lease back if this execution holds it; nothing else changes."""
    state = state if state is not None else _default_state(settings)
    released = release_pipeline_lease(state, payload.execution_id)
    return ReleaseResult(execution_id=payload.execution_id, released=released)


def get_run(run_id: str, settings: Settings, *, state: StateStore | None = None) -> dict[str, Any] | None:
    """The recorded run, or ``None`` when the run never committed."""
    state = state if state is not None else _default_state(settings)
    return state.get_item(run_pk(run_id), RUN_SK)


def _default_state(settings: Settings) -> StateStore:
    from clickstream.adapters.state import DynamoStateStore

    return DynamoStateStore(settings.state_table)
