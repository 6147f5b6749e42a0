"""The history benchmark's harness: a tiny store runs through the real Sessionize step and the report adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.history import run


def test_a_tiny_store_reports_arrivals_loads_and_state_reads_per_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a five-day store, one window a day
    # When the benchmark runs it
    assert (
        run.main(["--days", "5", "--step-hours", "24", "--visits", "4", "--json", str(tmp_path / "r.json")])
        == 0
    )
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    # Then every generated event arrived in exactly one run, each run loaded at least what it brought, and the
    # runs after the first read the state the earlier ones wrote
    windows = run.simulate(5, 24, 4, 7)
    assert [r["arrived"] for r in runs] == [len(w) for w in windows]
    assert all(r["loaded"] >= r["arrived"] for r in runs)
    assert runs[0]["state_rows_read"] == 0 and all(r["state_rows_read"] > 0 for r in runs[1:])
    # And the report's day 5 is the last run, and its ratios are its own figures'
    day5 = result["by_day"][0]
    assert (day5["days"], day5["arrived"], day5["loaded"]) == ("5", runs[-1]["arrived"], runs[-1]["loaded"])
    assert day5["loaded_per_arrived"] == round(runs[-1]["loaded"] / runs[-1]["arrived"], 3)
    assert result["last_week"]["arrived"] == sum(len(w) for w in windows)
