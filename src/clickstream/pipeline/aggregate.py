"""The Aggregate step: recompute ``daily_kpis`` for the days the load touched, then publish the dashboard.

Only the affected days are recomputed (delete + insert in one transaction). The report is rendered from the
warehouse and uploaded to the lake bucket at ``Settings.report_key``.
"""

from __future__ import annotations

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.core.config import Settings
from clickstream.core.observability import logger
from clickstream.pipeline.manifest import Contract, LoadResult, PlanResult
from clickstream.report import build_report
from clickstream.warehouse.kpis import recompute_daily_kpis
from clickstream.warehouse.migrate import migrate


# -- contract: AggregateInput -> AggregateResult -----------------------------------------------------------------
class AggregateInput(Contract):
    execution_id: str
    plan: PlanResult
    loaded: LoadResult


class AggregateResult(Contract):
    run_id: str
    days_recomputed: list[str]
    report_key: str | None


def run_aggregate(
    payload: AggregateInput, settings: Settings, adapters: Adapters | None = None
) -> AggregateResult:
    adapters = adapters or adapters_for(settings)
    with adapters.warehouse.connect() as conn:
        migrate(conn)
        days = recompute_daily_kpis(conn, payload.loaded.affected_days, settings.store_currency)
        html = build_report(conn, settings.store_currency)
    adapters.lake.put_bytes(
        settings.report_key, html.encode("utf-8"), content_type="text/html; charset=utf-8"
    )
    logger.info(
        "daily KPIs recomputed and report published",
        extra={"run_id": payload.plan.run_id, "days_recomputed": days, "report_key": settings.report_key},
    )
    return AggregateResult(run_id=payload.plan.run_id, days_recomputed=days, report_key=settings.report_key)
