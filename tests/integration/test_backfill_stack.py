"""``clickstream backfill --stack-name``: the deployed-stack path finds its resources from the stack's outputs and
parameters (a CloudFormation stack in moto) and runs the back-fill through the real state machine and handlers."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pytest

from clickstream.adapters.aws import client
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.config import get_settings
from clickstream_cli.commands.backfill import STACK_OUTPUTS
from clickstream_cli.main import main
from clickstream_local import bridge
from tests.integration.test_state_machine import T0, sfn  # noqa: F401  (the stack fixture)
from tests.unit.sessionize.data import Stream, write_parquet

MIN = timedelta(minutes=1)


def _stack(name: str, outputs: dict[str, str], n_buckets: int) -> None:
    template = {
        "Parameters": {"NBuckets": {"Type": "Number"}},
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "NBuckets", "ParameterValue": str(n_buckets)}],
    )


def _outputs(sfn_ctx, arn: str) -> dict[str, str]:
    settings, stack = sfn_ctx["settings"], sfn_ctx["stack"]
    return {
        "StateMachineArn": arn,
        "LakeBucketName": settings.lake_bucket,
        "RawBucketName": settings.raw_bucket,
        "StateTableName": settings.state_table,
        "RawObjectsQueueUrl": stack.queue_url,
    }


def test_backfill_on_a_stack_runs_the_days_through_its_state_machine(sfn, tmp_path, monkeypatch, capsys):  # noqa: F811
    # Given a day's validated object in the lake and ledger, and a stack whose outputs name the resources
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{warehouse}")
    get_settings.cache_clear()
    stream = Stream("raw/obj-1")
    stream.add("visitor-x", T0, event_id="x-1")
    stream.add("visitor-x", T0 + 5 * MIN, event_id="x-2")
    key = "validated/dt=2026-03-02/hr=09/obj-1.parquet"
    S3ObjectStore(sfn["settings"].lake_bucket).upload(
        write_parquet(tmp_path / "obj-1.parquet", stream.rows), key
    )
    sfn["state"].put_ledger({"source_key": "raw/obj-1", "validated_at": T0 + 10 * MIN, "validated_key": key})
    arn = bridge.create_pipeline_state_machine(sfn["stack"])
    _stack("shop-clickstream", _outputs(sfn, arn), sfn["settings"].n_buckets)
    # When the operator back-fills that day by stack name
    code = main(
        [
            "backfill",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-02",
            "--stack-name",
            "shop-clickstream",
            "--no-progress",
        ]
    )
    # Then the execution succeeds over every bucket and the warehouse holds the day's session
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SUCCEEDED" in out and f"{sfn['settings'].n_buckets} buckets" in out
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT session_id) FROM events").fetchone() == (2, 1)
    finally:
        con.close()


@pytest.mark.parametrize("missing", STACK_OUTPUTS)
def test_a_stack_without_an_output_is_refused_by_name(sfn, capsys, missing):  # noqa: F811
    # Given a stack lacking one of the outputs a back-fill needs
    outputs = {k: v for k, v in _outputs(sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:p").items()}
    del outputs[missing]
    _stack("partial", outputs, 4)
    # When the operator back-fills by its name
    code = main(
        ["backfill", "--from", "2026-03-02", "--to", "2026-03-02", "--stack-name", "partial", "--no-progress"]
    )
    # Then the command exits 2 naming the missing output
    assert code == 2
    assert missing in capsys.readouterr().out


def test_an_unknown_stack_is_a_clear_error(sfn, capsys):  # noqa: F811
    # Given no such stack
    # When the operator back-fills by its name
    code = main(
        ["backfill", "--from", "2026-03-02", "--to", "2026-03-02", "--stack-name", "nope", "--no-progress"]
    )
    # Then the command exits 2 with CloudFormation's own message
    assert code == 2
    assert "nope" in capsys.readouterr().out
