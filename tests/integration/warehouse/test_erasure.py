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
from clickstream.warehouse.kpis import all_days, kpi_totals, recompute_daily_kpis
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


# -- a device shared by two users -------------------------------------------------------------------------------
SHARED, OWN, OTHER = "dev-family", "dev-a-phone", "dev-other"
USER_A, USER_B = "u-a", "u-b"


def _shared_device_objects() -> dict[str, bytes]:
    """Device dev-family carries two users: A signs in and browses (the session's first event), then B, in the
    same session; an anonymous event follows in that session. Later: an anonymous session and B's purchase there.
    A also has a phone of their own (anonymous browsing, then signed in), and another visitor buys too."""
    at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731

    def rec(events, minute, anonymous_id, user_id=None):
        return record(events, received_at=at(minute), anonymous_id=anonymous_id, user_id=user_id)

    first = [
        rec([event("page_view", at=at(0))], 0, SHARED, USER_A),
        rec([event("page_view", at=at(1)), event("view_item", at=at(2))], 2, SHARED, USER_B),
        rec([event("add_to_cart", at=at(3))], 3, SHARED, USER_B),
        rec([event("page_view", at=at(4))], 4, SHARED),  # anonymous, in the session A signed into
        rec([event("page_view", at=at(5))], 5, OWN),
        rec([event("purchase", at=at(6), transaction_id="T-A", value=500.0)], 6, OWN, USER_A),
        rec([event("purchase", at=at(7), transaction_id="T-K", value=80.0)], 7, OTHER),
    ]
    second = [
        rec([event("page_view", at=at(180))], 180, SHARED),  # anonymous, a session nobody signed into
        rec([event("purchase", at=at(300), transaction_id="T-B", value=120.0)], 300, SHARED, USER_B),
    ]

    def lines(records):
        return ("\n".join(json.dumps(r, separators=(",", ":")) for r in records) + "\n").encode()

    return {
        "raw/dt=2026-03-02/hr=10/stream-1": lines(first),
        "raw/dt=2026-03-02/hr=15/stream-2": gzip.compress(lines(second), mtime=0),
    }


def _rows(warehouse, sql: str) -> list[tuple]:
    with warehouse.connect() as conn:
        return sorted(map(tuple, conn.query(sql)), key=repr)


def _validated_files(lake, tmp: Path) -> list[Path]:
    return [
        lake.download(key, tmp / f"v{i}.parquet")
        for i, key in enumerate(sorted(lake.list_keys("validated/")))
        if key.endswith(".parquet")
    ]


