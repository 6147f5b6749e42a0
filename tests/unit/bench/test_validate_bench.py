"""The validation benchmark's harness: every contender runs on a small input and writes what it claims."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from bench.validate import run


def test_a_small_run_reports_every_contender_and_the_floors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a small generated input in two gzip objects
    # When the benchmark runs every contender once
    assert (
        run.main(
            [
                "--events",
                "3000",
                "--objects",
                "2",
                "--keep",
                str(tmp_path),
                "--hostile-bytes",
                "30000",
                "--hostile-repeats",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    # Then every contender and both floors are reported with a rate, and the engine's ratios are printed
    for name in run.CONTENDERS:
        assert f"{name}:" in out
    assert "engine / peer:" in out and "floors (no validation" in out and "cli / engine:" in out
    # And the phase profile ran on the same objects
    assert "where the engine's CPU goes" in out and "typed-decode floor:" in out
    # And the worst-content case ran after them (bench.validate.hostile), on both paths
    assert out.count("worst / ordinary:") == 2
    # And the engine wrote validated Parquet for each object, the parse floor counted every event it read
    n_events = int(out.split("input: ", 1)[1].split(" events", 1)[0])
    engine_files = sorted((tmp_path / "engine").glob("*.parquet"))
    assert len(engine_files) == 2
    con = duckdb.connect()
    validated = sum(
        con.execute(f"SELECT count(*) FROM read_parquet('{f}')").fetchone()[0] for f in engine_files
    )
    assert 0 < validated <= n_events
    assert int((tmp_path / "parse-only" / "events.txt").read_text()) == n_events
    # And the typed-decode floor decoded every event, and the step's three goal ratios were printed
    assert int((tmp_path / "typed-decode" / "events.txt").read_text()) == n_events
    assert int((tmp_path / "polars-read" / "events.txt").read_text()) == n_events
    for name in ("typed-decode", "peer", "python"):
        assert f"engine / {name}: " in out.split("against its goals", 1)[1]
    # And the command wrote the engine's rows for each object (the step judges them on its own path), one ledger
    # line each, its events accounted for
    cli_files = sorted((tmp_path / "cli").glob("*.parquet"))
    assert [f.name.split(".")[0] for f in cli_files] == [f.name.split(".")[0] for f in engine_files]
    for ours, theirs in zip(cli_files, engine_files, strict=True):
        query = "SELECT * FROM read_parquet('{}')"
        assert con.execute(query.format(ours)).fetchall() == con.execute(query.format(theirs)).fetchall()
    ledger = [json.loads(line) for line in (tmp_path / "cli" / "ledger.jsonl").read_text().splitlines()]
    assert len(ledger) == 2 and sum(x["events_in"] for x in ledger) == n_events
    copied = sum(
        con.execute(f"SELECT count(*) FROM read_parquet('{f}')").fetchone()[0]
        for f in (tmp_path / "duckdb-copy").glob("*.parquet")
    )
    assert copied == n_events
