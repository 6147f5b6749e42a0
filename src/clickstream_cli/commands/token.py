"""``clickstream token``: a bearer token ``clickstream serve`` accepts, signed by the laptop stack's local issuer."""

from __future__ import annotations

import argparse
from pathlib import Path

from clickstream_cli.args import Subparsers, local_module, positive_int


def register(subparsers: Subparsers) -> None:
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
        type=positive_int,
        default=3600,
        metavar="SECONDS",
        help="validity in seconds (default 3600)",
    )
    token.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    issuer = local_module("auth").LocalIssuer.load_or_create(args.out_dir)
    print(issuer.issue(args.user, token_use=args.token_use, expires_in=args.expires_in))
    return 0
