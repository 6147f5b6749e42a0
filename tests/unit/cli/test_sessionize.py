"""``clickstream sessionize``: the CLI contract of issue 2."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from clickstream_cli.main import main
from tests.unit.sessionize.data import (
    REQUIRED,
    T0,
    TIMEOUT,
    TYPES,
    Stream,
    parquet_columns,
    read_parquet,
    write_parquet,
)

NAIVE = [(n, "TIMESTAMP" if TYPES[n] == "TIMESTAMPTZ" else TYPES[n]) for n in REQUIRED]
AWARE = [(n, TYPES[n]) for n in REQUIRED]


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main(["sessionize", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def naive(rows: list[dict]) -> list[dict]:
    return [
        {
            **r,
            "event_ts": r["event_ts"].replace(tzinfo=None),
            "received_at": r["received_at"].replace(tzinfo=None),
        }
        for r in rows
    ]


def test_writes_events_with_all_input_columns_and_sessions(tmp_path: Path, capsys) -> None:
    # Given validated events with every column and an extra one
    s = Stream()
    s.add("v", T0, utm_source="news")
    s.add("v", T0 + timedelta(minutes=5))
    columns = [*AWARE, ("utm_source", "VARCHAR"), ("source_object", "VARCHAR"), ("extra_col", "VARCHAR")]
    src = write_parquet(tmp_path / "a.parquet", [{**r, "extra_col": "x"} for r in s.rows], columns)
    # When the CLI runs
    code, out, _ = run(capsys, src, "--out", tmp_path / "out")
    # Then events keep all input columns plus session_id, and one session is written
    assert code == 0 and "2 events in 1 sessions" in out
    names = [n for n, _ in parquet_columns(tmp_path / "out" / "events.parquet")]
    assert names == [n for n, _ in columns] + ["session_id"]
    assert [x["n_events"] for x in read_parquet(tmp_path / "out" / "sessions.parquet")] == [2]


def test_missing_required_column_exits_non_zero_with_one_line(tmp_path: Path, capsys) -> None:
    # Given a file without page_url and received_at
    s = Stream()
    s.add("v", T0)
    cols = [c for c in AWARE if c[0] not in ("page_url", "received_at")]
    src = write_parquet(tmp_path / "a.parquet", s.rows, cols)
    # When the CLI runs
    code, _, err = run(capsys, src, "--out", tmp_path / "out")
    # Then it fails with a one-line reason naming the columns, and writes nothing
    assert code != 0
    assert err.count("\n") == 1 and "missing required columns: received_at, page_url" in err
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize("content", [b"not a parquet file at all", b""])
def test_unreadable_file_exits_non_zero_with_one_line(tmp_path: Path, capsys, content: bytes) -> None:
    # Given a corrupt file
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(content)
    # When the CLI runs
    code, _, err = run(capsys, bad, "--out", tmp_path / "out")
    # Then it fails with one line
    assert code != 0 and err.count("\n") == 1 and "cannot read input" in err


def test_nonexistent_file_exits_non_zero(tmp_path: Path, capsys) -> None:
    # Given a path that does not exist / When the CLI runs / Then one line names it
    code, _, err = run(capsys, tmp_path / "nope.parquet", "--out", tmp_path / "out")
    assert code != 0 and err.count("\n") == 1 and "nope.parquet" in err


def test_files_are_combined_by_column_name(tmp_path: Path, capsys) -> None:
    # Given two files with columns in different orders, one with a column the other lacks
    s1, s2 = Stream("raw/a"), Stream("raw/b")
    s1.add("v", T0, event_id="a1", utm_source="news")
    s2.add("v", T0 + timedelta(minutes=10), event_id="b1")
    a = write_parquet(tmp_path / "a.parquet", s1.rows, [*AWARE, ("utm_source", "VARCHAR")])
    b = write_parquet(tmp_path / "b.parquet", s2.rows, list(reversed(AWARE)))
    # When both are sessionized together
    code, _, _ = run(capsys, a, b, "--out", tmp_path / "out")
    # Then the rows are aligned by name and the missing column is null in the second file's row
    assert code == 0
    events = sorted(read_parquet(tmp_path / "out" / "events.parquet"), key=lambda e: e["event_ts"])
    assert [e["utm_source"] for e in events] == ["news", None]
    assert len({e["session_id"] for e in events}) == 1
    assert read_parquet(tmp_path / "out" / "sessions.parquet")[0]["utm_source"] == "news"


def test_naive_aware_and_nanosecond_timestamps_are_utc(tmp_path: Path, capsys) -> None:
    # Given the same visitor's events in a naive-timestamp file, a tz-aware file and a nanosecond file
    s1, s2 = Stream("raw/a"), Stream("raw/b")
    s1.add("v", T0, event_id="a1")
    s2.add("v", T0 + TIMEOUT, event_id="b1")
    a = write_parquet(tmp_path / "naive.parquet", naive(s1.rows), NAIVE)
    b = write_parquet(tmp_path / "aware.parquet", s2.rows, AWARE)
    ns = tmp_path / "ns.parquet"
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'e-ns' AS event_id, 'v' AS anonymous_id, NULL::VARCHAR AS user_id, 'page_view' AS event_type,
                  TIMESTAMP_NS '2026-03-02 09:00:00.000000999' AS event_ts,
                  TIMESTAMP_NS '2026-03-02 09:00:01' AS received_at, 'u' AS page_url) TO '{ns}' (FORMAT parquet)"""
    )
    con.close()
    # When all three are sessionized
    code, _, _ = run(capsys, a, b, ns, "--out", tmp_path / "out")
    # Then naive means UTC, ns are truncated to µs (exactly 30 min after the previous event: same session)
    assert code == 0
    events = sorted(read_parquet(tmp_path / "out" / "events.parquet"), key=lambda e: e["event_ts"])
    assert [e["event_ts"] for e in events] == [T0, T0 + TIMEOUT, T0 + 2 * TIMEOUT]
    assert len({e["session_id"] for e in events}) == 1
    types = dict(parquet_columns(tmp_path / "out" / "events.parquet"))
    assert types["event_ts"] == types["received_at"] == "TIMESTAMP WITH TIME ZONE"


