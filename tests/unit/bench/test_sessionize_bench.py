"""The sessionizer benchmark's harness: every contender runs, writes what it claims, and the report adds up."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from bench.sessionize import run


def test_a_small_run_reports_every_contender(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a tiny generated input
    # When the benchmark runs once
    assert run.main(["--events", "4000", "--keep", str(tmp_path)]) == 0
    # Then the report names every contender with a positive time and the ratios agree with the times
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    for kind in ("ours", "peer", "floor", "bound"):
        assert result[f"{kind}_s"] > 0
    # (the Polars peer runs wherever the bench extra is installed, and says why not otherwise)
    assert (result["polars_s"] is None) == (run.polars_missing() is not None)
    assert result["polars_skipped"] == run.polars_missing()
    assert set(result["cpu_s"]) >= {"ours", "peer", "floor", "bound"} and min(result["cpu_s"].values()) > 0
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


def test_the_polars_peer_applies_the_sql_peers_rule(tmp_path: Path) -> None:
    pytest.importorskip("polars", reason="the Polars peer needs the bench extra: pip install -e '.[bench]'")
    # Given a small generated input
    src = tmp_path / "events.parquet"
    run.measure("generate", src, tmp_path, run.GENERATE.format(n=6000, path=src))
    # When the SQL peer and the Polars peer both sessionize it
    run.measure("peer", src, tmp_path / "peer", run.PEER)
    run.measure("polars", src, tmp_path / "polars")
    # Then both keep the same events and cut the same sessions (Polars names them with its own hash, not md5)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def rows(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    for out in ("peer", "polars"):
        con.execute(
            f"CREATE VIEW {out}_events AS SELECT * FROM read_parquet('{tmp_path / out / 'events.parquet'}')"
        )
        con.execute(
            f"CREATE VIEW {out}_sessions AS SELECT * FROM read_parquet('{tmp_path / out / 'sessions.parquet'}')"
        )
    session_facts = "SELECT anonymous_id, session_start, session_end, n_events FROM {}_sessions ORDER BY ALL"
    assert rows(session_facts.format("polars")) == rows(session_facts.format("peer"))
    assert len(rows(session_facts.format("peer"))) > 1
    event_keys = "SELECT event_id, received_at, source_object FROM {}_events ORDER BY ALL"
    assert rows(event_keys.format("polars")) == rows(event_keys.format("peer"))
    # And each event points at the session of its own visitor and time in both outputs
    grouped = (
        "SELECT e.event_id, s.session_start FROM {0}_events e JOIN {0}_sessions s"
        " ON s.session_id = e.session_id AND s.anonymous_id = e.anonymous_id ORDER BY ALL"
    )
    assert rows(grouped.format("polars")) == rows(grouped.format("peer"))
