"""``clickstream backfill --from DAY --to DAY [--revalidate]``: re-process arrival days through the pipeline state
machine of a deployed stack (``--stack-name``), or of a simulated one (``--local``, the laptop stack)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clickstream_cli.args import (
    StageProgress,
    Subparsers,
    console,
    day,
    local_module,
    positive_float,
    progress_bars,
)

# The stack outputs a back-fill needs (template.yaml's Outputs).
STACK_OUTPUTS = ("StateMachineArn", "LakeBucketName", "RawBucketName", "StateTableName", "RawObjectsQueueUrl")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="re-process a range of arrival days through the pipeline state machine",
        description=(
            "Run the pipeline's back-fill path over the validated objects that arrived on the given days (UTC, both "
            "included): one execution whose Distributed Map sessionizes every user bucket, replacing the affected "
            "visitors in the warehouse; the watermark stays where it is. With --revalidate the raw objects of those "
            "days are first validated again through the validate queue. Against a deployed stack (--stack-name: its "
            "outputs name the resources), or locally with --local: a simulated demo whose days are then "
            "back-filled into DIR/backfill/warehouse.duckdb and compared with the incremental runs' warehouse."
        ),
    )
    parser.add_argument(
        "--from", dest="start", type=day, metavar="DAY", help="first arrival day (YYYY-MM-DD)"
    )
    parser.add_argument("--to", dest="end", type=day, metavar="DAY", help="last arrival day (YYYY-MM-DD)")
    parser.add_argument(
        "--revalidate", action="store_true", help="validate the raw objects of those days again first"
    )
    parser.add_argument(
        "--stack-name", default=None, help="the deployed stack (its outputs name the resources)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs and CI)")
    local = parser.add_argument_group("local (the laptop stack: moto, no AWS account)")
    local.add_argument(
        "--local", action="store_true", help="run a simulated demo, then back-fill all its days and compare"
    )
    local.add_argument("--events", type=int, default=20_000, help="demo events (default 20000)")
    local.add_argument("--days", type=float, default=2.0, help="simulated days (default 2)")
    local.add_argument("--seed", type=int, default=0, help="demo seed (default 0)")
    local.add_argument("--step-hours", type=positive_float, default=6.0, help="demo run step (default 6)")
    local.add_argument(
        "--out", type=Path, default=Path("backfill-output"), metavar="DIR", help="output folder"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = console()
    if args.local:
        return _run_local(args, out)
    if not (args.start and args.end and args.stack_name):
        out.print("[red]backfill: --from, --to and --stack-name are required (or --local)[/]")
        return 2
    return _run_stack(args, out)


def _run_local(args: argparse.Namespace, out: Any) -> int:
    runner = local_module("runner")
    result = runner.run_demo(
        runner.DemoOptions(
            events=args.events,
            days=args.days,
            seed=args.seed,
            out=args.out,
            step_hours=args.step_hours,
            progress=not args.no_progress,
            backfill=True,
            revalidate=args.revalidate,
        ),
        console=out,
    )
    runner.print_outcome(result, out)
    backfill = result.summary.get("backfill", {})
    out.print(
        f"back-fill {backfill.get('from')} .. {backfill.get('to')}: {backfill.get('status')}, "
        f"{'the same' if backfill.get('matches') else '[red]NOT the same[/]'} warehouse as the incremental runs"
    )
    return 0 if result.ok else 1


def _run_stack(args: argparse.Namespace, out: Any) -> int:
    from botocore.exceptions import ClientError

    from clickstream.operations.backfill import BackfillError, parse_days, run_backfill

    try:
        days = parse_days(args.start, args.end)
        target = stack_target(args.stack_name)
        with progress_bars(out, not args.no_progress, label_width=28) as bars:
            outcome = run_backfill(target, days, revalidate=args.revalidate, progress=StageProgress(bars))
    except BackfillError as exc:
        out.print(f"[red]backfill: {exc}[/]")
        return 2
    except ClientError as exc:  # the stack, a bucket or the state machine is not there or not ours to use
        out.print(f"[red]backfill: {exc}[/]")
        return 2
    out.print(
        f"{outcome.execution_name}: {outcome.status}"
        + (f" ({outcome.error}: {outcome.cause})" if not outcome.ok else f", {outcome.buckets_done} buckets")
    )
    return 0 if outcome.ok else 1


def stack_target(stack_name: str) -> Any:
    """The back-fill's target from a deployed stack: its outputs name the state machine, the buckets, the state
    table and the validate queue; its ``NBuckets`` parameter the bucket count."""
    from clickstream.adapters.factory import Adapters
    from clickstream.adapters.queue import SqsQueue
    from clickstream.adapters.stacks import describe_stack
    from clickstream.core.config import Settings
    from clickstream.operations.backfill import BackfillError, BackfillTarget

    stack = describe_stack(stack_name)
    missing = [k for k in STACK_OUTPUTS if k not in stack.outputs]
    if missing:
        raise BackfillError(f"stack {stack_name} has no outputs {', '.join(missing)}")
    if "NBuckets" not in stack.parameters:
        raise BackfillError(f"stack {stack_name} has no NBuckets parameter")
    settings = Settings(
        raw_bucket=stack.outputs["RawBucketName"],
        lake_bucket=stack.outputs["LakeBucketName"],
        state_table=stack.outputs["StateTableName"],
        n_buckets=int(stack.parameters["NBuckets"]),
    )
    return BackfillTarget(
        state_machine_arn=stack.outputs["StateMachineArn"],
        adapters=Adapters(settings, queue=SqsQueue(stack.outputs["RawObjectsQueueUrl"])),
    )
