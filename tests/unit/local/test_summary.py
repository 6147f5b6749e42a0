"""The demo's counters: read from the ledger and the warehouse, reconciled, and checked."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from clickstream_local.summary import (
    LedgerTotals,
    WarehouseFacts,
    build_summary,
    failed_checks,
    read_warehouse,
    warehouse_is_empty,
)


def _row(key: str, events_in: int, validated: int, duplicates: int = 0, **quarantined: int) -> dict:
    return {
        "source_key": key,
        "events_in": events_in,
        "validated": validated,
        "duplicates": duplicates,
        "quarantined": quarantined,
    }


def _facts(events: int, sessions: int = 10, **overrides) -> WarehouseFacts:
    values = {
        "events": events,
        "sessions": sessions,
        "pipeline_runs": 3,
        "events_without_session": 0,
        "duplicate_event_ids": 0,
    }
    values.update(overrides)
    return WarehouseFacts(**values)


def _summary(ledger: LedgerTotals, facts: WarehouseFacts, **kwargs) -> dict:
    args = {
        "generated_events": 95,
        "accepted_requests": 4,
        "accepted_events": ledger.events_in,
        "rejected_by_status": {400: 2, 401: 1},
        "ledger": ledger,
        "cross_object_duplicates": 4,
        "duplicate_conflicts": 1,
        "warehouse": facts,
        "executions": {"started": 3, "succeeded": 3},
    }
    args.update(kwargs)
    return build_summary(**args)


def test_ledger_totals_sum_rows_and_reasons_and_flag_rows_that_do_not_balance():
    # Given three ledger rows, one of which does not add up
    rows = [
        _row("raw/a", 50, 45, 2, schema_violation=3),
        _row("raw/b", 30, 28, 0, too_late=1, schema_violation=1),
        _row("raw/c", 20, 19, 0),
    ]
    # When they are summed
    totals = LedgerTotals.from_rows(rows)
    # Then the counters and reasons add up, and the unbalanced object is named
    assert (totals.objects, totals.events_in, totals.validated, totals.duplicates) == (3, 100, 92, 2)
    assert totals.quarantined == {"schema_violation": 4, "too_late": 1}
    assert totals.quarantined_total == 5
    assert totals.inconsistent_objects == ("raw/c",)


def test_redrive_rows_count_their_events_once_and_leave_only_what_is_still_quarantined():
    # Given a source object with 3 schema violations and 1 too-late event, and redrive objects of both reasons:
    # 2 of the 3 violations validated now (1 quarantined again), the late event a duplicate of a validated one
    q_key = "dt=2026-03-02/hr=10/obj"
    rows = [
        _row("raw/dt=2026-03-02/hr=10/obj", 20, 16, 0, schema_violation=3, too_late=1),
        _row(f"raw/redrive/{q_key}.schema_violation.jsonl", 3, 2, 0, schema_violation=1),
        _row(f"raw/redrive/{q_key}.too_late.jsonl", 1, 0, 1),
    ]
    # When they are summed
    totals = LedgerTotals.from_rows(rows)
    # Then events are received once, validated and duplicates count every row, and the quarantine holds only the
    # violation quarantined again: received = validated + (quarantined - redriven) + duplicates
    assert (totals.objects, totals.redrive_objects, totals.events_in) == (1, 2, 20)
    assert (totals.validated, totals.duplicates) == (18, 1)
    assert totals.redriven == {"schema_violation": 3, "too_late": 1} and totals.redriven_total == 4
    assert totals.quarantined == {"schema_violation": 1}
    assert totals.events_in == totals.validated + totals.quarantined_total + totals.duplicates
    assert totals.inconsistent_objects == ()


def test_summary_reconciles_when_every_sent_event_is_in_exactly_one_place():
    # Given 100 sent events: 5 quarantined and 2 duplicated inside objects, then 1 conflict and 4 duplicates
    # across objects found by the sessionizer, and the other 88 in the warehouse
    ledger = LedgerTotals.from_rows(
        [_row("raw/a", 60, 55, 2, schema_violation=3), _row("raw/b", 40, 38, 0, too_late=2)]
    )
    # When the summary is built
    summary = _summary(ledger, _facts(88))
    # Then conflicts count as quarantined, cross-object copies as duplicates, and it reconciles
    assert summary["sent_events"] == 100
    assert summary["validated_events"] == 93
    assert summary["quarantined_events"] == 6
    assert summary["quarantine_by_reason"] == {"duplicate_conflict": 1, "schema_violation": 3, "too_late": 2}
    assert summary["duplicate_events"] == 6
    assert summary["duplicates"] == {"in_object": 2, "cross_object": 4}
    assert summary["warehouse_events"] == 88
    assert summary["rejected_requests"] == 3
    assert summary["reconciles"] is True
    assert summary["ok"] is True and failed_checks(summary) == []


def test_summary_fails_when_an_event_is_lost_between_ledger_and_warehouse():
    # Given the same ledger but one event missing from the warehouse
    ledger = LedgerTotals.from_rows(
        [_row("raw/a", 60, 55, 2, schema_violation=3), _row("raw/b", 40, 38, 0, too_late=2)]
    )
    # When the summary is built
    summary = _summary(ledger, _facts(87))
    # Then it does not reconcile and says so with the numbers
    assert summary["reconciles"] is False and summary["ok"] is False
    assert any(line.startswith("reconciles: sent 100 = warehouse 87") for line in failed_checks(summary))


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"warehouse": _facts(88, events_without_session=2)}, "every_event_has_its_session"),
        ({"warehouse": _facts(88, duplicate_event_ids=1)}, "no_duplicate_event_ids"),
        (
            {"warehouse": _facts(88, aov_outside_order_values=[{"day": "2026-03-07", "aov": 33.1}])},
            "aov_within_order_values",
        ),
        ({"accepted_events": 101}, "accepted_events_reached_the_ledger"),
        ({"dead_lettered": 1}, "no_dead_letters"),
        ({"executions": {"started": 3, "succeeded": 2, "failed": 1}}, "pipeline_runs_succeeded"),
    ],
)
def test_each_integrity_check_fails_the_summary_on_its_own(change, failed):
    # Given a summary that would reconcile
    ledger = LedgerTotals.from_rows(
        [_row("raw/a", 60, 55, 2, schema_violation=3), _row("raw/b", 40, 38, 0, too_late=2)]
    )
    # When one fact is wrong
    summary = _summary(ledger, _facts(88), **change)
    # Then exactly that check fails and the summary is not ok
    assert [name for name, c in summary["checks"].items() if not c["ok"]] == [failed]
    assert summary["ok"] is False


def test_read_warehouse_counts_and_finds_events_without_sessions(tmp_path: Path):
    # Given a DuckDB warehouse built by the project's migrations, with an event whose session is missing
    from clickstream.adapters.warehouse import open_warehouse
    from clickstream.warehouse.migrate import migrate

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    assert warehouse_is_empty(url)
    with open_warehouse(url).connect() as conn:
        migrate(conn)
        conn.execute(
            "INSERT INTO sessions (session_id, anonymous_id, session_start, session_end, n_events, session_date)"
            " VALUES ('s1', 'a1', TIMESTAMPTZ '2026-03-02 10:00:00+00', TIMESTAMPTZ '2026-03-02 10:05:00+00', 2,"
            " DATE '2026-03-02')"
        )
        for event_id, session_id in (("e1", "s1"), ("e2", "s1"), ("e3", "s-missing")):
            conn.execute(
                "INSERT INTO events (event_id, anonymous_id, event_type, event_ts, session_id)"
                " VALUES (?, 'a1', 'page_view', TIMESTAMPTZ '2026-03-02 10:00:00+00', ?)",
                (event_id, session_id),
            )
    # When the demo reads it
    facts = read_warehouse(url)
    # Then it counts rows and finds the orphan event
    assert (facts.events, facts.sessions, facts.pipeline_runs) == (3, 1, 0)
    assert facts.events_without_session == 1
    assert facts.duplicate_event_ids == 0
    assert not warehouse_is_empty(url)


def test_read_warehouse_finds_duplicate_event_ids(tmp_path: Path):
    # Given a warehouse file whose events table (without a key) holds one event id twice
    path = tmp_path / "dups.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE events (event_id VARCHAR, session_id VARCHAR, anonymous_id VARCHAR, event_type VARCHAR,"
        " event_ts TIMESTAMPTZ, currency VARCHAR, transaction_id VARCHAR, value DOUBLE)"
    )
    con.execute("CREATE TABLE sessions (session_id VARCHAR, anonymous_id VARCHAR, session_date DATE)")
    con.execute("CREATE VIEW human_sessions AS SELECT * FROM sessions")
    con.execute("CREATE TABLE pipeline_runs (run_id VARCHAR)")
    con.execute(
        "CREATE TABLE daily_kpis (day DATE, sessions BIGINT, orders BIGINT, aov DECIMAL(18, 2), currency VARCHAR)"
    )
    con.execute("INSERT INTO events (event_id, session_id) VALUES ('e1', 's1'), ('e1', 's1'), ('e2', 's1')")
    con.execute("INSERT INTO sessions VALUES ('s1', 'a1', DATE '2026-03-02')")
    con.execute(
        "INSERT INTO daily_kpis VALUES (DATE '2026-03-03', 1, 0, NULL, 'USD'), (DATE '2026-03-02', 4, 0, NULL, 'USD')"
    )
    con.close()
    # When the demo reads it
    facts = read_warehouse(f"duckdb:///{path}")
    # Then the duplicate is found, and the KPIs come back by day
    assert facts.duplicate_event_ids == 1
    assert [str(k["day"]) for k in facts.kpis] == ["2026-03-02", "2026-03-03"]