def test_forget_a_user_of_a_shared_device_keeps_the_other_user(stores, warehouse, tmp_path):
    from clickstream.core.schema import SESSION_COLUMNS
    from clickstream.sessionize.files import sessionize_files

    settings, raw, lake, state = stores
    for key, body in _shared_device_objects().items():
        raw.put_bytes(key, body)
    clock.set_clock(clock.SimulatedClock(T0 + timedelta(hours=7)))
    try:
        _run_pipeline(stores, warehouse)
        b_events = "SELECT event_id, event_type, event_ts, user_id FROM events WHERE user_id = 'u-b'"
        before_b = _rows(warehouse, b_events)
        anonymous_later = _rows(
            warehouse,
            "SELECT event_id FROM events WHERE anonymous_id = 'dev-family'"
            " AND user_id IS NULL AND event_ts > TIMESTAMPTZ '2026-03-02 12:00:00+00'",
        )
        # Given one session on the shared device carrying both users (A first, B last: the session is B's)
        assert _rows(
            warehouse,
            "SELECT user_id, n_events FROM sessions WHERE anonymous_id = 'dev-family' ORDER BY session_start",
        ) == sorted([("u-b", 5), (None, 1), ("u-b", 1)], key=repr)
        # And each of its events keeps the user id its request carried (the session's user_id is the latest)
        assert _rows(
            warehouse,
            "SELECT e.user_id, count(*) FROM events e JOIN sessions s ON s.session_id = e.session_id"
            " WHERE s.anonymous_id = 'dev-family' AND s.n_events = 5 GROUP BY e.user_id",
        ) == sorted([(USER_A, 1), (USER_B, 3), (None, 1)], key=repr)
        # And the users table does not merge the two users through the device: one row per (device, user)
        assert _rows(warehouse, "SELECT anonymous_id, user_id FROM users") == sorted(
            [(SHARED, USER_A), (SHARED, USER_B), (OWN, USER_A)], key=repr
        )
        with warehouse.connect() as conn:
            assert kpi_totals(conn, "USD")["signed_in_users"] == 2

        # When user A is forgotten everywhere
        report = forget(
            Person("user_id", USER_A), state=state, lake=lake, raw=raw, warehouse=warehouse, currency="USD"
        )

        # Then A's own phone is erased whole and tombstoned; the shared device is kept and not tombstoned
        assert (report.visitors, report.shared_devices) == (1, 1)
        assert id_hash(USER_A) in state.tombstones() and id_hash(OWN) in state.tombstones()
        assert id_hash(SHARED) not in state.tombstones()
        # A's event and the anonymous event of A's session are gone from the shared device; nothing else of it
        assert report.warehouse == {"events": 4, "sessions": 4, "users": 2, "sessions_recomputed": 3}
        assert _rows(
            warehouse, "SELECT count(*) FROM events WHERE user_id = 'u-a' OR anonymous_id = 'dev-a-phone'"
        ) == [(0,)]
        assert _rows(warehouse, b_events) == before_b
        assert (
            _rows(
                warehouse, "SELECT event_id FROM events WHERE anonymous_id = 'dev-family' AND user_id IS NULL"
            )
            == anonymous_later
        )
        # B's session is recomputed from what it keeps: it starts at B's first event, and it is B's alone
        sessions = _rows(
            warehouse,
            "SELECT user_id, n_events, session_start FROM sessions WHERE anonymous_id = 'dev-family'",
        )
        assert sorted(((u, n) for u, n, _ in sessions), key=repr) == sorted(
            [("u-b", 3), (None, 1), ("u-b", 1)], key=repr
        )
        assert min(s for _, _, s in sessions) == T0 + timedelta(minutes=1)
        assert _rows(
            warehouse,
            "SELECT count(*) FROM events e LEFT JOIN sessions s ON s.session_id = e.session_id"
            " WHERE s.session_id IS NULL",
        ) == [(0,)]
        assert _rows(warehouse, "SELECT anonymous_id, user_id FROM users") == [(SHARED, USER_B)]
        # And the warehouse's sessions are what the rule gives over what the lake keeps (a full recompute)
        out = tmp_path / "recompute"
        sessionize_files(_validated_files(lake, tmp_path / "validated"), out)
        names = ", ".join(n for n, _ in SESSION_COLUMNS)
        with warehouse.connect() as conn:
            stored = sorted(map(tuple, conn.query(f"SELECT {names} FROM sessions")), key=repr)
        expected = sorted(
            map(
                tuple,
                duckdb.connect()
                .execute(f"SELECT {names} FROM read_parquet('{out}/sessions.parquet')")
                .fetchall(),
            ),
            key=repr,
        )
        assert [(r[0], r[1], r[2], r[4]) for r in stored] == [(r[0], r[1], r[2], r[4]) for r in expected]
        # And the lake's bucket state holds the same sessions and nothing of A
        state_rows = _lake_rows(lake, tmp_path / "after")
        for key, rows in state_rows.items():
            assert not [r for r in rows if r.get("user_id") == USER_A or r.get("anonymous_id") == OWN], key
        state_sessions = {
            r["session_id"] for k, rows in state_rows.items() if k.startswith("sessions/") for r in rows
        }
        assert state_sessions == {r[0] for r in stored}
        # And the KPIs were recomputed: they equal a full recompute, A's order is gone, B's and K's stay
        with warehouse.connect() as conn:
            digest = table_digest(conn, "daily_kpis")
            recompute_daily_kpis(conn, all_days(conn), "USD")
            assert table_digest(conn, "daily_kpis") == digest
            kpis = conn.query_dicts("SELECT orders, gross_revenue, signed_in_users FROM daily_kpis")[0]
        assert (kpis["orders"], float(kpis["gross_revenue"]), kpis["signed_in_users"]) == (2, 200.0, 1)
        # And no raw record carries A's user id or A's phone any more; B's records are as they were
        raw_text = b"".join(_decode_all(raw))
        assert b'"u-a"' not in raw_text and OWN.encode() not in raw_text and raw_text.count(b'"u-b"') == 3

        # When A's, B's and an anonymous event arrive later on the shared device
        key = "raw/dt=2026-03-02/hr=17/stream-late"
        late = [
            record([event("page_view")], anonymous_id=SHARED, user_id=USER_A),
            record([event("page_view")], anonymous_id=SHARED, user_id=USER_B),
            record([event("page_view")], anonymous_id=SHARED),
        ]
        raw.put_bytes(key, ("\n".join(json.dumps(r) for r in late) + "\n").encode())
        service._tombstone_cache.clear()
        from tests.fakes.context import lambda_context

        answer = load_validate_handler().lambda_handler(
            sqs_event(s3_notification(settings.raw_bucket, key)), lambda_context("ValidateFunction")
        )
        # Then A's is quarantined as erased (by the user id's tombstone), B's and the anonymous one validate
        assert answer == {"batchItemFailures": []}
        ledger = state.get_ledger(key)
        assert ledger["validated"] == 2 and ledger["quarantined"] == {"erased": 1}
        lines = [json.loads(line) for line in lake.get_bytes(ledger["quarantine_key"]).splitlines()]
        assert [(q["reason"], q["id_hash"]) for q in lines] == [("erased", id_hash(USER_A))]
    finally:
        clock.set_clock(None)


