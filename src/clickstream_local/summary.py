"""The demo's counters and checks, read from the ledger and the warehouse (never from the generator's intentions).

``sent_events`` (events inside accepted requests, retries included) is the ledger's ``events_in``; every one of
them must end in exactly one place:

    sent_events == warehouse_events + quarantined_events + duplicate_events

where ``quarantined_events`` = the ledger's quarantined events + the sessionizer's cross-object
``duplicate_conflict`` rows, and ``duplicate_events`` = the ledger's in-object duplicates + the sessionizer's
cross-object duplicates. Only ``generated_events`` comes from the generator (what the simulated shoppers did).

A re-drive (``clickstream quarantine redrive``) validates quarantined events again as a redrive object with its own
ledger row (``operations.quarantine``): its events were already received, and counted as quarantined, by their source
object. So ``sent_events`` sums source objects only, ``validated_events`` and duplicates every row, and the
quarantine counts what is *still* quarantined: every row's quarantined events minus the redriven ones (by the
reason they were re-driven for). Received = validated + (quarantined - redriven) + duplicates, each event once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DUPLICATE_CONFLICT = "duplicate_conflict"


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over the ledger rows (one row per raw object; redrive objects apart, each event counted once)."""

    objects: int = 0  # source objects (redrive objects not included)
    events_in: int = 0  # events received: source objects' events_in
    validated: int = 0  # every row's, redrive objects' included
    duplicates: int = 0  # every row's in-object duplicates
    quarantined: dict[str, int] = field(default_factory=dict)  # still quarantined, by reason
    inconsistent_objects: tuple[str, ...] = ()  # rows whose own counts do not add up
    redrive_objects: int = 0
    redriven: dict[str, int] = field(default_factory=dict)  # events re-driven, by the reason they were for

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def redriven_total(self) -> int:
        return sum(self.redriven.values())

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> LedgerTotals:
        from clickstream.operations.quarantine import is_redrive, redrive_origin

        objects = events_in = validated = duplicates = redrive_objects = 0
        quarantined: dict[str, int] = {}
        redriven: dict[str, int] = {}
        inconsistent: list[str] = []
        for row in rows:
            source_key = str(row.get("source_key", "?"))
            row_in = int(row.get("events_in") or 0)
            row_valid = int(row.get("validated") or 0)
            row_dups = int(row.get("duplicates") or 0)
            reasons = row.get("quarantined") or {}
            row_quarantined = 0
            for reason, n in reasons.items():
                quarantined[reason] = quarantined.get(reason, 0) + int(n)
                row_quarantined += int(n)
            if is_redrive(source_key):
                # Its events were received, and quarantined, by their source object: no longer quarantined there.
                origin = redrive_origin(source_key)
                reason = origin[1] if origin is not None else "redriven"
                redrive_objects += 1
                redriven[reason] = redriven.get(reason, 0) + row_in
                quarantined[reason] = quarantined.get(reason, 0) - row_in
            else:
                objects += 1
                events_in += row_in
            validated += row_valid
            duplicates += row_dups
            if row_in != row_valid + row_quarantined + row_dups:
                inconsistent.append(source_key)
        return cls(
            objects,
            events_in,
            validated,
            duplicates,
            {r: n for r, n in sorted(quarantined.items()) if n},
            tuple(inconsistent),
            redrive_objects,
            dict(sorted(redriven.items())),
        )


@dataclass(frozen=True)
class WarehouseFacts:
    """What the warehouse holds after the demo."""

    events: int
    sessions: int
    pipeline_runs: int
    events_without_session: int  # events whose session_id is null or not in sessions
    duplicate_event_ids: int  # event_ids that appear more than once in events
    kpis: list[dict[str, Any]] = field(default_factory=list)  # daily_kpis, by day
    # daily_kpis days whose AOV is outside the range of that day's order values (warehouse.kpis)
    aov_outside_order_values: list[dict[str, Any]] = field(default_factory=list)
    run_costs: dict[str, int] = field(default_factory=dict)  # RUN_COST_COLUMNS summed over pipeline_runs


# What the runs read and wrote (pipeline_runs), summed over the demo's runs for its summary.
RUN_COST_COLUMNS = (
    "events_arrived",
    "events_loaded",
    "sessions_loaded",
    "state_rows_read",
    "state_bytes_read",
    "index_rows_read",
    "frozen_rows_read",
    "state_rows_written",
    "thawed_slices",
)


def read_warehouse(url: str) -> WarehouseFacts:
    """Counts and integrity checks over the warehouse at ``url`` (DuckDB file or PostgreSQL)."""
    from clickstream.adapters.warehouse import open_warehouse
    from clickstream.warehouse.kpis import aov_outside_order_values

    with open_warehouse(url).connect() as conn:

        def scalar(sql: str) -> int:
            return int(conn.query(sql)[0][0] or 0)

        return WarehouseFacts(
            events=scalar("SELECT count(*) FROM events"),
            sessions=scalar("SELECT count(*) FROM sessions"),
            pipeline_runs=scalar("SELECT count(*) FROM pipeline_runs"),
            events_without_session=scalar(
                "SELECT count(*) FROM events e LEFT JOIN sessions s ON s.session_id = e.session_id"
                " WHERE s.session_id IS NULL"
            ),
            duplicate_event_ids=scalar(
                "SELECT count(*) FROM (SELECT event_id FROM events GROUP BY event_id HAVING count(*) > 1) d"
            ),
            kpis=conn.query_dicts("SELECT * FROM daily_kpis ORDER BY day"),
            aov_outside_order_values=aov_outside_order_values(conn),
            run_costs=_sum_run_costs(conn.query_dicts("SELECT * FROM pipeline_runs")),
        )


