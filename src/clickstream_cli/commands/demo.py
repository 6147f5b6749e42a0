"""``clickstream demo``: the whole pipeline on simulated store traffic, on the laptop stack (moto, no AWS account,
no Docker)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clickstream_cli.args import (
    LocalStackMissing,
    Subparsers,
    console,
    local_module,
    positive_float,
    positive_int,
    utc_datetime,
)


def register(subparsers: Subparsers) -> None:
    try:
        step_hours = float(local_module("runner").DEFAULT_STEP_HOURS)
    except LocalStackMissing:  # the command still shows; running it says what is missing
        step_hours = 6.0
    demo = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally on simulated store traffic (moto, no AWS account, no Docker)",
        description=(
            "Generate days of store traffic, post it through the ingest handler, validate it, execute the "
            "pipeline state machine once per simulated step, and write DIR/warehouse.duckdb, DIR/report.html "
            "and DIR/summary.json. Exits non-zero when the counters do not reconcile or a check fails."
        ),
    )
    demo.add_argument(
        "--events", type=positive_int, default=60_000, help="distinct events to generate (default 60000)"
    )
    demo.add_argument("--days", type=positive_float, default=7.0, help="simulated days (default 7)")
    demo.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed gives the same traffic (default 0)"
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        metavar="DIR",
        help="output folder (default demo-output)",
    )
    demo.add_argument(
        "--warehouse",
        metavar="URL",
        default=None,
        help="warehouse URL (postgresql://… for an empty PostgreSQL database); default duckdb:///DIR/warehouse.duckdb",
    )
    demo.add_argument(
        "--step-hours",
        type=positive_float,
        default=step_hours,
        metavar="H",
        help=f"simulated hours between pipeline runs (default {step_hours:g}; 1 = the stack's hourly schedule)",
    )
    demo.add_argument(
        "--buckets",
        type=positive_int,
        default=None,
        metavar="N",
        help="user-hash buckets (default: the stack's)",
    )
    demo.add_argument(
        "--start",
        type=utc_datetime,
        default=None,
        metavar="ISO",
        help="simulated start, ISO-8601 (default 2026-03-02T00:00Z)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars (for logs and CI)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clickstream.core.errors import DomainError

    runner = local_module("runner")
    out = console()
    options = runner.DemoOptions(
        events=args.events,
        days=args.days,
        seed=args.seed,
        out=args.out,
        warehouse=args.warehouse,
        step_hours=args.step_hours,
        buckets=args.buckets,
        progress=not args.no_progress,
        **({"start": args.start} if args.start else {}),
    )
    try:
        result = runner.run_demo(options, console=out)
    except (runner.DemoError, DomainError) as exc:
        out.print(f"[red]demo: {exc}[/]")
        return 2
    runner.print_outcome(result, out)
    return 0 if result.ok else 1
