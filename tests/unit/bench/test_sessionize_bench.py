"""The sessionizer benchmark's harness: every contender runs, writes what it claims, and the report adds up."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from bench.sessionize import run


def test_a_small_run_reports_all_four_contenders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a tiny generated input
    # When the benchmark runs once
    assert run.main(["--events", "4000", "--keep", str(tmp_path)]) == 0
    # Then the report names every contender with a positive time and the ratios agree with the times
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    for kind in ("ours", "peer", "floor", "bound"):
        assert result[f"{kind}_s"] > 0
    assert result["peer_over_ours"] == pytest.approx(result["peer_s"] / result["ours_s"], rel=0.05)
    assert result["bound_over_floor"] == pytest.approx(result["bound_s"] / result["floor_s"], rel=0.05)
    # And every contender wrote its files, with the rows the input has (less duplicates where it dedupes)
    con = duckdb.connect()

    def count(path: Path) -> int:
        return con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]

    n_input = count(tmp_path / "events-4000.parquet")
    n_distinct = con.execute(
        f"SELECT count(DISTINCT event_id) FROM read_parquet('{tmp_path / 'events-4000.parquet'}')"
    ).fetchone()[0]
    assert n_input > n_distinct  # the generator delivers some events twice
    assert count(tmp_path / "floor" / "copy.parquet") == n_input
    assert count(tmp_path / "bound" / "events.parquet") == n_input
    assert count(tmp_path / "ours" / "result" / "events.parquet") == n_distinct
    assert count(tmp_path / "peer" / "events.parquet") == n_distinct
