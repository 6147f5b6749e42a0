"""Right to erasure through the real stages: raw → validate → sessionize → load, then ``forget`` (both engines).

The person (user u-gone, who browsed on two devices, one of them before signing in) must leave no trace in the
warehouse, the lake's Parquet (validated, bucket state, run files), the quarantine or the raw objects; everyone
else stays exactly as they were; and a late event of theirs is quarantined as ``erased`` by the validate handler.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from clickstream.adapters.factory import Adapters
from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core import clock
from clickstream.core.config import get_settings
from clickstream.core.ids import id_hash
from clickstream.operations.erasure import LAKE_PARQUET_PREFIXES, Person, forget
from clickstream.pipeline.load import LoadInput, run_load
from clickstream.pipeline.plan import PlanInput, run_plan
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.validate import step as service
from clickstream.validate.step import validate_object
from clickstream.warehouse.kpis import all_days, recompute_daily_kpis
from clickstream.warehouse.snapshot import table_digest
from tests.unit.validate.helpers import event, load_validate_handler, record, s3_notification, sqs_event

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
GONE = {"dev-gone-1", "dev-gone-2"}


def _raw_objects() -> dict[str, bytes]:
    """Two raw objects (one gzip) mixing the person's records with two other visitors'."""
    at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
    first = [
        record(
            [event("page_view", at=at(0)), event("view_item", at=at(1))],
            received_at=at(1),
            anonymous_id="dev-gone-1",
        ),
        record([event("page_view", at=at(2))], received_at=at(2), anonymous_id="keep-a"),
        record(
            [event("page_view", at=at(3)), event("purchase", at=at(4), transaction_id="T-gone")],
            received_at=at(4),
            anonymous_id="dev-gone-1",
            user_id="u-gone",
        ),
        # a bad event of the person: quarantined with its envelope
        record([{"event_id": "bad-1", "event_type": 42}], received_at=at(5), anonymous_id="dev-gone-1"),
        record(
            [event("purchase", at=at(6), transaction_id="T-keep")],
            received_at=at(6),
            anonymous_id="keep-b",
            user_id="u-keep",
        ),
    ]
    second = [
        record(
            [event("page_view", at=at(70))], received_at=at(70), anonymous_id="dev-gone-2", user_id="u-gone"
        ),
        record(
            [event("page_view", at=at(71)), event("view_item", at=at(72))],
            received_at=at(72),
            anonymous_id="keep-a",
        ),
    ]

    def lines(records):
        return ("\n".join(json.dumps(r, separators=(",", ":")) for r in records) + "\n").encode()

    return {
        "raw/dt=2026-03-02/hr=10/stream-1": lines(first),
        "raw/dt=2026-03-02/hr=11/stream-2": gzip.compress(lines(second), mtime=0),
    }


@pytest.fixture
def stores(aws):
    settings = get_settings()
    return (
        settings,
        S3ObjectStore(settings.raw_bucket),
        S3ObjectStore(settings.lake_bucket),
        DynamoStateStore(settings.state_table),
    )


def _run_pipeline(stores, warehouse, run_id="run-1"):
    settings, raw, lake, state = stores
    service._tombstone_cache.clear()  # a fresh process: tombstones read now
    for key in sorted(raw.list_keys("raw/")):
        validate_object(key, settings=settings, raw_store=raw, lake_store=lake, state=state)
    plan = run_plan(
        PlanInput(
            execution_id=f"arn:exec:{run_id}", execution_name=run_id, input={"as_of": "2030-01-01T00:00:00Z"}
        ),
        settings,
        Adapters(settings, state=state, lake=lake),
    )
    buckets = [sessionize_bucket(SessionizeInput(run_id=run_id, bucket=b), lake) for b in plan.buckets]
    loaded = run_load(
        LoadInput(execution_id=plan.execution_id, plan=plan, buckets=buckets),
        settings,
        Adapters(settings, lake=lake, warehouse=warehouse),
    )
    with warehouse.connect() as conn:
        recompute_daily_kpis(conn, loaded.affected_days, settings.store_currency)


def _lake_rows(lake, tmp: Path) -> dict[str, list[dict]]:
    """Every Parquet object of the lake's data prefixes, as rows."""
    out = {}
    con = duckdb.connect()
    for prefix in LAKE_PARQUET_PREFIXES:
        for i, key in enumerate(sorted(lake.list_keys(prefix))):
            if key.endswith(".parquet"):
                path = lake.download(key, tmp / "lake" / prefix.strip("/") / f"{i}.parquet")
                cur = con.execute(f"SELECT * FROM read_parquet('{path}')")
                names = [d[0] for d in cur.description]
                out[key] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return out


