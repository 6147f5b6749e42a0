"""``clickstream sessionize INPUT.parquet... --out DIR``: sessionize validated events from Parquet files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clickstream.core.errors import InputError
from clickstream_cli.args import Subparsers, positive_float, time_zone


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sessionize",
        help="group validated events (Parquet) into sessions",
        description=(
            "Read validated events (at least event_id, anonymous_id, user_id, event_type, event_ts, received_at, "
            "page_url; files combined by column name), drop duplicate event_ids, group each visitor's events into "
            "sessions, and write DIR/events.parquet and DIR/sessions.parquet (DIR is created or replaced)."
        ),
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT.parquet")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument(
        "--timeout-minutes",
        type=positive_float,
        default=30.0,
        help="inactivity that ends a session (default 30)",
    )
    parser.add_argument(
        "--max-session-hours",
        type=positive_float,
        default=24.0,
        help="longest session, from its start (default 24)",
    )
    parser.add_argument(
        "--split-at-midnight",
        metavar="TZ",
        type=time_zone,
        default=None,
        help="also start a new session at midnight in time zone TZ (IANA name, e.g. Europe/Berlin)",
    )
    parser.add_argument(
        "--split-on-campaign",
        action="store_true",
        help="also start a new session when an event brings another utm source/medium/campaign "
        "(events without one never override a campaign)",
    )
    parser.add_argument(
        "--memory-limit", default=None, help="DuckDB memory limit, e.g. 2GB (spills beyond it)"
    )
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--temp-directory", default=None, help="where DuckDB spills (default: its own)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clickstream.sessionize.files import sessionize_files
    from clickstream.sessionize.rule import DuckDBOptions, SessionRules

    rules = SessionRules(
        timeout_minutes=args.timeout_minutes,
        max_session_hours=args.max_session_hours,
        split_at_midnight=args.split_at_midnight,
        split_on_campaign=args.split_on_campaign,
    )
    options = DuckDBOptions(
        memory_limit=args.memory_limit, threads=args.threads, temp_directory=args.temp_directory
    )
    try:
        summary = sessionize_files(args.inputs, args.out, rules, options)
    except InputError as exc:
        message = " ".join(exc.message.split())
        print(f"clickstream sessionize: error: {message}", file=sys.stderr)
        return 2
    print(
        f"{summary.n_events} events in {summary.n_sessions} sessions "
        f"({summary.n_duplicates} duplicates, {summary.n_conflicts} conflicting duplicates dropped) -> {args.out}"
    )
    return 0
