"""``clickstream serve``: the ingest API on 127.0.0.1 for a browser or a tracker, the laptop stack behind it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clickstream_cli.args import Subparsers, local_module, port, positive_float


def register(subparsers: Subparsers) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve the store and the ingest API on 127.0.0.1, the pipeline behind it (moto)",
        description=(
            "The store at / (web/store/dist, make web), its local sign-in (any user name, password demo) and "
            "guest credentials; POST /v1/events and /com.snowplowanalytics.snowplow/tp2 with 'Authorization: Bearer "
            "<token>' (clickstream token), their /guest siblings signed with SigV4; POST /local/run-pipeline "
            "validates what arrived and runs the state machine; GET /dashboard shows the report. A 202 means the request is on disk in DIR/spool; every start puts the spool through "
            "the pipeline's stack again, so nothing accepted is lost to a crash. Stops cleanly on SIGINT/SIGTERM "
            "(a second signal exits at once), leaving DIR/warehouse.duckdb readable."
        ),
    )
    serve.add_argument("--port", type=port, default=3000, help="TCP port; 0 picks a free one (default 3000)")
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
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="time a client has to send a request's headers and body (default 30); an idle kept-alive "
        "connection is closed after 5 s",
    )
    serve.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="DIR",
        help="the built storefront served at / (default web/store/dist of the repository: make web builds it)",
    )
    serve.add_argument(
        "--no-consent-banner",
        action="store_true",
        help="the store tracks at once instead of asking for consent first (config.json requireConsent false)",
    )
    serve.add_argument("--quiet", action="store_true", help="no access log on stderr")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    local = local_module("serve")
    options = local.ServeOptions(
        host=args.host,
        port=args.port,
        out=args.out,
        warehouse=args.warehouse,
        allow_origins=tuple(args.allow_origins or local.DEFAULT_ALLOWED_ORIGINS),
        allow_hosts=tuple(args.allow_hosts or ()),
        read_timeout=args.read_timeout or local.READ_TIMEOUT_SECONDS,
        store_dir=args.store or local.DEFAULT_STORE_DIR,
        require_consent=not args.no_consent_banner,
    )
    try:
        return int(
            local.serve(
                options, log=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True)
            )
        )
    except local.ServeError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
