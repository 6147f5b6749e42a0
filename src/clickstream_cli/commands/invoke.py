"""``clickstream invoke``: run one of the stack's functions on an event as ``sam local invoke`` does, without Docker.

``clickstream invoke IngestFunction -e events/ingest_native.json [--env-vars env.json]`` calls the function's
handler with the environment ``template.yaml`` gives it, against the laptop stack (moto, in this process) seeded
with what the samples in ``events/`` assume happened before (``clickstream_local.invoke``). The answer is printed
on stdout as ``sam local invoke`` prints it (the response, or Lambda's error payload for an unhandled exception);
the function's log and metric lines go to stderr.

``clickstream invoke --write-env-json env.json [--account ID] [--region R] [--stage S]`` writes the ``--env-vars``
file ``sam local invoke`` takes: every function, every variable the template gives it, with the parameters'
defaults and the names the deployed stack's resources get.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from clickstream_cli.args import Subparsers, local_module


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "invoke",
        help="run a function of template.yaml on an event against the laptop stack (sam local invoke, no Docker)",
        description=(
            "Run a function of template.yaml on an event as `sam local invoke` does, against the laptop stack "
            "(moto, in this process) seeded with what the samples in events/ assume; or write the env.json "
            "`sam local invoke --env-vars` takes."
        ),
    )
    p.add_argument("function", nargs="?", metavar="FUNCTION", help="logical id, e.g. IngestFunction")
    p.add_argument(
        "-e",
        "--event",
        metavar="FILE",
        help="the event (JSON); '-' reads stdin; default {} as sam local invoke",
    )
    p.add_argument(
        "--env-vars",
        metavar="FILE",
        type=Path,
        help="env.json as sam local invoke takes it: {FunctionName: {VAR: value}, Parameters: {VAR: value}}",
    )
    p.add_argument(
        "--warehouse",
        metavar="URL",
        help="the warehouse Load and Aggregate use (default: a DuckDB file in a temporary folder)",
    )
    p.add_argument(
        "--no-seed",
        action="store_true",
        help="invoke against the empty laptop stack (no sample hour, the wall clock)",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the function's log and metric lines")
    p.add_argument(
        "--write-env-json",
        metavar="FILE",
        type=Path,
        help="write the env.json for sam local invoke (every function, every variable) and exit",
    )
    p.add_argument(
        "--account", default="123456789012", help="account id in the resources' names (--write-env-json)"
    )
    p.add_argument("--region", default="us-east-1", help="region in the resources' names (--write-env-json)")
    p.add_argument("--stage", help="the Stage parameter (--write-env-json; default the template's)")
    p.set_defaults(func=run)


def _read_event(spec: str | None) -> Any:
    if spec is None:
        return {}
    text = sys.stdin.read() if spec == "-" else Path(spec).read_text(encoding="utf-8")
    return json.loads(text)


def run(args: argparse.Namespace) -> int:
    invoke = local_module("invoke")
    try:
        if args.write_env_json is not None:
            doc = invoke.env_json(stage=args.stage, account=args.account, region=args.region)
            args.write_env_json.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            print(f"wrote {args.write_env_json}: {len(doc)} functions", file=sys.stderr)
            return 0
        if not args.function:
            print("clickstream invoke: name a FUNCTION (or --write-env-json FILE)", file=sys.stderr)
            return 2
        event = _read_event(args.event)
        env_vars = json.loads(args.env_vars.read_text(encoding="utf-8")) if args.env_vars else None
        result = invoke.invoke(
            args.function,
            event,
            env_vars=env_vars,
            warehouse_url=args.warehouse,
            seeded=not args.no_seed,
        )
    except (OSError, ValueError, invoke.InvokeError) as exc:
        print(f"clickstream invoke: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        for line in result.invocation.logs:
            print(line, file=sys.stderr)
    print(json.dumps(result.invocation.payload))
    return 0 if result.invocation.ok else 1