def _raw_records(raw) -> dict[str, list[dict]]:
    out = {}
    for key in sorted(raw.list_keys("raw/")):
        data = raw.get_bytes(key)
        data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        out[key] = [json.loads(line) for line in data.splitlines() if line.strip()]
    return out


def _is_gone(row: dict) -> bool:
    return row.get("anonymous_id") in GONE or row.get("user_id") == "u-gone"


def _warehouse_rows(warehouse) -> dict[str, list[tuple]]:
    with warehouse.connect() as conn:
        return {
            t: sorted(conn.query(f"SELECT anonymous_id, user_id FROM {t}"), key=repr)
            for t in ("events", "sessions", "users")
        }


def test_forget_a_user_leaves_no_trace_and_keeps_everyone_else(stores, warehouse, tmp_path):
    settings, raw, lake, state = stores
    for key, body in _raw_objects().items():
        raw.put_bytes(key, body)
    clock.set_clock(clock.SimulatedClock(T0 + timedelta(hours=2)))
    try:
        _run_pipeline(stores, warehouse)
        before_lake = _lake_rows(lake, tmp_path / "before")
        before_raw = _raw_records(raw)
        with warehouse.connect() as conn:
            kpis_before = conn.query(
                "SELECT day, sessions, visitors, signed_in_users, orders FROM daily_kpis"
            )
        assert any(
            _is_gone(r) for rows in before_lake.values() for r in rows
        )  # the person is there to begin with
        assert any(a in GONE for a, _ in _warehouse_rows(warehouse)["events"])
        quarantine_keys = sorted(lake.list_keys("quarantine/"))
        assert any(b"dev-gone-1" in lake.get_bytes(k) for k in quarantine_keys)

        # When the user is forgotten
        report = forget(
            Person("user_id", "u-gone"), state=state, lake=lake, raw=raw, warehouse=warehouse, currency="USD"
        )

        # Then both devices were found and tombstoned (hashes only), and the counts say what was removed
        assert report.visitors == 2
        assert state.tombstones() >= {id_hash("u-gone"), id_hash("dev-gone-1"), id_hash("dev-gone-2")}
        assert report.warehouse == {"events": 5, "sessions": 2, "users": 2}
        assert report.raw.objects == 2 and report.raw.rows == 6
        assert report.lake["validated/"].objects == 2
        assert report.lake["quarantine/"].rows == 1
        # The warehouse holds nobody of the person, and the others' rows are all there
        after = _warehouse_rows(warehouse)
        for table, rows in after.items():
            assert not [r for r in rows if r[0] in GONE or r[1] == "u-gone"], table
        assert {a for a, _ in after["events"]} == {"keep-a", "keep-b"}
        assert len(after["events"]) == 4
        # KPIs were recomputed: they equal a full recompute, and the person's order is gone
        with warehouse.connect() as conn:
            kpis_after = conn.query("SELECT day, sessions, visitors, signed_in_users, orders FROM daily_kpis")
            digest = table_digest(conn, "daily_kpis")
            recompute_daily_kpis(conn, all_days(conn), "USD")
            assert table_digest(conn, "daily_kpis") == digest
        assert kpis_before == [(T0.date(), 5, 4, 2, 2)] and kpis_after == [(T0.date(), 3, 2, 1, 1)]
        # The lake's Parquet has no row of the person; every other row is unchanged
        after_lake = _lake_rows(lake, tmp_path / "after")
        assert set(after_lake) == set(before_lake)
        for key, rows in before_lake.items():
            assert after_lake[key] == [r for r in rows if not _is_gone(r)], key
        # No quarantine line names the person
        assert not any(
            b"dev-gone" in lake.get_bytes(k) or b"u-gone" in lake.get_bytes(k) for k in quarantine_keys
        )
        # The raw objects keep every other record as it was, the person's records hollowed out in place
        after_raw = _raw_records(raw)
        assert gzip.decompress(raw.get_bytes("raw/dt=2026-03-02/hr=11/stream-2"))  # still gzip
        for key, records in before_raw.items():
            assert len(after_raw[key]) == len(records)
            for old, new in zip(records, after_raw[key], strict=True):
                if _is_gone(old):
                    assert new == {
                        "schema": old["schema"],
                        "request_id": old["request_id"],
                        "received_at": old["received_at"],
                        "events": [],
                    }
                else:
                    assert new == old
        raw_text = b"".join(
            gzip.decompress(d) if d[:2] == b"\x1f\x8b" else d for d in (raw.get_bytes(k) for k in after_raw)
        )
        assert b"dev-gone" not in raw_text and b"u-gone" not in raw_text

        # And forgetting again changes nothing
        again = forget(
            Person("user_id", "u-gone"), state=state, lake=lake, raw=raw, warehouse=warehouse, currency="USD"
        )
        assert sum(again.warehouse.values()) == 0 and again.raw.objects == 0
        assert all(p.objects == 0 for p in again.lake.values())
        assert _lake_rows(lake, tmp_path / "again") == after_lake

        # And re-validating the rewritten raw objects gives the other visitors' rows the same identity (source_line)
        service._tombstone_cache.clear()
        for key in sorted(raw.list_keys("raw/")):
            validate_object(key, settings=settings, raw_store=raw, lake_store=lake, state=state)
        revalidated = _lake_rows(lake, tmp_path / "revalidated")
        for key in (k for k in after_lake if k.startswith("validated/")):
            assert revalidated[key] and [(r["event_id"], r["source_line"]) for r in revalidated[key]] == [
                (r["event_id"], r["source_line"]) for r in after_lake[key]
            ]
    finally:
        clock.set_clock(None)


