"""``clickstream sessionize INPUT.parquet... --out DIR``: sessionize validated events from Parquet files;
``clickstream backfill --from DAY --to DAY [--revalidate]``: re-process arrival days through the state machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clickstream.core.errors import InputError


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def _time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone: {value!r}") from None
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
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
        "--timeout-minutes", type=_positive, default=30.0, help="inactivity that ends a session (default 30)"
    )
    parser.add_argument(
        "--max-session-hours",
        type=_positive,
        default=24.0,
        help="longest session, from its start (default 24)",
    )
    parser.add_argument(
        "--split-at-midnight",
        metavar="TZ",
        type=_time_zone,
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
    _register_backfill(subparsers)


def _day(value: str) -> str:
    from datetime import date

    try:
        return str(date.fromisoformat(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {value!r}") from None


def _register_backfill(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="re-process a range of arrival days through the pipeline state machine",
        description=(
            "Run the pipeline's back-fill path over the validated objects that arrived on the given days (UTC, both "
            "included): one execution whose Distributed Map sessionizes every user bucket, replacing the affected "
            "visitors in the warehouse; the watermark stays where it is. With --revalidate the raw objects of those "
            "days are first validated again through the validate queue. Against a deployed stack (--stack-name or "
            "--state-machine-arn and the stack's resources), or locally with --local: a simulated demo whose days "
            "are then back-filled into DIR/backfill/warehouse.duckdb and compared with the incremental runs' "
            "warehouse."
        ),
    )
    parser.add_argument(
        "--from", dest="start", type=_day, metavar="DAY", help="first arrival day (YYYY-MM-DD)"
    )
    parser.add_argument("--to", dest="end", type=_day, metavar="DAY", help="last arrival day (YYYY-MM-DD)")
    parser.add_argument(
        "--revalidate", action="store_true", help="validate the raw objects of those days again first"
    )
    parser.add_argument(
        "--stack-name", default=None, help="the deployed stack (its outputs name the resources)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs and CI)")
    local = parser.add_argument_group("local (moto, no AWS account)")
    local.add_argument(
        "--local", action="store_true", help="run a simulated demo, then back-fill all its days and compare"
    )
    local.add_argument("--events", type=int, default=20_000, help="demo events (default 20000)")
    local.add_argument("--days", type=float, default=2.0, help="simulated days (default 2)")
    local.add_argument("--seed", type=int, default=0, help="demo seed (default 0)")
    local.add_argument("--step-hours", type=_positive, default=6.0, help="demo run step (default 6)")
    local.add_argument(
        "--out", type=Path, default=Path("backfill-output"), metavar="DIR", help="output folder"
    )
    parser.set_defaults(func=run_backfill_command)


def run_backfill_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    if args.local:
        return _run_local(args, console)
    if not (args.start and args.end and args.stack_name):
        console.print("[red]backfill: --from, --to and --stack-name are required (or --local)[/]")
        return 2
    return _run_stack(args, console)


def _run_local(args: argparse.Namespace, console) -> int:
    from clickstream_local.runner import DemoOptions, print_outcome, run_demo

    result = run_demo(
        DemoOptions(
            events=args.events,
            days=args.days,
            seed=args.seed,
            out=args.out,
            step_hours=args.step_hours,
            progress=not args.no_progress,
            backfill=True,
            revalidate=args.revalidate,
        ),
        console=console,
    )
    print_outcome(result, console)
    backfill = result.summary.get("backfill", {})
    console.print(
        f"back-fill {backfill.get('from')} .. {backfill.get('to')}: {backfill.get('status')}, "
        f"{'the same' if backfill.get('matches') else '[red]NOT the same[/]'} warehouse as the incremental runs"
    )
    return 0 if result.ok else 1


def _run_stack(args: argparse.Namespace, console) -> int:
    from botocore.exceptions import ClientError

    from clickstream.adapters.aws import client
    from clickstream.adapters.state import DynamoStateStore
    from clickstream.adapters.storage import S3ObjectStore
    from clickstream.operations.backfill import BackfillError, BackfillTarget, parse_days, run_backfill

    try:
        days = parse_days(args.start, args.end)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in client("cloudformation")
            .describe_stacks(StackName=args.stack_name)["Stacks"][0]
            .get("Outputs", [])
        }
        missing = [k for k in STACK_OUTPUTS if k not in outputs]
        if missing:
            raise BackfillError(f"stack {args.stack_name} has no outputs {', '.join(missing)}")
        n_buckets = int(
            next(
                p["ParameterValue"]
                for p in client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0][
                    "Parameters"
                ]
                if p["ParameterKey"] == "NBuckets"
            )
        )
        target = BackfillTarget(
            state_machine_arn=outputs["StateMachineArn"],
            lake=S3ObjectStore(outputs["LakeBucketName"]),
            state=DynamoStateStore(outputs["StateTableName"]),
            n_buckets=n_buckets,
            raw=S3ObjectStore(outputs["RawBucketName"]),
            queue_url=outputs["RawObjectsQueueUrl"],
        )
        with _progress(console, not args.no_progress) as progress:
            outcome = run_backfill(target, days, revalidate=args.revalidate, progress=progress)
    except BackfillError as exc:
        console.print(f"[red]backfill: {exc}[/]")
        return 2
    except ClientError as exc:  # the stack, a bucket or the state machine is not there or not ours to use
        console.print(f"[red]backfill: {exc}[/]")
        return 2
    console.print(
        f"{outcome.execution_name}: {outcome.status}"
        + (f" ({outcome.error}: {outcome.cause})" if not outcome.ok else f", {outcome.buckets_done} buckets")
    )
    return 0 if outcome.ok else 1


# The stack outputs a back-fill needs (template.yaml's Outputs).
STACK_OUTPUTS = ("StateMachineArn", "LakeBucketName", "RawBucketName", "StateTableName", "RawObjectsQueueUrl")


class _RichProgress:
    def __init__(self, bar) -> None:
        self._bar = bar
        self._task = None

    def stage(self, description: str, total: int) -> None:
        self._task = self._bar.add_task(description, total=total)

    def advance(self, done: int) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=done)


@contextmanager
def _progress(console, enabled: bool) -> Iterator[object]:
    from clickstream.operations.backfill import Progress

    if not enabled:
        yield Progress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        yield _RichProgress(bar)


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