def _sum_run_costs(runs: list[dict[str, Any]]) -> dict[str, int]:
    """RUN_COST_COLUMNS summed over the runs (a column a warehouse before migration 0008 lacks sums to 0)."""
    return {c: sum(int(r.get(c) or 0) for r in runs) for c in RUN_COST_COLUMNS}


def warehouse_is_empty(url: str) -> bool:
    """True when the warehouse has no ``events`` table yet, or an empty one."""
    from clickstream.adapters.warehouse import open_warehouse

    with open_warehouse(url).connect() as conn:
        try:
            return int(conn.query("SELECT count(*) FROM events")[0][0]) == 0
        except Exception:  # no table yet: a fresh database (each engine raises its own error type)
            return True


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def build_summary(
    *,
    generated_events: int,
    accepted_requests: int,
    accepted_events: int,
    rejected_by_status: Mapping[int, int],
    ledger: LedgerTotals,
    cross_object_duplicates: int,
    duplicate_conflicts: int,
    warehouse: WarehouseFacts,
    executions: Mapping[str, int],
    dead_lettered: int = 0,
) -> dict[str, Any]:
    """The ``summary.json`` document: counters, quarantine by reason, and every check with its verdict."""
    quarantine_by_reason = dict(ledger.quarantined)
    if duplicate_conflicts:
        quarantine_by_reason[DUPLICATE_CONFLICT] = (
            quarantine_by_reason.get(DUPLICATE_CONFLICT, 0) + duplicate_conflicts
        )
    quarantined_events = ledger.quarantined_total + duplicate_conflicts
    duplicate_events = ledger.duplicates + cross_object_duplicates
    sent_events = ledger.events_in
    accounted = warehouse.events + quarantined_events + duplicate_events
    reconciles = sent_events == accounted

    checks = [
        Check(
            "reconciles",
            reconciles,
            f"sent {sent_events} = warehouse {warehouse.events} + quarantined {quarantined_events}"
            f" + duplicates {duplicate_events} ({accounted})",
        ),
        Check(
            "accepted_events_reached_the_ledger",
            accepted_events == sent_events,
            f"{accepted_events} events in accepted requests, {sent_events} in the ledger",
        ),
        Check(
            "ledger_rows_balance",
            not ledger.inconsistent_objects,
            "every object: in = validated + quarantined + duplicates"
            if not ledger.inconsistent_objects
            else f"unbalanced: {', '.join(ledger.inconsistent_objects[:5])}",
        ),
        Check(
            "every_event_has_its_session",
            warehouse.events_without_session == 0,
            f"{warehouse.events_without_session} events without a session",
        ),
        Check(
            "no_duplicate_event_ids",
            warehouse.duplicate_event_ids == 0,
            f"{warehouse.duplicate_event_ids} event ids stored more than once",
        ),
        Check(
            "aov_within_order_values",
            not warehouse.aov_outside_order_values,
            f"every day's AOV lies between its least and greatest order value ({len(warehouse.kpis)} days)"
            if not warehouse.aov_outside_order_values
            else "outside: "
            + ", ".join(
                f"{r.get('day')} AOV {r.get('aov')} vs orders {r.get('lowest')}..{r.get('highest')}"
                for r in warehouse.aov_outside_order_values[:5]
            ),
        ),
        Check(
            "no_dead_letters",
            dead_lettered == 0,
            f"{dead_lettered} raw-object notifications in the dead-letter queue",
        ),
        Check(
            "pipeline_runs_succeeded",
            executions.get("failed", 0) == 0,
            f"{executions.get('succeeded', 0)} of {executions.get('started', 0)} executions succeeded",
        ),
    ]
    return {
        "generated_events": generated_events,
        "sent_events": sent_events,
        "accepted_requests": accepted_requests,
        "rejected_requests": sum(rejected_by_status.values()),
        "rejected_by_status": {str(k): v for k, v in sorted(rejected_by_status.items())},
        "raw_objects": ledger.objects,
        "redrive_objects": ledger.redrive_objects,
        "redriven_events": ledger.redriven_total,
        "validated_events": ledger.validated,
        "quarantined_events": quarantined_events,
        "quarantine_by_reason": dict(sorted(quarantine_by_reason.items())),
        "duplicate_events": duplicate_events,
        "duplicates": {"in_object": ledger.duplicates, "cross_object": cross_object_duplicates},
        "warehouse_events": warehouse.events,
        "warehouse_sessions": warehouse.sessions,
        "pipeline_runs": warehouse.pipeline_runs,
        "pipeline_executions": dict(executions),
        "run_costs": run_costs(warehouse.run_costs),
        "reconciles": reconciles,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        "ok": all(c.ok for c in checks),
    }


def run_costs(totals: Mapping[str, int]) -> dict[str, Any]:
    """What the runs read and wrote, summed, with rows loaded per event arrived (1.0: each arrival loaded once)."""
    out: dict[str, Any] = {c: int(totals.get(c, 0)) for c in RUN_COST_COLUMNS}
    arrived = out["events_arrived"]
    out["loaded_per_arrived"] = round(out["events_loaded"] / arrived, 3) if arrived else None
    return out


def failed_checks(summary: Mapping[str, Any]) -> list[str]:
    """Names and details of the checks a summary failed."""
    return [f"{name}: {c['detail']}" for name, c in summary["checks"].items() if not c["ok"]]
