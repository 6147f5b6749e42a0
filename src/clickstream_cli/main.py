"""The ``clickstream`` command. Each stage registers its own sub-commands (``register(subparsers)``)."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute sub-commands, each with ``register(subparsers) -> None``. Sub-commands set
# ``func`` (taking the parsed args, returning an exit code).
COMMAND_MODULES = (
    "clickstream_cli.commands.sessionize",  # sessionize, backfill
    "clickstream_cli.commands.quarantine",  # quarantine
    "clickstream_cli.commands.report",  # report, forget
    "clickstream_cli.commands.demo",  # demo, serve, token
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
