"""The ``clickstream`` command as a whole: every sub-command registered, and the laptop stack's absence reported."""

from __future__ import annotations

import importlib

import pytest

from clickstream_cli import args as cli_args
from clickstream_cli.main import build_parser, main


def test_every_command_is_registered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {
        "validate",
        "sessionize",
        "backfill",
        "quarantine",
        "forget",
        "report",
        "demo",
        "serve",
        "token",
        "invoke",
        "cost",
        "deploy-web",
    }


@pytest.mark.parametrize("argv", [["token"], ["serve", "--port", "0"], ["demo", "--no-progress"]])
def test_a_laptop_stack_command_without_the_laptop_stack_says_what_is_missing(argv, monkeypatch, capsys):
    # Given an install without clickstream_local (an operator's machine)
    real = importlib.import_module

    def without_local(name: str, *rest: object) -> object:
        if name.startswith("clickstream_local"):
            raise ModuleNotFoundError(f"No module named {name!r}", name="clickstream_local")
        return real(name, *rest)

    monkeypatch.setattr(cli_args.importlib, "import_module", without_local)
    # When a command that needs it runs / Then it exits 2 with a sentence that names the package and the fix
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "clickstream_local" in err and "pip install -e" in err


def test_argument_types_refuse_nonsense():
    import argparse

    for text in ("0", "-3"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli_args.positive_int(text)
    for text in ("0", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli_args.positive_float(text)
    with pytest.raises(argparse.ArgumentTypeError):
        cli_args.port("70000")
    with pytest.raises(argparse.ArgumentTypeError):
        cli_args.time_zone("Mars/Olympus")
    assert cli_args.day("2026-03-01") == "2026-03-01"
