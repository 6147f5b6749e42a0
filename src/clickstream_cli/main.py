"""The clickstream command: an operator's tool against a stack, and the laptop stack's entry point.

Each sub-command is one module of ``clickstream_cli.commands`` with ``register(subparsers)``; a sub-command sets
``func`` (taking the parsed args, returning an exit code). ``demo``, ``serve`` and ``token`` need the laptop stack
(``clickstream_local``) and say so when it is not installed.
"""

from __future__ import annotations

import argparse
import sys

from clickstream_cli.args import LocalStackMissing
from clickstream_cli.commands import (
    backfill,
    cost,
    demo,
    deploy_web,
    forget,
    invoke,
    quarantine,
    report,
    serve,
    sessionize,
    token,
    validate,
)

COMMANDS = (
    validate,
    sessionize,
    backfill,
    quarantine,
    forget,
    report,
    demo,
    serve,
    token,
    invoke,
    cost,
    deploy_web,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickstream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LocalStackMissing as exc:
        print(f"clickstream {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
