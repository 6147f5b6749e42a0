"""The load benchmark's harness: every contender and both floors run on a tiny input, and the report adds up."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.load import run

pytestmark = pytest.mark.postgres


def test_a_tiny_run_reports_every_contender_and_the_floor(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a tiny generated input on the test server
    # When the benchmark runs every contender once
    assert run.main(["--events", "3000", "--buckets", "2", "--dsn", pg_dsn, "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.splitlines()[0])
    # Then the rows are the input's events and sessions (every contender's tables were counted against them)
    events, sessions = run.count_rows(run.generate(3000, 2, tmp_path))
    assert (result["rows"], events) == (events + sessions, 3000)
    # And both floor formats ran, the faster one is the floor, and the server read the files itself
    assert result["floor_s"] == min(result["floor_binary_s"], result["floor_text_s"]) > 0
    assert result["floor_format"] in ("binary", "text")
    if not os.environ.get("CLICKSTREAM_TEST_PG_DSN"):  # the local test server reads the files itself
        assert result["floor_reads"] == "server"
    # And ours (first load and reload) and the peer have times, and the ratios are the times' ratios
    for name in ("first_s", "reload_s", "peer_s"):
        assert result[name] > 0
    assert result["first_over_floor"] == pytest.approx(result["first_s"] / result["floor_s"], rel=0.05)
    assert result["reload_over_first"] == pytest.approx(result["reload_s"] / result["first_s"], rel=0.05)
    assert result["peer_over_first"] == pytest.approx(result["peer_s"] / result["first_s"], rel=0.05)
    # And the loader's child process reported its own peak memory, and the human report names the goals
    assert result["client_peak_rss_mb"] > 0
    assert "first/floor" in out and "reload/first" in out and "executemany/first" in out


def test_a_floor_the_server_cannot_write_falls_back_to_stdin(
    tmp_path: Path, pg_dsn: str, pg_database: str
) -> None:
    # Given a loaded database, read through a role that may not write server files (like a managed server's)
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from clickstream.warehouse.engine import open_warehouse
    from clickstream.warehouse.migrate import migrate

    files = run.generate(500, 1, tmp_path / "input")
    with open_warehouse(pg_database).connect() as conn:
        migrate(conn)
    run.ours_in_child(pg_database, {k: [str(p) for p in getattr(files, k)] for k in ("events", "sessions")})
    role = f"plain_{conninfo_to_dict(pg_database)['dbname']}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT SELECT ON events, sessions TO "{role}"')
    plain = make_conninfo(**{**conninfo_to_dict(pg_database), "user": role})
    floor_dir = tmp_path / "floor"
    floor_dir.mkdir()
    # When the floor files are prepared
    mode = run.prepare_floor(plain, floor_dir)
    # Then they were written here through COPY TO STDOUT, and the floor reads them through STDIN: the same rows
    assert mode == "stdin"
    expected = run.count_rows(files)
    for fmt in run.FORMATS:
        assert (floor_dir / f"events.{fmt}").stat().st_size > 0
        assert run.run_floor(pg_dsn, floor_dir, fmt, mode, run.event_days(files), expected)["wall_s"] > 0
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'REVOKE ALL ON events, sessions FROM "{role}"')
        conn.execute(f'DROP ROLE "{role}"')
