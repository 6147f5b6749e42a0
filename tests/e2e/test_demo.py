"""``clickstream demo`` end to end, in-process: generator → ingest → Firehose/S3/SQS → validate → the ASL under
moto (Plan, Sessionize, Load, Aggregate, Commit) → DuckDB warehouse, report and summary."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from clickstream_cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("demo") / "out"
    code = main(
        [
            "demo",
            "--events",
            "3000",
            "--days",
            "2",
            "--seed",
            "11",
            "--buckets",
            "2",
            "--step-hours",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    return code, out


def test_demo_exits_zero_and_writes_its_three_outputs(demo):
    # Given a small demo run through the command line
    code, out = demo
    # Then it succeeded and wrote the warehouse, the report and the summary
    assert code == 0
    assert (out / "warehouse.duckdb").is_file()
    assert (out / "summary.json").is_file()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in report and 'src="http' not in report and 'href="http' not in report


def test_counters_reconcile_and_show_quarantine_and_duplicates(demo):
    # Given the summary the demo wrote
    _, out = demo
    summary = json.loads((out / "summary.json").read_text())
    # Then every sent event is in exactly one place
    assert summary["sent_events"] == (
        summary["warehouse_events"] + summary["quarantined_events"] + summary["duplicate_events"]
    )
    assert summary["reconciles"] is True and summary["ok"] is True
    assert all(check["ok"] for check in summary["checks"].values())
    # And the traffic's trouble shows: quarantined events with reasons, duplicates, rejected requests
    assert summary["quarantined_events"] > 0 and summary["duplicate_events"] > 0
    assert {"schema_violation", "too_late"} <= set(summary["quarantine_by_reason"])
    assert summary["rejected_requests"] > 0
    # And retries mean more events were sent than the shoppers generated
    assert summary["generated_events"] >= 3000
    assert summary["sent_events"] > summary["generated_events"]
    assert summary["warehouse_sessions"] > 0 and summary["pipeline_runs"] > 0
    assert summary["pipeline_executions"]["started"] == summary["pipeline_executions"]["succeeded"] >= 48


def test_warehouse_has_every_event_in_its_session_and_each_event_once(demo):
    # Given the warehouse file the demo left
    _, out = demo
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        orphans = con.execute(
            "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = e.session_id)"
        ).fetchone()[0]
        dup_ids = con.execute(
            "SELECT count(*) FROM (SELECT event_id FROM events GROUP BY event_id HAVING count(*) > 1)"
        ).fetchone()[0]
        n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        session_events = con.execute("SELECT sum(n_events) FROM sessions").fetchone()[0]
        bots = con.execute("SELECT count(*) FROM sessions WHERE is_bot").fetchone()[0]
        kpi_days = con.execute("SELECT count(*) FROM daily_kpis").fetchone()[0]
    finally:
        con.close()
    summary = json.loads((out / "summary.json").read_text())
    # Then no event lacks its session, no event id is stored twice, and sessions count exactly the events
    assert orphans == 0 and dup_ids == 0
    assert n_events == summary["warehouse_events"] == session_events
    # And bots are kept (flagged), and the two simulated days have KPIs
    assert bots > 0
    assert kpi_days >= 2


def _warehouse_rows(path: Path) -> tuple[list[tuple], list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        events = con.execute("SELECT event_id, session_id FROM events ORDER BY event_id").fetchall()
        sessions = con.execute(
            "SELECT session_id, anonymous_id, user_id, session_start, session_end, n_events, revenue"
            " FROM sessions ORDER BY session_id"
        ).fetchall()
    finally:
        con.close()
    return events, sessions


def test_hourly_runs_give_the_warehouse_of_one_full_run(tmp_path: Path):
    # Given the same simulated day run hourly (24 incremental runs, late events included) and in one 24 h step
    args = ["demo", "--events", "1200", "--days", "1", "--seed", "4", "--buckets", "2", "--no-progress"]
    assert main([*args, "--step-hours", "1", "--out", str(tmp_path / "hourly")]) == 0
    assert main([*args, "--step-hours", "24", "--out", str(tmp_path / "full")]) == 0
    # When both warehouses are read
    hourly = _warehouse_rows(tmp_path / "hourly" / "warehouse.duckdb")
    full = _warehouse_rows(tmp_path / "full" / "warehouse.duckdb")
    # Then every event sits in the same session, and the sessions are identical
    assert hourly[0] and hourly == full
