"""The LoadWarehouse step: the sessionized files of a run → the warehouse, in one transaction.

For every bucket the Sessionize step answered with keys (the inline Map's answers in the payload, or on the
back-fill path each bucket's ``runs/<run_id>/bucket=NNNN/result.json``), download ``runs/<run_id>/bucket=NNNN/{events,
sessions,visitors,users}.parquet`` from the lake to a temp dir, then :func:`clickstream.warehouse.loader.load_run`
replaces those visitors' recomputed rows and records the run with what its Sessionize tasks read and wrote. Idempotent: the same payload twice leaves every table identical.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import Field

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.adapters.storage import ObjectStore
from clickstream.core.config import Settings
from clickstream.core.observability import logger
from clickstream.pipeline.manifest import (
    Contract,
    LoadResult,
    PlanResult,
    SessionizeResult,
    run_result_key,
)
from clickstream.warehouse.loader import RunFiles, RunRecord, load_run
from clickstream.warehouse.migrate import migrate


# -- contract: LoadInput -> LoadResult (in pipeline.manifest: Aggregate receives it) -----------------------------
class LoadInput(Contract):
    execution_id: str
    plan: PlanResult
    # The inline Map's answers; on the back-fill path empty, and Load reads each bucket's result.json instead.
    buckets: list[SessionizeResult] = Field(default_factory=list)


def run_load(
    payload: LoadInput,
    settings: Settings,
    adapters: Adapters | None = None,
    *,
    before_commit: Callable[[], None] | None = None,
) -> LoadResult:
    """Load one run; ``before_commit`` is the test hook of :func:`load_run` (never set in production)."""
    adapters = adapters or adapters_for(settings)
    warehouse = adapters.warehouse
    plan = payload.plan
    results = bucket_results(payload, adapters.lake)
    run = RunRecord(
        run_id=plan.run_id,
        execution_id=payload.execution_id or plan.execution_id,
        watermark_from=_ts(plan.watermark_from),
        watermark_to=_ts(plan.watermark_to),
        n_objects=plan.n_objects,
        **_costs(results),
    )
    with tempfile.TemporaryDirectory(prefix="clickstream-load-") as tmp:
        files = _download(results, adapters.lake, Path(tmp))
        with warehouse.connect() as conn:
            migrate(conn)
            stats = load_run(
                conn, files, run, site_timezone=settings.site_timezone, before_commit=before_commit
            )
    logger.info(
        "warehouse loaded",
        extra={
            "run_id": plan.run_id,
            "warehouse": warehouse.describe(),
            "events_loaded": stats.events_loaded,
            "sessions_loaded": stats.sessions_loaded,
            "visitors_replaced": stats.visitors_replaced,
            "affected_days": stats.affected_days,
        },
    )
    return LoadResult(
        run_id=plan.run_id,
        events_loaded=stats.events_loaded,
        sessions_loaded=stats.sessions_loaded,
        visitors_replaced=stats.visitors_replaced,
        affected_days=stats.affected_days,
    )


def bucket_results(payload: LoadInput, store: ObjectStore) -> list[SessionizeResult]:
    """The Sessionize answers of the run: from the payload, or (Distributed Map) from the lake, one per bucket."""
    if not payload.plan.distributed:
        return sorted(payload.buckets, key=lambda b: b.bucket)
    return [
        SessionizeResult.model_validate_json(store.get_bytes(run_result_key(payload.plan.run_id, bucket)))
        for bucket in range(payload.plan.n_buckets)
    ]


def _costs(results: list[SessionizeResult]) -> dict[str, int]:
    """What the run's Sessionize tasks read and wrote, summed over the buckets (``pipeline_runs``' cost columns)."""
    fields = {
        "events_arrived": "n_new_events",
        "state_rows_read": "state_rows_read",
        "state_bytes_read": "state_bytes_read",
        "index_rows_read": "index_rows_read",
        "frozen_rows_read": "frozen_rows_read",
        "state_rows_written": "state_rows_written",
        "thawed_slices": "n_thawed_slices",
    }
    return {column: sum(getattr(r, name) for r in results) for column, name in fields.items()}


def _download(results: list[SessionizeResult], store: ObjectStore, workdir: Path) -> RunFiles:
    files = RunFiles()
    for result in results:
        for kind, key in (
            ("events", result.events_key),
            ("sessions", result.sessions_key),
            ("visitors", result.visitors_key),
            ("users", result.users_key),
        ):
            if key:
                path = store.download(key, workdir / f"bucket={result.bucket:04d}" / f"{kind}.parquet")
                getattr(files, kind).append(path)
    return files


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
