"""The Plan step: choose the window of newly arrived validated objects and write the run's manifest.

A run covers the ledger rows validated in ``(watermark, as_of]`` (arrival order, not event time). ``as_of`` is
the execution's ``input["as_of"]`` when given (the local runner's simulated clock), else now minus the arrival
settle delay, so a validation still in flight when Plan reads the ledger is left to the next run instead of
slipping under the watermark. Plan never moves the watermark: only Commit does, at the very end.

A back-fill (``input["backfill"] = {"from": DAY, "to": DAY}``) takes instead every ledger row whose validated
object lies in the lake's arrival-day partitions ``validated/dt=DAY/`` of that range, and also writes
``runs/<run_id>/items.json`` (one item per bucket) for the state machine's Distributed Map to read; it leaves the
watermark alone (Commit does not move it for a back-fill), so scheduled runs carry on where they were.

Before any of that, Plan takes the pipeline lease for its execution (``pipeline.lease``), so two executions never
work on the lake's state at once: a scheduled run that finds it held raises ``PipelineBusy`` (the state machine
ends it as Skipped), a back-fill or full rebuild raises ``RunRefused``. A retried Plan re-acquires its own lease.

The manifest (``runs/<run_id>/manifest.json`` in the lake bucket) is the one list of objects every later step
reads. It is written deterministically, so re-running Plan with the same input writes the same bytes; a Plan
retried inside one execution without an explicit ``as_of`` keeps the window it already chose.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, ValidationError

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.adapters.state import StateStore
from clickstream.adapters.storage import ObjectStore
from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.errors import InputError
from clickstream.core.observability import logger
from clickstream.core.times import iso, parse_instant
from clickstream.pipeline.lease import acquire_pipeline_lease
from clickstream.pipeline.manifest import (
    BACKFILL,
    FULL,
    INCREMENTAL,
    BackfillRange,
    Contract,
    Manifest,
    ManifestObject,
    PlanResult,
    items_key,
    ledger_arrival_day,
    manifest_bytes,
    manifest_key,
)


# -- contract: PlanInput -> PlanResult (the run's plan, in pipeline.manifest: every later step receives it) --------
class PlanInput(Contract):
    execution_id: str
    execution_name: str
    started_at: str | None = None
    # The execution's own input: {"as_of": ISO-8601 (simulated clock; default now - settle delay),
    # "full": bool (re-read every arrived object, e.g. after a schema fix),
    # "backfill": {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"} (re-process the validated objects of those arrival
    # days through the Distributed Map; the watermark stays where it is)}
    input: dict[str, Any] = Field(default_factory=dict)


def run_plan(payload: PlanInput, settings: Settings, adapters: Adapters | None = None) -> PlanResult:
    """Plan one execution: take the pipeline lease, read the ledger window, write the manifest, name the buckets."""
    adapters = adapters or adapters_for(settings)
    state, store = adapters.state, adapters.lake
    run_id = payload.execution_name
    key = manifest_key(run_id)
    explicit_as_of = payload.input.get("as_of")
    full = bool(payload.input.get("full", False))
    backfill = payload.input.get("backfill") is not None
    acquire_pipeline_lease(
        state, payload.execution_id, settings.pipeline_lease_minutes, manual=backfill or full
    )
    watermark_from = state.get_watermark()
    if backfill:
        return _plan_backfill(payload, settings, state, store, watermark_from)

    manifest = None
    if explicit_as_of is None:
        manifest = _reusable_manifest(store, key, run_id, watermark_from)
    if manifest is None:
        as_of = (
            parse_instant(explicit_as_of)
            if explicit_as_of is not None
            else clock.now() - timedelta(seconds=settings.arrival_settle_seconds)
        )
        manifest = build_manifest(
            run_id, state, watermark_from, as_of, full=full, n_buckets=settings.n_buckets
        )
        store.put_bytes(key, manifest_bytes(manifest), content_type="application/json")

    n_objects = manifest.n_to_sessionize
    result = _plan_result(payload, manifest, buckets=list(range(manifest.n_buckets)) if n_objects else [])
    logger.info(
        "planned run",
        extra={
            "run_id": run_id,
            "watermark_from": result.watermark_from,
            "watermark_to": result.watermark_to,
            "ledger_objects": len(manifest.objects),
            "n_objects": n_objects,
            "full": full,
        },
    )
    return result


def build_manifest(
    run_id: str,
    state: StateStore,
    watermark_from: datetime | None,
    as_of: datetime,
    *,
    full: bool,
    n_buckets: int,
) -> Manifest:
    """The manifest of the window ending at ``as_of``.

    Incremental: the ledger rows in ``(watermark_from, as_of]``; nothing when ``as_of`` is not after the
    watermark (the watermark then stays where it is). Full: every ledger row up to the later of ``as_of`` and
    the watermark, so a full rebuild never forgets an object an earlier run already took.
    """
    if full:
        until = as_of if watermark_from is None or as_of > watermark_from else watermark_from
        rows = state.ledger_between(None, until)
    elif watermark_from is not None and as_of <= watermark_from:
        until, rows = watermark_from, []
    else:
        until = as_of
        rows = state.ledger_between(watermark_from, as_of)
    return Manifest(
        run_id=run_id,
        watermark_from=iso(watermark_from) if watermark_from is not None else None,
        watermark_to=iso(until),
        n_buckets=n_buckets,
        objects=_manifest_objects(rows),
        kind=FULL if full else INCREMENTAL,
    )


def build_backfill_manifest(
    run_id: str, state: StateStore, days: BackfillRange, watermark: datetime | None, *, n_buckets: int
) -> Manifest:
    """Every ledger row whose object arrived on the range's days, also one left with no valid event (its rows in
    the bucket state, if a previous validation gave it some, must go). The watermark is only recorded."""
    rows = [
        row
        for row in state.all_ledger()
        if (day := ledger_arrival_day(row)) is not None and days.start <= day <= days.end
    ]
    mark = iso(watermark) if watermark is not None else None
    return Manifest(
        run_id=run_id,
        watermark_from=mark,
        watermark_to=mark or iso(datetime.combine(days.end, datetime.min.time(), tzinfo=UTC)),
        n_buckets=n_buckets,
        objects=_manifest_objects(rows),
        kind=BACKFILL,
    )


def _plan_backfill(
    payload: PlanInput,
    settings: Settings,
    state: StateStore,
    store: ObjectStore,
    watermark: datetime | None,
) -> PlanResult:
    try:
        days = BackfillRange.model_validate(payload.input["backfill"])
    except ValidationError as exc:
        raise InputError(f"invalid back-fill range: {exc.errors()[0]['msg']}", field="backfill") from exc
    run_id = payload.execution_name
    manifest = build_backfill_manifest(run_id, state, days, watermark, n_buckets=settings.n_buckets)
    store.put_bytes(manifest_key(run_id), manifest_bytes(manifest), content_type="application/json")
    items = [{"bucket": b} for b in range(manifest.n_buckets)]
    store.put_bytes(items_key(run_id), json.dumps(items).encode("utf-8"), content_type="application/json")
    n_objects = manifest.n_to_sessionize
    logger.info(
        "planned back-fill",
        extra={"run_id": run_id, "from": str(days.start), "to": str(days.end), "n_objects": n_objects},
    )
    return _plan_result(
        payload,
        manifest,
        buckets=[],
        distributed=True,
        lake_bucket=getattr(store, "bucket", settings.lake_bucket),
        items_key=items_key(run_id),
    )


def _plan_result(payload: PlanInput, manifest: Manifest, **extra: Any) -> PlanResult:
    """The run's plan: the manifest's window and counts, and ``extra`` (the buckets, the back-fill's items)."""
    return PlanResult(
        run_id=manifest.run_id,
        execution_id=payload.execution_id,
        watermark_from=manifest.watermark_from,
        watermark_to=manifest.watermark_to,
        n_objects=manifest.n_to_sessionize,
        n_buckets=manifest.n_buckets,
        manifest_key=manifest_key(manifest.run_id),
        kind=manifest.kind,
        **extra,
    )


def _manifest_objects(rows: list[dict[str, Any]]) -> list[ManifestObject]:
    by_key: dict[str, ManifestObject] = {}
    for row in rows:
        obj = ManifestObject(
            source_key=row["source_key"],
            validated_key=row.get("validated_key") or None,
            validated_at=iso(parse_instant(row["validated_at"])),
            had_valid=bool(row.get("had_valid")),
        )
        by_key[obj.source_key] = obj  # a re-validated object appears once
    return sorted(by_key.values(), key=lambda o: (o.validated_at, o.source_key))


def _reusable_manifest(
    store: ObjectStore, key: str, run_id: str, watermark_from: datetime | None
) -> Manifest | None:
    """The manifest this run already wrote, if it still starts at the current watermark (a retried Plan)."""
    if not store.exists(key):
        return None
    manifest = Manifest.model_validate_json(store.get_bytes(key))
    current = iso(watermark_from) if watermark_from is not None else None
    if manifest.run_id != run_id or manifest.watermark_from != current:
        return None
    return manifest
