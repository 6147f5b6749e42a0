"""``clickstream cost``: what the stack costs a month at a request rate, per service, with its assumptions.

``clickstream cost --rps 10 [--events-per-request K] [--api rest|http|alb] [--warehouse rds|byo] [--region us-east-1]
[--months N] [--store-cdn] [--json]`` prices the stack of ``template.yaml`` (its parameters' defaults) from the dated price table,
the workload measured on the laptop stack and the benchmarks' durations (``clickstream_cli.cost``). ``docs/cost.md``
explains the model and compares it with AWS's own solution.
"""

from __future__ import annotations

import argparse
import json
import sys

from clickstream_cli.args import Subparsers, console, local_module, positive_float


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "cost",
        help="estimate the stack's monthly AWS bill at a request rate (per service, assumptions printed)",
        description=(
            "Estimate the monthly AWS bill of the stack at a steady rate of ingest requests, per service, from "
            "the dated list prices, the workload measured on the laptop stack and the benchmarks' durations."
        ),
    )
    p.add_argument("--rps", type=positive_float, required=True, help="ingest requests a second (steady)")
    p.add_argument(
        "--events-per-request",
        metavar="K",
        type=positive_float,
        help="events one request carries (default: the tracker's batching of generated traffic, as measured)",
    )
    p.add_argument(
        "--api",
        choices=("rest", "http", "alb"),
        default="rest",
        help="the ingest front: rest (the stack's API Gateway REST API, default), http (HTTP API), alb (priced only)",
    )
    p.add_argument(
        "--warehouse",
        choices=("rds", "byo"),
        default="rds",
        help="rds: the stack creates the warehouse (CreateWarehouse=true, default here); byo: your own, priced 0",
    )
    p.add_argument("--region", default="us-east-1", help="price table region (default us-east-1)")
    p.add_argument(
        "--months",
        type=positive_float,
        help="price storage as it stands after this many months of running (default 1; the lake and warehouse grow)",
    )
    p.add_argument("--store-cdn", action="store_true", help="also price serving the store through CloudFront")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clickstream_cli.cost.model import CostError, estimate, load_prices, load_workload, stack_facts

    template = local_module("template")  # reads template.yaml, as the laptop stack does
    try:
        est = estimate(
            args.rps,
            events_per_request=args.events_per_request,
            api=args.api,
            warehouse=args.warehouse,
            region=args.region,
            store_cdn=args.store_cdn,
            months=args.months,
            stack=stack_facts(template.load_template()),
            workload=load_workload(),
            prices=load_prices(args.region),
        )
    except (CostError, template.TemplateNotFound) as exc:
        print(f"clickstream cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(est.as_dict(), indent=2))
        return 0
    from rich.table import Table

    out = console()
    table = Table(
        title=(
            f"Monthly estimate, {args.region}: {est.rps:g} requests/s x {est.events_per_request:g} events"
            f" ({est.rps * est.events_per_request:,.0f} events/s), {est.api.upper()} front, warehouse {est.warehouse}"
        )
    )
    for name, justify in (
        ("Service", "left"),
        ("Item", "left"),
        ("Quantity", "right"),
        ("USD/month", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("Note", overflow="fold")
    for line in est.lines:
        quantity = f"{line.quantity:,.1f} {line.unit}" if line.unit else ""
        table.add_row(line.service, line.item, quantity, f"{line.usd:,.2f}", line.note)
    table.add_section()
    for service, usd in est.by_service().items():
        table.add_row(service, "subtotal", "", f"{usd:,.2f}", "")
    table.add_section()
    table.add_row("Total", "", "", f"{est.total:,.2f}", "")
    out.print(table)
    out.print("Assumptions:")
    for text in est.assumptions:
        out.print(f" • {text}", soft_wrap=False)
    return 0
