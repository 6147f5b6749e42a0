"""``clickstream quarantine summary`` and ``clickstream quarantine redrive``: where the set-aside events are, and
sending them through validation again after a schema fix. Buckets and table come from the environment
(``RAW_BUCKET``, ``LAKE_BUCKET``, ``STATE_TABLE``) or the options; ``summary --lake-dir`` reads a local copy."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from clickstream_cli.args import Subparsers, console, positive_int


def register(subparsers: Subparsers) -> None:
    from clickstream.operations.quarantine import REASONS

    q = subparsers.add_parser(
        "quarantine",
        help="summarise the quarantine, or re-drive quarantined events after a schema fix",
        description=__doc__,
    )
    sub = q.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")

    s = sub.add_parser(
        "summary",
        help="quarantined events by arrival day, reason, schema field and source; what was re-driven",
        description=(
            "Count the lake's quarantine (quarantine/dt=…/hr=…/*.jsonl) by arrival day, reason, the field a "
            "schema violation names and the source objects' folder. With the state table: per reason, how many "
            "were re-driven, validated by the re-drive and are still quarantined, and whether the ledger balances."
        ),
    )
    _common(s)
    s.add_argument("--reason", action="append", choices=REASONS, help="only this reason (repeatable)")
    s.add_argument(
        "--top", type=positive_int, default=10, metavar="N", help="rows per top-N table (default 10)"
    )
    s.add_argument(
        "--lake-dir",
        type=Path,
        metavar="DIR",
        help="a local copy of the lake bucket (aws s3 sync s3://LAKE DIR) instead of S3; no re-drive columns",
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=summary_command)

    r = sub.add_parser(
        "redrive",
        help="validate quarantined events again (default: schema and size violations)",
        description=(
            "Re-drive quarantined events: the entries of each chosen reason in each quarantine object become one "
            "raw object, raw/redrive/dt=…/hr=…/<stem>.<reason>.jsonl, validated by the validate step itself "
            "(same checks, enrichment, outputs and ledger row). Running it again rewrites the same objects and "
            "rows. 'erased' is never re-driven; too_late and duplicate_conflict only when named."
        ),
    )
    _common(r)
    r.add_argument(
        "--reason",
        action="append",
        choices=REASONS,
        help="reason to re-drive (repeatable; default schema_violation and size_violation)",
    )
    r.add_argument("--dry-run", action="store_true", help="show what would be re-driven, change nothing")
    r.add_argument(
        "--write-only",
        action="store_true",
        help="write the redrive objects but leave their validation to the stack (the raw bucket notifies it)",
    )
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=redrive_command)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from", dest="first", type=date.fromisoformat, metavar="YYYY-MM-DD", help="first arrival day"
    )
    p.add_argument(
        "--to", dest="last", type=date.fromisoformat, metavar="YYYY-MM-DD", help="last arrival day"
    )
    p.add_argument("--lake-bucket", metavar="BUCKET", help="lake bucket (default: LAKE_BUCKET)")
    p.add_argument("--raw-bucket", metavar="BUCKET", help="raw bucket (default: RAW_BUCKET)")
    p.add_argument(
        "--state-table", metavar="TABLE", help="state table with the ledger (default: STATE_TABLE)"
    )


def _adapters(args: argparse.Namespace) -> Any:
    """The stack's adapters: the environment's settings, with the buckets and table the options name."""
    from clickstream.adapters.factory import adapters_for
    from clickstream.core.config import get_settings

    settings = get_settings()
    return adapters_for(
        settings.replace(
            lake_bucket=args.lake_bucket or settings.lake_bucket,
            raw_bucket=args.raw_bucket or settings.raw_bucket,
            state_table=args.state_table or settings.state_table,
        )
    )


def summary_command(args: argparse.Namespace) -> int:
    from clickstream.adapters.storage import DirectoryObjectStore
    from clickstream.core.errors import DomainError
    from clickstream.operations.quarantine import summarize

    try:
        if args.lake_dir is not None:
            if not args.lake_dir.is_dir():
                raise_input(f"--lake-dir {args.lake_dir} is not a folder")
            lake, state = DirectoryObjectStore(args.lake_dir), None
        else:
            adapters = _adapters(args)
            lake, state = adapters.lake, adapters.state
        summary = summarize(
            lake, state=state, first=args.first, last=args.last, reasons=args.reason, top=args.top
        )
    except DomainError as exc:
        print(f"clickstream quarantine summary: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
        return 0
    _print_summary(summary, source=str(args.lake_dir) if args.lake_dir else f"s3://{lake.bucket}")
    return 0


def redrive_command(args: argparse.Namespace) -> int:
    from clickstream.core.errors import DomainError
    from clickstream.core.observability import logger
    from clickstream.operations.quarantine import DEFAULT_REDRIVE_REASONS
    from clickstream.operations.redrive import plan_redrive, run_redrive

    reasons = args.reason or list(DEFAULT_REDRIVE_REASONS)
    try:
        adapters = _adapters(args)
        items = plan_redrive(adapters, reasons=reasons, first=args.first, last=args.last)
        if not args.dry_run:
            level = logger.log_level
            logger.setLevel("WARNING")  # the per-object log lines would bury the table (and break --json)
            try:
                run_redrive(items, adapters, validate=not args.write_only)
            finally:
                logger.setLevel(level)
    except DomainError as exc:
        print(f"clickstream quarantine redrive: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {"dry_run": args.dry_run, "objects": [i.as_dict() for i in items]}, indent=2, sort_keys=True
            )
        )
        return 0
    _print_redrive(items, dry_run=args.dry_run, write_only=args.write_only)
    return 0


def raise_input(message: str) -> None:
    from clickstream.core.errors import InputError

    raise InputError(message)


# -- printing ---------------------------------------------------------------------------------------------------
def _print_summary(summary: Any, *, source: str) -> None:
    from rich.table import Table

    out = console()
    span = f"{summary.first or 'start'} … {summary.last or 'now'}"
    out.print(
        f"[bold]Quarantine[/] in {source}, arrival days {span}: {summary.total:,} event(s) in "
        f"{summary.objects:,} object(s)"
    )
    if summary.by_day:
        reasons = sorted({r for counts in summary.by_day.values() for r in counts})
        table = Table("day", *reasons, "total", title="By arrival day and reason")
        for day, counts in summary.by_day.items():
            table.add_row(day, *(f"{counts.get(r, 0):,}" for r in reasons), f"{sum(counts.values()):,}")
        table.add_row("total", *(f"{summary.by_reason.get(r, 0):,}" for r in reasons), f"{summary.total:,}")
        out.print(table)
    if summary.field_paths:
        table = Table("field", "events", title="schema_violation by field (top)")
        for name, n in summary.field_paths:
            table.add_row(name, f"{n:,}")
        out.print(table)
    if summary.by_source:
        table = Table("source prefix", "events", title="By source object folder (top)")
        for prefix, n in summary.by_source:
            table.add_row(prefix, f"{n:,}")
        out.print(table)
    if summary.redrive is not None:
        table = Table(
            "reason",
            "quarantined",
            "re-driven",
            "validated",
            "duplicates",
            "quarantined again",
            "still quarantined",
            title="Re-drive",
        )
        for reason, s in summary.redrive.items():
            table.add_row(
                reason,
                *(
                    f"{v:,}"
                    for v in (
                        s.quarantined,
                        s.redriven,
                        s.validated,
                        s.duplicates,
                        s.requarantined,
                        s.still_quarantined,
                    )
                ),
            )
        out.print(table)
    for key in summary.stale:
        out.print(f"[yellow]stale[/] {key}: re-drives more events than its quarantine object now holds")
    if summary.ledger is not None:
        t = summary.ledger
        verdict = "[green]balances[/]" if t.balances else "[red]does not balance[/]"
        out.print(
            f"Ledger: {t.events_received:,} received in {t.source_objects:,} object(s) = {t.validated:,} validated "
            f"+ {t.still_quarantined:,} still quarantined + {t.duplicates:,} duplicates "
            f"({t.redriven:,} re-driven in {t.redrive_objects:,} redrive object(s)): {verdict}"
        )
    else:
        out.print("Re-drive status needs the ledger: run against the stack (STATE_TABLE) to see it.")


def _print_redrive(items: list[Any], *, dry_run: bool, write_only: bool) -> None:
    from rich.table import Table

    out = console()
    verb = "would re-drive" if dry_run else ("wrote" if write_only else "re-drove")
    table = Table(title=f"Re-drive ({verb})")
    table.add_column("quarantine object", overflow="fold")
    table.add_column("reason")
    table.add_column("events", justify="right")
    table.add_column("redrive object", overflow="fold")
    table.add_column("outcome")
    for item in items:
        if item.outcome is None:
            outcome = (
                "exists: validated again" if item.exists and dry_run else ("new" if dry_run else "written")
            )
        else:
            o = item.outcome
            again = sum(o["quarantined"].values())
            outcome = f"{o['validated']:,} validated, {o['duplicates']:,} duplicates, {again:,} quarantined"
        table.add_row(item.quarantine_key, item.reason, f"{item.entries:,}", item.redrive_key, outcome)
    out.print(table)
    total = sum(i.entries for i in items)
    out.print(f"{verb} {total:,} event(s) in {len(items):,} object(s)")