def test_a_late_event_of_a_forgotten_visitor_is_quarantined_as_erased(stores, warehouse, tmp_path):
    settings, raw, lake, state = stores
    # Given a forgotten anonymous visitor
    report = forget(Person("anonymous_id", "dev-late"), state=state, lake=lake, raw=raw, warehouse=warehouse)
    assert report.tombstones == 1
    # When a late event of theirs arrives and the real validate handler takes the S3 notification
    key = "raw/dt=2026-03-02/hr=12/stream-late"
    raw.put_bytes(key, (json.dumps(record([event("page_view")], anonymous_id="dev-late")) + "\n").encode())
    service._tombstone_cache.clear()  # a new process (or the tombstone TTL elapsed)
    handler = load_validate_handler()
    from tests.fakes.context import lambda_context

    answer = handler.lambda_handler(
        sqs_event(s3_notification(settings.raw_bucket, key)), lambda_context("ValidateFunction")
    )
    # Then it is quarantined as erased, keeping only the id's hash
    assert answer == {"batchItemFailures": []}
    ledger = state.get_ledger(key)
    assert ledger["validated"] == 0 and ledger.get("validated_key") is None
    lines = [json.loads(line) for line in lake.get_bytes(ledger["quarantine_key"]).splitlines()]
    assert [q["reason"] for q in lines] == ["erased"]
    assert lines[0]["id_hash"] == id_hash("dev-late") and lines[0]["event"] is None
    assert b"dev-late" not in lake.get_bytes(ledger["quarantine_key"])


def test_forget_cli_on_a_warehouse_only(tmp_path, capsys):
    from clickstream.adapters.warehouse import open_warehouse
    from clickstream.warehouse.loader import RunRecord, load_run
    from clickstream.warehouse.migrate import migrate
    from clickstream_cli.main import main
    from tests.unit.warehouse.factory import store_day, write_run

    # Given a local warehouse holding the store day
    url = f"duckdb://{tmp_path}/warehouse.duckdb"
    wh = open_warehouse(url)
    events, sessions = store_day()
    with wh.connect() as conn:
        migrate(conn)
        load_run(conn, write_run(tmp_path / "r", events, sessions), RunRecord("r1"))
        recompute_daily_kpis(conn, all_days(conn), "USD")
    # When visitor A is forgotten through the command line (warehouse only)
    code = main(["forget", "--anonymous-id", "A", "--warehouse", url, "--warehouse-only"])
    # Then A's rows are gone, the KPIs lost A's sessions, and the output counts per place without the id
    assert code == 0
    out = capsys.readouterr().out
    assert "events 6, sessions 2, users 1" in out and "tombstones: skipped" in out
    assert "A " not in out.replace("sha256", "")
    with wh.connect() as conn:
        assert conn.query("SELECT count(*) FROM events WHERE anonymous_id = 'A'") == [(0,)]
        assert conn.query("SELECT sessions, visitors FROM daily_kpis") == [(3, 2)]