def _decode_all(raw) -> list[bytes]:
    out = []
    for key in sorted(raw.list_keys("raw/")):
        data = raw.get_bytes(key)
        out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return out


def test_forget_a_user_on_a_warehouse_only_leaves_the_other_users_events(warehouse, tmp_path, capsys):
    """The measured case: B posts 3 events on device D, A posts 1 on D; forgetting A removed all 4."""
    from clickstream.core.schema import VALIDATED_COLUMNS
    from clickstream.sessionize.files import sessionize_files
    from clickstream.warehouse.loader import RunFiles, RunRecord, load_run
    from clickstream_cli.main import main
    from tests.unit.warehouse.factory import write_parquet

    # Given device D with B's three events and A's one, sessionized by the rule and loaded
    at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
    rows = [
        {
            "event_id": f"b{i}",
            "anonymous_id": "D",
            "user_id": USER_B,
            "event_type": "page_view",
            "event_ts": at(i),
            "received_at": at(i),
            "page_url": "https://shop.example/",
            "channel": "Email",
            "device_type": "desktop",
            "is_bot": False,
            "is_internal": False,
        }
        for i in range(3)
    ] + [
        {
            "event_id": "a0",
            "anonymous_id": "D",
            "user_id": USER_A,
            "event_type": "page_view",
            "event_ts": at(5),
            "received_at": at(5),
            "page_url": "https://shop.example/account",
            "is_bot": False,
            "is_internal": False,
        }
    ]
    validated = write_parquet(tmp_path / "validated.parquet", VALIDATED_COLUMNS, rows)
    sessionize_files([validated], tmp_path / "s")
    files = RunFiles(
        events=[tmp_path / "s" / "events.parquet"],
        sessions=[tmp_path / "s" / "sessions.parquet"],
        visitors=[
            write_parquet(tmp_path / "v.parquet", (("anonymous_id", "VARCHAR"),), [{"anonymous_id": "D"}])
        ],
    )
    with warehouse.connect() as conn:
        load_run(conn, files, RunRecord("r1"))
        recompute_daily_kpis(conn, all_days(conn), "USD")
    # When A is forgotten from the warehouse alone, through the command line
    url = f"duckdb://{warehouse.target}" if warehouse.dialect == "duckdb" else warehouse.target
    code = main(["forget", "--user-id", USER_A, "--warehouse", url, "--warehouse-only", "--json"])
    # Then only A's event went; B's three stay, in a session that is B's, and the KPIs count B alone
    assert code == 0, capsys.readouterr()
    report = json.loads(capsys.readouterr().out)
    assert report["warehouse"]["events"] == 1
    assert _rows(warehouse, "SELECT event_id, user_id FROM events") == [(f"b{i}", USER_B) for i in range(3)]
    assert _rows(warehouse, "SELECT user_id, n_events, channel FROM sessions") == [(USER_B, 3, "Email")]
    assert _rows(warehouse, "SELECT anonymous_id, user_id FROM users") == [("D", USER_B)]
    assert _rows(warehouse, "SELECT sessions, signed_in_users FROM daily_kpis") == [(1, 1)]
