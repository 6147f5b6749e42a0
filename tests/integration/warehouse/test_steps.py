"""The LoadWarehouse and Aggregate steps and their handlers, over moto S3 and Secrets Manager."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path

import pytest

from clickstream.adapters.aws import client
from clickstream.adapters.storage import S3ObjectStore
from clickstream.adapters.warehouse import open_warehouse, warehouse_from_settings
from clickstream.core.config import get_settings
from clickstream.pipeline.aggregate import AggregateInput, run_aggregate
from clickstream.pipeline.load import LoadInput, run_load
from clickstream.warehouse.snapshot import warehouse_digest
from clickstream_local.template import functions_dir
from tests.conftest import load_event
from tests.fakes.context import lambda_context
from tests.unit.warehouse.factory import STORE_DAY_KPIS, store_day, write_run

VISITORS = ("A", "B", "C", "D")  # the store day's visitors, shared out over the buckets the sample names


def _handler(name: str):
    spec = importlib.util.spec_from_file_location(f"handler_{name}", functions_dir() / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def _stage_sample_run(aws, tmp_path: Path, payload: LoadInput) -> None:
    """Upload the store day's files, split by bucket, to the keys the payload names."""
    events, sessions = store_day()
    store = S3ObjectStore(aws.settings.lake_bucket)
    named = [result for result in payload.buckets if result.events_key]
    for i, result in enumerate(named):
        mine = set(VISITORS[i :: len(named)])
        kept = [e for e in events if e["anonymous_id"] in mine]
        files = write_run(
            tmp_path / f"b{result.bucket}",
            kept,
            [s for s in sessions if s["anonymous_id"] in mine],
            users=_users(kept),
        )
        for key, path in (
            (result.events_key, files.events[0]),
            (result.sessions_key, files.sessions[0]),
            (result.visitors_key, files.visitors[0]),
            (result.users_key, files.users[0]),
        ):
            if key:
                store.upload(path, key)


def _users(events: list[dict]) -> list[dict]:
    """The run's users links of ``events``: each (device, user) seen, first and last seen."""
    seen: dict[tuple[str, str], list] = {}
    for e in events:
        if e.get("user_id"):
            span = seen.setdefault((e["anonymous_id"], e["user_id"]), [e["event_ts"], e["event_ts"]])
            span[0], span[1] = min(span[0], e["event_ts"]), max(span[1], e["event_ts"])
    return [
        {"anonymous_id": a, "user_id": u, "first_seen": f, "last_seen": la}
        for (a, u), (f, la) in seen.items()
    ]


@pytest.fixture
def duckdb_url(tmp_path, monkeypatch) -> str:
    url = f"duckdb://{tmp_path}/out/warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_URL", url)
    get_settings.cache_clear()
    return url


def test_load_and_aggregate_steps_end_to_end_on_duckdb(aws, tmp_path, duckdb_url):
    # Given the sample LoadWarehouse payload and its files in the lake
    payload = LoadInput.model_validate(load_event("load.json"))
    _stage_sample_run(aws, tmp_path, payload)
    settings = get_settings()
    # When the load step runs
    loaded = run_load(payload, settings)
    # Then both buckets' rows are in the warehouse and the result names the affected day
    assert (loaded.events_loaded, loaded.sessions_loaded, loaded.visitors_replaced) == (17, 6, 4)
    assert loaded.affected_days == ["2026-03-02"]
    # When the aggregate step runs on the load's result
    result = run_aggregate(
        AggregateInput(execution_id=payload.execution_id, plan=payload.plan, loaded=loaded), settings
    )
    # Then the day's KPIs are recomputed and the report is in the lake, and only there (a Lambda step writes no
    # file beside a local DuckDB warehouse: the demo copies the report from the lake itself)
    assert result.days_recomputed == ["2026-03-02"]
    assert result.report_key == settings.report_key
    html = S3ObjectStore(settings.lake_bucket).get_bytes(settings.report_key).decode("utf-8")
    assert 'id="kpi-gross_revenue" data-kpi="gross_revenue" data-value="1500.00"' in html
    assert 'id="kpi-net_revenue" data-kpi="net_revenue" data-value="1400.00"' in html
    assert not (Path(duckdb_url.removeprefix("duckdb://")).parent / "report.html").exists()
    head = client("s3").head_object(Bucket=settings.lake_bucket, Key=settings.report_key)
    assert head["ContentType"].startswith("text/html")


