"""``clickstream report``: render the dashboard from a warehouse into one self-contained HTML file."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from clickstream.core.errors import DomainError
from clickstream_cli.args import Subparsers, positive_int


def register(subparsers: Subparsers) -> None:
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
        type=positive_int,
        help="only the last N days, up to --until (default: every day in the warehouse)",
    )
    p.add_argument(
        "--until",
        metavar="YYYY-MM-DD",
        type=date.fromisoformat,
        help="last day shown (site time zone; default: the latest day with sessions)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clickstream.adapters.factory import adapters_for
    from clickstream.core.config import get_settings
    from clickstream.report import build_report
    from clickstream.warehouse.kpis import all_days, recompute_daily_kpis
    from clickstream.warehouse.migrate import migrate

    settings = get_settings()
    currency = (args.currency or settings.store_currency).upper()
    try:
        warehouse = adapters_for(
            settings.replace(warehouse_url=args.warehouse or settings.warehouse_url)
        ).warehouse
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
