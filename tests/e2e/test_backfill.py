"""``clickstream backfill --local``: a simulated day run hourly, then back-filled through the state machine's
Distributed Map into a fresh warehouse, which must hold exactly what the incremental runs loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clickstream_cli.main import main

pytestmark = pytest.mark.slow

ARGS = [
    "backfill",
    "--local",
    "--events",
    "1200",
    "--days",
    "1",
    "--seed",
    "4",
    "--step-hours",
    "1",
    "--no-progress",
]


@pytest.mark.parametrize("revalidate", [False, True], ids=["from-validated-lake", "from-raw"])
def test_a_backfill_leaves_the_warehouse_the_incremental_runs_produced(
    tmp_path: Path, revalidate: bool
) -> None:
    # Given a simulated day, run hourly (24 incremental runs, late events included)
    out = tmp_path / "out"
    # When every day is then back-filled into a fresh warehouse (from raw: re-validated through the queue first)
    code = main([*ARGS, "--out", str(out), *(["--revalidate"] if revalidate else [])])
    # Then the back-fill succeeded through the Distributed Map, and both warehouses hold the same rows
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0, summary.get("checks")
    backfill = summary["backfill"]
    assert backfill["status"] == "SUCCEEDED" and backfill["matches"] is True
    assert summary["checks"]["backfill_matches"]["ok"] is True
    assert (backfill["revalidated_objects"] > 0) is revalidate
    # And the counters still reconcile: re-validation rewrote ledger rows, it did not count anything twice
    assert summary["reconciles"] is True and summary["warehouse_events"] > 0
    assert (out / "backfill" / "warehouse.duckdb").is_file()
