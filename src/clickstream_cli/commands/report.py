"""``clickstream report`` (render the dashboard into an HTML file) and ``clickstream forget`` (right to erasure)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from clickstream.core.errors import DomainError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="render the dashboard (self-contained HTML) from a warehouse",
        description="Render the dashboard from a DuckDB or PostgreSQL warehouse into one self-contained HTML file.",
    )
    p.add_argument(
        "--warehouse",
        metavar="URL",
        help="duckdb:///abs/path.duckdb or postgresql://… (default: WAREHOUSE_URL / WAREHOUSE_SECRET_ARN)",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        default=Path("report.html"),
        help="output file (default report.html)",
    )
    p.add_argument("--currency", metavar="CCY", help="store currency (default: STORE_CURRENCY, else USD)")
    p.add_argument(
        "--recompute", action="store_true", help="recompute daily_kpis for every day before rendering"
    )
    p.add_argument(
        "--last-days",
        metavar="N",
        type=_positive_int,
        help="only the last N days, up to --until (default: every day in the warehouse)",
    )
    p.add_argument(
        "--until",
        metavar="YYYY-MM-DD",
        type=date.fromisoformat,
        help="last day shown (site time zone; default: the latest day with sessions)",
    )
    p.set_defaults(func=report_command)

    f = subparsers.add_parser(
        "forget",
        help="erase a person from the warehouse, the lake and the raw zone, and keep them out",
        description=(
            "Erase one person (an anonymous_id, or a user_id with every anonymous_id that carried it): tombstones "
            "first (validation then quarantines late events as 'erased'), then the warehouse rows and the daily "
            "KPIs of their days, the lake's Parquet and quarantine lines, and the raw objects. Prints the counts "
            "per place; ids are shown only as hashes. Buckets, table and warehouse default to the environment "
            "(RAW_BUCKET, LAKE_BUCKET, STATE_TABLE, WAREHOUSE_URL / WAREHOUSE_SECRET_ARN)."
        ),
    )
    who = f.add_mutually_exclusive_group(required=True)
    who.add_argument("--anonymous-id", metavar="ID", help="the browser / device id to erase")
    who.add_argument("--user-id", metavar="ID", help="the account id to erase (with all its anonymous ids)")
    f.add_argument("--warehouse", metavar="URL", help="duckdb:///abs/path.duckdb or postgresql://…")
    f.add_argument("--raw-bucket", metavar="BUCKET", help="raw zone bucket (default: RAW_BUCKET)")
    f.add_argument("--lake-bucket", metavar="BUCKET", help="lake bucket (default: LAKE_BUCKET)")
    f.add_argument("--state-table", metavar="TABLE", help="state table for tombstones (default: STATE_TABLE)")
    f.add_argument("--currency", metavar="CCY", help="store currency for the KPIs (default: STORE_CURRENCY)")
    f.add_argument(
        "--warehouse-only",
        action="store_true",
        help="only the warehouse (e.g. a local demo's DuckDB file): no tombstone, lake or raw zone",
    )
    f.add_argument("--json", action="store_true", help="print the report as JSON")
    f.set_defaults(func=forget_command)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def report_command(args: argparse.Namespace) -> int:
    from clickstream.adapters.warehouse import open_warehouse, warehouse_from_settings
    from clickstream.core.config import get_settings
    from clickstream.report import build_report
    from clickstream.warehouse.kpis import all_days, recompute_daily_kpis
    from clickstream.warehouse.migrate import migrate

    settings = get_settings()
    currency = (args.currency or settings.store_currency).upper()
    try:
        warehouse = open_warehouse(args.warehouse) if args.warehouse else warehouse_from_settings(settings)
        with warehouse.connect() as conn:
            migrate(conn)
            if args.recompute:
                recompute_daily_kpis(conn, all_days(conn), currency)
            html = build_report(conn, currency, last_days=args.last_days, until=args.until)
    except DomainError as exc:
        print(f"clickstream report: {exc.message}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(html, encoding="utf-8")
    print(f"report written to {args.out} ({len(html):,} bytes) from {warehouse.describe()}")
    return 0


def forget_command(args: argparse.Namespace) -> int:
    import json

    from clickstream.adapters.warehouse import open_warehouse, warehouse_from_settings
    from clickstream.core.config import get_settings
    from clickstream.operations.erasure import Person, forget

    settings = get_settings()
    person = (
        Person("anonymous_id", args.anonymous_id) if args.anonymous_id else Person("user_id", args.user_id)
    )
    currency = (args.currency or settings.store_currency).upper()
    try:
        warehouse = open_warehouse(args.warehouse) if args.warehouse else warehouse_from_settings(settings)
        if args.warehouse_only:
            state = lake = raw = None
        else:
            from clickstream.adapters.state import DynamoStateStore
            from clickstream.adapters.storage import S3ObjectStore

            state = DynamoStateStore(args.state_table or settings.state_table)
            lake = S3ObjectStore(args.lake_bucket or settings.lake_bucket)
            raw = S3ObjectStore(args.raw_bucket or settings.raw_bucket)
        report = forget(person, state=state, lake=lake, raw=raw, warehouse=warehouse, currency=currency)
    except DomainError as exc:
        print(f"clickstream forget: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return 0
    print(f"forgot {report.kind} sha256:{report.id_hash[:16]}… ({report.visitors} visitor(s))")
    print(f"  tombstones written: {report.tombstones}" if state is not None else "  tombstones: skipped")
    rows = ", ".join(f"{t} {n}" for t, n in report.warehouse.items())
    print(
        f"  warehouse {warehouse.describe()}: {rows}; daily_kpis recomputed for {len(report.kpi_days)} day(s)"
    )
    for prefix, place in report.lake.items():
        print(f"  lake {prefix}: {place.objects} object(s) rewritten, {place.rows} row(s) removed")
    if raw is not None:
        print(f"  raw: {report.raw.objects} object(s) rewritten, {report.raw.rows} event(s) removed")
    return 0
