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

from pydantic import Field

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.observability import logger
from clickstream.core.times import iso, parse_instant
from clickstream.pipeline.lease import hold_pipeline_lease, release_pipeline_lease
from clickstream.pipeline.manifest import BACKFILL, Contract, PlanResult


# -- contract: CommitInput -> CommitResult, and the failure path's ReleaseInput -> ReleaseResult --------------------
class CommitInput(Contract):
    execution_id: str
    plan: PlanResult


class CommitResult(Contract):
    run_id: str
    watermark: str
    n_objects: int
    status: str = "SUCCEEDED"
    lease_released: bool = False  # False when the lease was no longer this execution's (it had expired)


class ReleaseInput(Contract):
    """The failure path's call of the Commit function: give the pipeline lease back, touch nothing else."""

    action: str = Field(pattern="^release$")
    execution_id: str


class ReleaseResult(Contract):
    execution_id: str
    # False when this execution did not hold the lease (never took it, or already gave it back).
    released: bool


SUCCEEDED = "SUCCEEDED"


def run_commit(payload: CommitInput, settings: Settings, adapters: Adapters | None = None) -> CommitResult:
    """Advance the watermark to ``plan.watermark_to`` (forward only) and record the run as succeeded."""
    state = (adapters or adapters_for(settings)).state
    plan = payload.plan
    previous = state.get_run(plan.run_id)
    committed = bool(previous and previous.get("status") == SUCCEEDED)
    if not committed:  # a retry of a Commit that succeeded has given the lease back itself
        hold_pipeline_lease(state, payload.execution_id)
    target = parse_instant(plan.watermark_to, field="watermark_to")
    current = state.get_watermark()
    moved = plan.kind != BACKFILL and (current is None or target > current)
    if moved:
        state.set_watermark(target, plan.run_id)
    watermark = target if moved or current is None else current

    committed_at = (
        previous["committed_at"]
        if previous and committed and previous.get("committed_at")
        else iso(clock.now())
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
    state.put_run(record)
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


def release_run(payload: ReleaseInput, settings: Settings, adapters: Adapters | None = None) -> ReleaseResult:
    """The failure path: give the pipeline lease back if this execution holds it; nothing else changes."""
    state = (adapters or adapters_for(settings)).state
    released = release_pipeline_lease(state, payload.execution_id)
    return ReleaseResult(execution_id=payload.execution_id, released=released)
