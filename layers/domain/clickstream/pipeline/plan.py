"""The Plan step: choose the window of newly arrived validated objects and write the run's manifest.

A run covers the ledger rows validated in ``(watermark, as_of]`` (arrival order, not event time). ``as_of`` is
the execution's ``input["as_of"]`` when given (the local runner's simulated clock), else now minus the arrival
settle delay, so a validation still in flight when Plan reads the ledger is left to the next run instead of
slipping under the watermark. Plan never moves the watermark: only Commit does, at the very end.

The manifest (``runs/<run_id>/manifest.json`` in the lake bucket) is the one list of objects every later step
reads. It is written deterministically, so re-running Plan with the same input writes the same bytes; a Plan
retried inside one execution without an explicit ``as_of`` keeps the window it already chose.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.adapters.state import StateStore, iso
from clickstream.adapters.storage import ObjectStore
from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.errors import InputError
from clickstream.core.keys import run_prefix
from clickstream.core.observability import logger
from clickstream.pipeline.contracts import Manifest, ManifestObject, PlanInput, PlanResult

MANIFEST_NAME = "manifest.json"


def manifest_key(run_id: str) -> str:
    """Where a run's manifest lives in the lake bucket."""
    return f"{run_prefix(run_id)}{MANIFEST_NAME}"


def parse_instant(value: str | datetime) -> datetime:
    """An ISO-8601 instant as an aware UTC datetime (``Z`` accepted; a naive value means UTC)."""
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except (AttributeError, ValueError) as exc:
            raise InputError(f"not an ISO-8601 instant: {value!r}", field="as_of") from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def plan_run(
    payload: PlanInput,
    settings: Settings,
    *,
    state: StateStore | None = None,
    store: ObjectStore | None = None,
) -> PlanResult:
    """Plan one execution: read the ledger window, write the manifest, name the buckets to sessionize."""
    state = state if state is not None else _default_state(settings)
    store = store if store is not None else _default_store(settings)
    run_id = payload.execution_name
    key = manifest_key(run_id)
    watermark_from = state.get_watermark()
    explicit_as_of = payload.input.get("as_of")
    full = bool(payload.input.get("full", False))

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

    n_objects = sum(1 for o in manifest.objects if o.validated_key)
    result = PlanResult(
        run_id=run_id,
        execution_id=payload.execution_id,
        watermark_from=manifest.watermark_from,
        watermark_to=manifest.watermark_to,
        n_objects=n_objects,
        n_buckets=manifest.n_buckets,
        manifest_key=key,
        buckets=list(range(manifest.n_buckets)) if n_objects else [],
    )
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
    )


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest's canonical JSON: sorted keys, so the same window always gives the same bytes."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, indent=1).encode("utf-8")


def read_manifest(store: ObjectStore, run_id: str) -> Manifest:
    """The manifest a Plan step wrote for ``run_id`` (later steps read their objects from here)."""
    return Manifest.model_validate_json(store.get_bytes(manifest_key(run_id)))


def _manifest_objects(rows: list[dict[str, Any]]) -> list[ManifestObject]:
    by_key: dict[str, ManifestObject] = {}
    for row in rows:
        obj = ManifestObject(
            source_key=row["source_key"],
            validated_key=row.get("validated_key") or None,
            validated_at=iso(parse_instant(row["validated_at"])),
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


def _default_state(settings: Settings) -> StateStore:
    from clickstream.adapters.state import DynamoStateStore

    return DynamoStateStore(settings.state_table)


def _default_store(settings: Settings) -> ObjectStore:
    from clickstream.adapters.storage import S3ObjectStore

    return S3ObjectStore(settings.lake_bucket)
