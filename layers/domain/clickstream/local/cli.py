"""Local sub-commands: ``clickstream demo`` (the whole pipeline on simulated store traffic), ``clickstream serve``
(the ingest API on 127.0.0.1) and ``clickstream token`` (a bearer token that endpoint accepts)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from clickstream.local.runner import DEFAULT_STEP_HOURS

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
        "--events", type=_positive_int, default=60_000, help="distinct events to generate (default 60000)"
    )
    demo.add_argument("--days", type=_positive_float, default=7.0, help="simulated days (default 7)")
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
        type=_positive_float,
        default=DEFAULT_STEP_HOURS,
        metavar="H",
        help=f"simulated hours between pipeline runs (default {DEFAULT_STEP_HOURS:g}; 1 = the stack's hourly schedule)",
    )
    demo.add_argument(
        "--buckets",
        type=_positive_int,
        default=None,
        metavar="N",
        help="user-hash buckets (default: the stack's)",
    )
    demo.add_argument(
        "--start",
        type=_utc_datetime,
        default=None,
        metavar="ISO",
        help="simulated start, ISO-8601 (default 2026-03-02T00:00Z)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars (for logs and CI)")
    demo.set_defaults(func=run)
    _register_serve(subparsers)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from clickstream.core.errors import DomainError
    from clickstream.local.runner import DemoError, DemoOptions, print_outcome, run_demo

    console = Console()
    if not console.is_terminal:  # logs and CI: wide enough for the tables
        console = Console(width=120)
    options = DemoOptions(
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
        result = run_demo(options, console=console)
    except (DemoError, DomainError) as exc:
        console.print(f"[red]demo: {exc}[/]")
        return 2
    print_outcome(result, console)
    return 0 if result.ok else 1


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _utc_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- serve and token -----------------------------------------------------------------------------------------------
def _register_serve(subparsers: argparse._SubParsersAction) -> None:
    from clickstream.local.serve import IDLE_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS

    serve = subparsers.add_parser(
        "serve",
        help="serve the ingest API on 127.0.0.1 for a browser or a tracker, the pipeline behind it (moto)",
        description=(
            "POST /v1/events and /com.snowplowanalytics.snowplow/tp2 with 'Authorization: Bearer <token>' "
            "(clickstream token); POST /local/run-pipeline validates what arrived and runs the state machine; GET / "
            "shows the report. A 202 means the request is on disk in DIR/spool; every start puts the spool through "
            "the pipeline's stack again, so nothing accepted is lost to a crash. Stops cleanly on SIGINT/SIGTERM "
            "(a second signal exits at once), leaving DIR/warehouse.duckdb readable."
        ),
    )
    serve.add_argument("--port", type=_port, default=3000, help="TCP port; 0 picks a free one (default 3000)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--out",
        type=Path,
        default=Path("serve-output"),
        metavar="DIR",
        help="output folder (default serve-output)",
    )
    serve.add_argument(
        "--warehouse",
        metavar="URL",
        default=None,
        help="warehouse URL (default duckdb:///DIR/warehouse.duckdb)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        dest="allow_origins",
        help="origin allowed to post from a browser; repeatable, '*' patterns allowed "
        "(default http://localhost:* and http://127.0.0.1:*)",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="NAME",
        dest="allow_hosts",
        help="a Host name (without port) accepted besides the bound address, localhost and 127.0.0.1; repeatable "
        "(requests for any other Host are refused: DNS rebinding)",
    )
    serve.add_argument(
        "--read-timeout",
        type=_positive_float,
        default=READ_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"time a client has to send a request's headers and body (default {READ_TIMEOUT_SECONDS:g}); "
        f"an idle kept-alive connection is closed after {IDLE_TIMEOUT_SECONDS:g} s",
    )
    serve.add_argument("--quiet", action="store_true", help="no access log on stderr")
    serve.set_defaults(func=run_serve)

    token = subparsers.add_parser(
        "token",
        help="print a bearer token clickstream serve accepts",
        description=(
            "Sign a Cognito-shaped token with the local issuer of DIR (DIR/issuer.json, created if missing and "
            "shared with clickstream serve --out DIR)."
        ),
    )
    token.add_argument(
        "--user", default="shopper", metavar="NAME", help="user name; one name, one sub (default shopper)"
    )
    token.add_argument(
        "--out-dir",
        type=Path,
        default=Path("serve-output"),
        metavar="DIR",
        help="the serve output folder (default serve-output)",
    )
    token.add_argument(
        "--token-use", choices=("id", "access"), default="id", help="id or access token (default id)"
    )
    token.add_argument(
        "--expires-in",
        type=_positive_int,
        default=3600,
        metavar="SECONDS",
        help="validity in seconds (default 3600)",
    )
    token.set_defaults(func=run_token)


def run_serve(args: argparse.Namespace) -> int:
    import sys

    from clickstream.local.serve import DEFAULT_ALLOWED_ORIGINS, ServeError, ServeOptions, serve

    options = ServeOptions(
        host=args.host,
        port=args.port,
        out=args.out,
        warehouse=args.warehouse,
        allow_origins=tuple(args.allow_origins or DEFAULT_ALLOWED_ORIGINS),
        allow_hosts=tuple(args.allow_hosts or ()),
        read_timeout=args.read_timeout,
    )
    try:
        return serve(
            options, log=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True)
        )
    except ServeError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2


def run_token(args: argparse.Namespace) -> int:
    from clickstream.local.auth import LocalIssuer

    issuer = LocalIssuer.load_or_create(args.out_dir)
    print(issuer.issue(args.user, token_use=args.token_use, expires_in=args.expires_in))
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value
