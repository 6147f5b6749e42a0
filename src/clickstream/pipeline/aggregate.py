"""The Aggregate step: recompute ``daily_kpis`` for the days the load touched, then publish the dashboard.

Only the affected days are recomputed (delete + insert in one transaction). The report is rendered from the
warehouse and uploaded to the lake bucket at ``Settings.report_key``; with a local DuckDB warehouse it is also
written as ``report.html`` next to the ``.duckdb`` file.
"""

from __future__ import annotations

from clickstream.adapters.storage import ObjectStore, S3ObjectStore
from clickstream.adapters.warehouse import Warehouse, warehouse_from_settings
from clickstream.core.config import Settings
from clickstream.core.observability import logger
from clickstream.pipeline.manifest import AggregateInput, AggregateResult
from clickstream.report import build_report
from clickstream.warehouse.kpis import recompute_daily_kpis
from clickstream.warehouse.migrate import migrate

LOCAL_REPORT_NAME = "report.html"


def run_aggregate(
    payload: AggregateInput,
    settings: Settings,
    *,
    store: ObjectStore | None = None,
    warehouse: Warehouse | None = None,
) -> AggregateResult:
    store = store or S3ObjectStore(settings.lake_bucket)
    warehouse = warehouse or warehouse_from_settings(settings)
    with warehouse.connect() as conn:
        migrate(conn)
        days = recompute_daily_kpis(conn, payload.loaded.affected_days, settings.store_currency)
        html = build_report(conn, settings.store_currency)
    body = html.encode("utf-8")
    store.put_bytes(settings.report_key, body, content_type="text/html; charset=utf-8")
    if warehouse.path is not None:
        (warehouse.path.parent / LOCAL_REPORT_NAME).write_bytes(body)
    logger.info(
        "daily KPIs recomputed and report published",
        extra={"run_id": payload.plan.run_id, "days_recomputed": days, "report_key": settings.report_key},
    )
    return AggregateResult(run_id=payload.plan.run_id, days_recomputed=days, report_key=settings.report_key)
