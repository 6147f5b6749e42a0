"""The Glue tables in template.yaml describe the Parquet the pipeline really writes, where it writes it.

The files come from the real steps under moto: a raw object goes through ``validate_object`` (validated events),
then Plan and the Sessionize step (the bucket's sessions). Their column names, order and types (DuckDB's, mapped
to Hive's) must equal the tables' columns, and their keys must be what the partition projection addresses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clickstream.adapters.factory import Adapters
from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core import clock
from clickstream.core.schema import SESSION_COLUMNS, VALIDATED_COLUMNS
from clickstream.pipeline.plan import PlanInput, run_plan
from clickstream.pipeline.sessionize import SessionizeInput, run_sessionize
from clickstream.sessionize.state import STATE_SLICES
from clickstream.validate.step import validate_object
from clickstream_local.template import load_template
from tests.unit.validate.helpers import T0, event, raw_object, record

# DuckDB's type names (as DESCRIBE reports them for a Parquet file) -> the Hive types Athena reads them as.
HIVE_TYPES = {
    "VARCHAR": "string",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "TIMESTAMP": "timestamp",
    "DOUBLE": "double",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "BOOLEAN": "boolean",
    "DATE": "date",
}
RAW_KEY = "raw/dt=2026-03-02/hr=10/clickstream-events-1-2026-03-02-10-05-00-abc"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_template()["Resources"]


def _table(resources: dict[str, Any], name: str) -> dict[str, Any]:
    tables = {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
        for r in resources.values()
        if r["Type"] == "AWS::Glue::Table"
    }
    return tables[name]


def _columns(table: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]


def _parquet_columns(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect()
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    finally:
        con.close()
    return [(name, HIVE_TYPES[typ]) for name, typ, *_ in rows]


def _template_pattern(table: dict[str, Any]) -> re.Pattern[str]:
    """The projection's location template as a regex over object keys (``${x}`` -> a named group)."""
    template = table["Parameters"]["storage.location.template"]["Fn::Sub"]
    prefix = template.split("}/", 1)[1]  # drop "s3://${LakeBucket}/"
    pattern = re.sub(r"\\\$\\\{!(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(prefix))
    return re.compile(pattern + r"[^/]+\.parquet")


@pytest.fixture
def lake_files(aws, tmp_path) -> dict[str, tuple[str, Path]]:
    """The validated events object and a bucket's sessions file the real steps wrote: name -> (key, local file)."""
    settings = aws.settings
    raw, lake = S3ObjectStore(settings.raw_bucket), S3ObjectStore(settings.lake_bucket)
    state = DynamoStateStore(settings.state_table)
    t = T0
    events = [
        event("page_view", at=t),
        event("view_item", at=t + timedelta(seconds=20)),
        event("add_to_cart", at=t + timedelta(seconds=40)),
        event("purchase", at=t + timedelta(seconds=90)),
    ]
    raw.put_bytes(RAW_KEY, raw_object(record(events, received_at=t + timedelta(seconds=95), user_id="u-1")))
    clock.set_clock(clock.SimulatedClock(datetime(2026, 3, 2, 10, 7, tzinfo=UTC)))
    try:
        validate_object(RAW_KEY, settings=settings, raw_store=raw, lake_store=lake, state=state)
        plan = run_plan(
            PlanInput(
                execution_id="arn:aws:states:us-east-1:123456789012:execution:p:lake-tables",
                execution_name="lake-tables",
                input={"as_of": "2026-03-02T11:00:00Z"},
            ),
            settings,
            Adapters(settings, state=state, lake=lake),
        )
        for bucket in plan.buckets:
            run_sessionize(
                SessionizeInput(run_id=plan.run_id, bucket=bucket), settings, Adapters(settings, lake=lake)
            )
    finally:
        clock.set_clock(None)
    validated = [k for k in lake.list_keys("validated/")]
    sessions = lake.list_keys("sessions/")
    assert len(validated) == 1 and sessions, (validated, sessions)
    with duckdb.connect() as con:  # the bucket that holds the visitor's session
        for key in sessions:
            local = lake.download(key, tmp_path / key.replace("/", "_"))
            if con.execute(f"SELECT count(*) FROM read_parquet('{local}')").fetchone()[0]:
                session_file = (key, local)
    return {
        "validated_events": (validated[0], lake.download(validated[0], tmp_path / "validated.parquet")),
        "sessions": session_file,
        "sessions_location": sessions,
    }


def test_validated_events_table_matches_the_validate_writer(resources, lake_files):
    # Given the validated Parquet the validate step wrote, and the table's definition
    key, path = lake_files["validated_events"]
    table = _table(resources, "validated_events")
    # Then the columns (names, order, types) are the file's, which are the schema module's
    assert _columns(table) == _parquet_columns(path)
    assert [name for name, _ in _columns(table)] == [name for name, _ in VALIDATED_COLUMNS]
    # And the object's key is one the projection addresses: dt=YYYY-MM-DD/hr=HH of its arrival hour
    match = _template_pattern(table).fullmatch(key)
    assert match is not None, key
    assert match.groupdict() == {"dt": "2026-03-02", "hr": "10"}
    params = table["Parameters"]
    assert match["hr"] in params["projection.hr.values"].split(",")
    assert datetime.strptime(match["dt"], "%Y-%m-%d")  # projection.dt.format yyyy-MM-dd
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt", "hr"]


def test_sessions_table_matches_the_sessionize_step(resources, lake_files):
    key, path = lake_files["sessions"]
    table = _table(resources, "sessions")
    # Given every object under the table's location: sessions files only (Athena reads whatever a folder holds)
    assert table["StorageDescriptor"]["Location"] == {"Fn::Sub": "s3://${LakeBucket}/sessions/"}
    assert all(k.endswith("/sessions.parquet") for k in lake_files["sessions_location"])
    assert _columns(table) == _parquet_columns(path)
    assert [name for name, _ in _columns(table)] == [name for name, _ in SESSION_COLUMNS]
    match = _template_pattern(table).fullmatch(key)
    assert match is not None, key
    bucket = match["bucket"]
    params = table["Parameters"]
    assert len(bucket) == int(params["projection.bucket.digits"])
    low, high = (int(x) for x in params["projection.bucket.range"].split(","))
    assert low <= int(bucket) <= high
    assert len(match["slice"]) == int(params["projection.slice.digits"])
    assert params["projection.slice.range"] == f"0,{STATE_SLICES - 1}"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["bucket", "slice"]


def test_projection_covers_every_bucket_the_stack_allows():
    # The NBuckets parameter bounds the bucket numbers a projection must reach
    template = load_template()
    high = int(template["Parameters"]["NBuckets"]["MaxValue"]) - 1
    sessions = _table(template["Resources"], "sessions")["Parameters"]
    assert sessions["projection.bucket.range"] == f"0,{high}"
    assert len(str(high)) <= int(sessions["projection.bucket.digits"])


@pytest.mark.parametrize("name", ["validated_events", "sessions"])
def test_tables_are_projected_parquet_in_the_lake_bucket(resources, name):
    table = _table(resources, name)
    params = table["Parameters"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert params["classification"] == "parquet" and params["projection.enabled"] == "true"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert table["StorageDescriptor"]["Location"]["Fn::Sub"].startswith("s3://${LakeBucket}/")
    assert params["storage.location.template"]["Fn::Sub"].startswith(
        table["StorageDescriptor"]["Location"]["Fn::Sub"]
    )


def test_athena_workgroup_enforces_encrypted_results_in_the_lake(resources):
    workgroups = [r for r in resources.values() if r["Type"] == "AWS::Athena::WorkGroup"]
    assert len(workgroups) == 1
    config = workgroups[0]["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    result = config["ResultConfiguration"]
    assert result["OutputLocation"] == {"Fn::Sub": "s3://${LakeBucket}/athena-results/"}
    assert result["EncryptionConfiguration"]["EncryptionOption"] in {"SSE_S3", "SSE_KMS"}
    # And the results expire with the lake bucket's lifecycle
    rules = resources["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("Prefix") == "athena-results/" and r.get("ExpirationInDays") for r in rules)