def test_handlers_answer_their_contracts_for_the_sample_events(aws, tmp_path, duckdb_url):
    # Given the sample events and the run's files in the lake
    load_payload = load_event("load.json")
    _stage_sample_run(aws, tmp_path, LoadInput.model_validate(load_payload))
    # When the LoadWarehouse handler is invoked twice with the same event (a retry)
    first = _handler("load")(load_payload, lambda_context("clickstream-load"))
    with open_warehouse(duckdb_url).connect() as conn:
        before = warehouse_digest(conn)
    second = _handler("load")(load_payload, lambda_context("clickstream-load"))
    # Then it answers the LoadResult contract as JSON, and the retry changed nothing
    assert first == second
    assert first["run_id"] == "hourly-2026-03-02T10" and first["affected_days"] == ["2026-03-02"]
    assert json.loads(json.dumps(first)) == first
    with open_warehouse(duckdb_url).connect() as conn:
        assert warehouse_digest(conn) == before
    # When the Aggregate handler gets the sample aggregate event
    answer = _handler("aggregate")(load_event("aggregate.json"), lambda_context("clickstream-aggregate"))
    # Then it answers the AggregateResult contract and the KPIs are in the warehouse
    assert answer == {
        "run_id": "hourly-2026-03-02T10",
        "days_recomputed": ["2026-03-02"],
        "report_key": "reports/index.html",
    }
    with open_warehouse(duckdb_url).connect() as conn:
        assert conn.query("SELECT sessions, gross_revenue, net_revenue FROM daily_kpis")[0] == (
            5,
            STORE_DAY_KPIS["gross_revenue"],
            STORE_DAY_KPIS["net_revenue"],
        )


def test_load_step_injected_failure_keeps_previous_state(aws, tmp_path, duckdb_url):
    # Given a warehouse loaded with the sample run
    payload = LoadInput.model_validate(load_event("load.json"))
    _stage_sample_run(aws, tmp_path, payload)
    run_load(payload, get_settings())
    with open_warehouse(duckdb_url).connect() as conn:
        before = warehouse_digest(conn)
    # When the same step fails just before its commit
    with pytest.raises(RuntimeError, match="injected"):
        run_load(
            payload, get_settings(), before_commit=lambda: (_ for _ in ()).throw(RuntimeError("injected"))
        )
    # Then the warehouse is unchanged
    with open_warehouse(duckdb_url).connect() as conn:
        assert warehouse_digest(conn) == before


def _secret(value: str) -> str:
    return client("secretsmanager").create_secret(
        Name=f"warehouse-{uuid.uuid4().hex[:8]}", SecretString=value
    )["ARN"]


def test_secret_with_rds_json_gives_a_tls_dsn(aws):
    # Given an RDS-style JSON secret
    arn = _secret(
        json.dumps(
            {
                "engine": "postgres",
                "host": "db.internal",
                "port": 5432,
                "username": "loader",
                "password": "p@ss word",
                "dbname": "clickstream",
            }
        )
    )
    # When the warehouse is resolved from settings that only name the secret
    wh = warehouse_from_settings(get_settings().replace(warehouse_secret_arn=arn))
    # Then it is PostgreSQL with TLS required and the credentials intact
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(wh.target)
    assert wh.dialect == "postgresql"
    assert params == {
        "host": "db.internal",
        "port": "5432",
        "user": "loader",
        "password": "p@ss word",
        "dbname": "clickstream",
        "sslmode": "require",
    }
    assert "p@ss" not in wh.describe()


def test_secret_with_a_dsn_keeps_its_own_sslmode(aws):
    arn = _secret(
        "postgresql://loader:secret@db.internal:6432/clickstream?sslmode=verify-full&sslrootcert=/opt/certs/rds.pem"
    )
    wh = warehouse_from_settings(get_settings().replace(warehouse_secret_arn=arn))
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(wh.target)["sslmode"] == "verify-full"
    assert conninfo_to_dict(wh.target)["sslrootcert"] == "/opt/certs/rds.pem"
    assert conninfo_to_dict(wh.target)["port"] == "6432"


def test_warehouse_url_wins_over_the_secret(aws, tmp_path):
    settings = get_settings().replace(
        warehouse_url=f"duckdb://{tmp_path}/w.duckdb", warehouse_secret_arn="arn:unused"
    )
    assert warehouse_from_settings(settings).dialect == "duckdb"


@pytest.mark.postgres
def test_load_step_through_a_secret_into_real_postgresql(aws, tmp_path, pg_database):
    # Given the PostgreSQL DSN stored in Secrets Manager (a Unix socket: libpq ignores sslmode there)
    arn = _secret(pg_database)
    settings = get_settings().replace(warehouse_url="", warehouse_secret_arn=arn)
    payload = LoadInput.model_validate(load_event("load.json"))
    _stage_sample_run(aws, tmp_path, payload)
    # When the load and aggregate steps run with only the secret configured
    loaded = run_load(payload, settings)
    result = run_aggregate(
        AggregateInput(execution_id=payload.execution_id, plan=payload.plan, loaded=loaded), settings
    )
    # Then PostgreSQL holds the run and its KPIs, and the report went to the lake only
    assert result.days_recomputed == ["2026-03-02"]
    with open_warehouse(pg_database).connect() as conn:
        assert conn.query("SELECT count(*) FROM events")[0][0] == 17
        assert conn.query("SELECT sessions, orders, gross_revenue, refunds FROM daily_kpis")[0] == (
            5,
            2,
            STORE_DAY_KPIS["gross_revenue"],
            STORE_DAY_KPIS["refunds"],
        )
    assert S3ObjectStore(settings.lake_bucket).exists(settings.report_key)