def test_out_dir_is_replaced_and_kept_on_failure(tmp_path: Path, capsys) -> None:
    # Given an existing output directory with a stale file
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    s = Stream()
    s.add("v", T0)
    src = write_parquet(tmp_path / "a.parquet", s.rows, AWARE)
    # When the CLI runs
    code, _, _ = run(
        capsys,
        src,
        "--out",
        out,
        "--memory-limit",
        "512MB",
        "--threads",
        "1",
        "--temp-directory",
        tmp_path / "spill",
    )
    # Then the directory holds exactly the two outputs
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "sessions.parquet"]
    # And a failing run leaves it untouched, with no temporary directories left behind
    code, _, _ = run(capsys, tmp_path / "missing.parquet", "--out", out)
    assert code != 0
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "sessions.parquet"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_timeout_and_cap_flags(tmp_path: Path, capsys) -> None:
    # Given events 11 minutes apart over 3 hours
    s = Stream()
    for k in range(17):
        s.add("v", T0 + k * timedelta(minutes=11))
    src = write_parquet(tmp_path / "a.parquet", s.rows, AWARE)
    # When run with a 10-minute timeout, and separately with a 1-hour cap
    assert run(capsys, src, "--out", tmp_path / "t", "--timeout-minutes", "10")[0] == 0
    assert run(capsys, src, "--out", tmp_path / "c", "--max-session-hours", "1")[0] == 0
    # Then every gap splits in the first, and sessions of at most 1 h in the second
    assert len(read_parquet(tmp_path / "t" / "sessions.parquet")) == 17
    assert len(read_parquet(tmp_path / "c" / "sessions.parquet")) == 3


def test_null_keys_are_rejected(tmp_path: Path, capsys) -> None:
    # Given a row without anonymous_id
    s = Stream()
    s.add(None, T0)
    src = write_parquet(tmp_path / "a.parquet", s.rows, AWARE)
    # When / Then the CLI refuses it with one line
    code, _, err = run(capsys, src, "--out", tmp_path / "out")
    assert code != 0 and err.count("\n") == 1 and "lack event_id, anonymous_id or event_ts" in err


def test_invalid_flag_values_are_rejected(tmp_path: Path) -> None:
    # Given a zero timeout / When parsed / Then argparse exits with an error
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "sessionize",
                str(tmp_path / "a.parquet"),
                "--out",
                str(tmp_path / "o"),
                "--timeout-minutes",
                "0",
            ]
        )
    assert exc.value.code != 0


# -- clickstream backfill ----------------------------------------------------------------------------------------
def test_backfill_needs_a_range_and_a_stack_unless_local(capsys) -> None:
    from clickstream_cli.main import main

    # When back-fill is asked without a stack, Then it refuses with exit code 2 and says what is missing
    assert main(["backfill", "--from", "2026-03-01", "--to", "2026-03-02"]) == 2
    assert "--stack-name" in capsys.readouterr().out


def test_backfill_refuses_an_inverted_range_before_touching_aws(capsys) -> None:
    from clickstream_cli.main import main

    # When the range ends before it starts, Then exit code 2 names both days (no AWS call is made: no credentials)
    assert main(["backfill", "--from", "2026-03-05", "--to", "2026-03-01", "--stack-name", "s"]) == 2
    out = capsys.readouterr().out
    assert "2026-03-01" in out and "2026-03-05" in out


def test_backfill_days_must_be_dates() -> None:
    from clickstream_cli.main import main

    # When a day is not YYYY-MM-DD, Then argparse refuses it
    with pytest.raises(SystemExit) as exit_:
        main(["backfill", "--from", "yesterday", "--to", "2026-03-01", "--stack-name", "s"])
    assert exit_.value.code == 2
