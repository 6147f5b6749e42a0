"""``clickstream forget``: right to erasure (the person's tombstone, warehouse rows, lake and raw objects)."""

from __future__ import annotations

import argparse
import json
import sys

from clickstream.core.errors import DomainError
from clickstream_cli.args import Subparsers


def register(subparsers: Subparsers) -> None:
    f = subparsers.add_parser(
        "forget",
        help="erase a person from the warehouse, the lake and the raw zone, and keep them out",
        description=(
            "Erase one person: an anonymous_id (that device, all of it), or a user_id (every event carrying it; the "
            "devices that carried no other user id, whole; on a device shared with other users, the anonymous "
            "events of the sessions the user signed into, and the device's sessions are computed again from what "
            "it keeps). Tombstones first (validation then quarantines late events as 'erased'; a shared device is "
            "not tombstoned), then the warehouse rows and the daily KPIs of their days, the lake's Parquet and "
            "quarantine lines, and the raw objects. Prints the counts per place; ids are shown only as hashes. "
            "Buckets, table and warehouse default to the environment (RAW_BUCKET, LAKE_BUCKET, STATE_TABLE, "
            "WAREHOUSE_URL / WAREHOUSE_SECRET_ARN)."
        ),
    )
    who = f.add_mutually_exclusive_group(required=True)
    who.add_argument("--anonymous-id", metavar="ID", help="the browser / device id to erase")
    who.add_argument(
        "--user-id",
        metavar="ID",
        help="the account id to erase (with the devices only it used, and its sessions)",
    )
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
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clickstream.adapters.factory import adapters_for
    from clickstream.core.config import get_settings
    from clickstream.operations.erasure import Person, forget
    from clickstream.pipeline.sessionize import session_rules

    settings = get_settings()
    person = (
        Person("anonymous_id", args.anonymous_id) if args.anonymous_id else Person("user_id", args.user_id)
    )
    currency = (args.currency or settings.store_currency).upper()
    try:
        adapters = adapters_for(
            settings.replace(
                warehouse_url=args.warehouse or settings.warehouse_url,
                raw_bucket=args.raw_bucket or settings.raw_bucket,
                lake_bucket=args.lake_bucket or settings.lake_bucket,
                state_table=args.state_table or settings.state_table,
            )
        )
        warehouse = adapters.warehouse
        if args.warehouse_only:
            state, lake, raw = None, None, None
        else:
            state, lake, raw = adapters.state, adapters.lake, adapters.raw
        report = forget(
            person,
            state=state,
            lake=lake,
            raw=raw,
            warehouse=warehouse,
            currency=currency,
            rules=session_rules(settings),
            site_timezone=settings.site_timezone,
        )
    except DomainError as exc:
        print(f"clickstream forget: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return 0
    print(
        f"forgot {report.kind} sha256:{report.id_hash[:16]}… ({report.visitors} device(s) erased whole,"
        f" {report.shared_devices} shared with other users kept for them)"
    )
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
