"""The pipeline lease: at most one execution of the state machine works on the lake's state at a time.

Two executions at once (an hourly run that overruns, a manual run, a back-fill while the schedule is on) would
both read-modify-write the same bucket slices and one update would be lost. Plan takes the lease ``pipeline``
for its execution (owner = the execution id) before it reads or writes anything; Commit gives it back after the
watermark moved, and the state machine's failure path gives it back before it notifies. The lease expires after
``Settings.pipeline_lease_minutes``, the safety net for an execution that ended without either (aborted, timed out).

Fencing: an execution whose lease expired may find that another took it. Before it writes the bucket state
(Sessionize) or moves the watermark (Commit), a step of the execution checks that the execution still holds the lease
(:func:`hold_pipeline_lease`) and fails with :class:`LeaseLost` otherwise, writing nothing. An expired lease nobody
took is still held: no other execution can have run.

An execution that finds the lease held by another:
* a scheduled (incremental) run raises :class:`PipelineBusy`; the state machine ends it as ``Skipped`` — a
  success, no failure notice, the watermark untouched — and the next scheduled run takes the window;
* a back-fill or a full rebuild (started by an operator, who expects it to run) raises :class:`RunRefused`,
  which fails the execution through the usual failure notice, naming the holder.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from clickstream.adapters.state import StateStore
from clickstream.core import clock
from clickstream.core.errors import DomainError
from clickstream.core.observability import logger
from clickstream.core.times import iso

PIPELINE_LEASE = "pipeline"


class PipelineBusy(DomainError):
    """Another live execution holds the pipeline lease: this scheduled run skips its window."""

    code = "pipeline_busy"

    def __init__(self, message: str, *, holder: str | None = None, until: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder
        self.until = until


class RunRefused(PipelineBusy):
    """A back-fill or full rebuild found the pipeline lease held by another execution: it fails, not waits."""

    code = "run_refused"


class LeaseLost(DomainError):
    """This execution no longer holds the pipeline lease (it expired and another took it, or it was given back):
    the step writes nothing and the execution fails through the usual failure notice."""

    code = "lease_lost"


def hold_pipeline_lease(state: StateStore, owner: str) -> None:
    """Raise :class:`LeaseLost` unless ``owner`` still holds the pipeline lease (expired or not)."""
    held = state.get_lease(PIPELINE_LEASE) or {}
    if held.get("owner") != owner:
        raise LeaseLost(
            f"execution {owner} no longer holds the pipeline lease"
            + (f" (held by {held.get('owner')} until {held.get('until')})" if held else " (nobody holds it)")
            + "; nothing was written: run the window again"
        )


def acquire_pipeline_lease(
    state: StateStore, owner: str, minutes: int, *, manual: bool, now: datetime | None = None
) -> datetime:
    """Take the pipeline lease for ``owner`` for ``minutes`` and return its expiry; raise :class:`PipelineBusy`
    (or :class:`RunRefused` when ``manual``) when another execution holds a live one."""
    now = now or clock.now()
    until = now + timedelta(minutes=minutes)
    if state.acquire_lease(PIPELINE_LEASE, owner, until, now=now):
        logger.info("pipeline lease taken", extra={"owner": owner, "until": iso(until)})
        return until
    held = state.get_lease(PIPELINE_LEASE) or {}
    holder, held_until = held.get("owner"), held.get("until")
    error = RunRefused if manual else PipelineBusy
    what = "refused" if manual else "skipped"
    raise error(
        f"run {what}: the pipeline lease is held by execution {holder} until {held_until}"
        + ("; start it again when that execution has ended" if manual else "; the next run takes the window"),
        holder=holder,
        until=held_until,
    )


def release_pipeline_lease(state: StateStore, owner: str) -> bool:
    """Give the pipeline lease back if ``owner`` holds it; True when it did (a second release changes nothing)."""
    released = state.release_lease(PIPELINE_LEASE, owner)
    logger.info("pipeline lease released" if released else "pipeline lease not held", extra={"owner": owner})
    return released
