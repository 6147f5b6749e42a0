"""``clickstream demo``'s command line: options, defaults and refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clickstream_cli.main import build_parser, main
from clickstream_local.runner import _environment


def test_demo_defaults_match_the_documented_ones():
    # Given the parser
    args = build_parser().parse_args(["demo"])
    # Then a plain `clickstream demo` is a week of 60,000 events, hourly runs, into demo-output/
    assert (args.events, args.days, args.seed, args.step_hours) == (60_000, 7.0, 0, 6.0)
    assert args.out == Path("demo-output") and args.warehouse is None and args.buckets is None
    assert args.start is None and args.no_progress is False


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--events", "0"],
        ["demo", "--days", "-1"],
        ["demo", "--step-hours", "0"],
        ["demo", "--buckets", "0"],
        ["demo", "--start", "yesterday"],
    ],
)
def test_demo_refuses_nonsense_options(argv, capsys):
    # When an option makes no sense
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    # Then argparse exits with its usage error
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_start_is_read_as_utc():
    # Given a start without a zone, and one with an offset
    naive = build_parser().parse_args(["demo", "--start", "2026-05-04T00:00"]).start
    offset = build_parser().parse_args(["demo", "--start", "2026-05-04T02:00+02:00"]).start
    # Then both are the same UTC instant
    assert naive == offset and naive.utcoffset().total_seconds() == 0


def test_an_unusable_warehouse_url_is_a_one_line_refusal(tmp_path, capsys):
    # When the warehouse URL names no supported engine
    code = main(["demo", "--out", str(tmp_path / "o"), "--warehouse", "mysql://nope", "--no-progress"])
    # Then the demo exits 2 with a message, before simulating anything
    assert code == 2
    assert "unsupported warehouse URL" in capsys.readouterr().out
    assert not (tmp_path / "o" / "summary.json").exists()


def test_environment_sets_unsets_and_restores(monkeypatch):
    # Given one variable set and one not
    monkeypatch.setenv("CLICKSTREAM_T_SET", "before")
    monkeypatch.delenv("CLICKSTREAM_T_UNSET", raising=False)
    # When the runner's environment overrides both (one unset)
    with _environment({"CLICKSTREAM_T_SET": None, "CLICKSTREAM_T_UNSET": "during"}):
        assert "CLICKSTREAM_T_SET" not in os.environ
        assert os.environ["CLICKSTREAM_T_UNSET"] == "during"
    # Then afterwards everything is as it was
    assert os.environ["CLICKSTREAM_T_SET"] == "before"
    assert "CLICKSTREAM_T_UNSET" not in os.environ
