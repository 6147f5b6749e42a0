"""``clickstream invoke``: every sample of ``events/`` through its function's real handler, with the environment
``template.yaml`` gives it, against the seeded laptop stack; and the env.json ``sam local invoke`` takes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clickstream.pipeline.manifest import PlanResult, SessionizeResult
from clickstream_cli.main import main
from clickstream_local.invoke import (
    SAMPLE_RUN_AT,
    InvokeError,
    LocalFunctions,
    env_json,
    function_for_sample,
    functions,
    invoke,
    sample_chain,
)
from clickstream_local.template import load_template
from tests.conftest import EVENTS_DIR, load_event

SAMPLES = sorted(EVENTS_DIR.glob("*.json"))


def _ingest(name: str, answer: dict) -> None:
    status = 400 if "bad" in name else 202
    assert answer["statusCode"] == status, answer
    body = json.loads(answer["body"])
    assert (body["accepted"] > 0) if status == 202 else (body["error"]["code"] and body["error"]["message"])


def _plan(_: str, answer: dict) -> None:
    plan = PlanResult.model_validate(answer)
    assert plan.n_objects == 1 and plan.run_id == "hourly-2026-03-02T10"  # the sample hour's object


def _sessionize(_: str, answer: dict) -> None:
    result = SessionizeResult.model_validate(answer)
    assert result.n_events > 0 and result.n_sessions > 0 and result.events_key


def _validate(_: str, answer: dict) -> None:
    assert answer == {"batchItemFailures": []}


def _load(_: str, answer: dict) -> None:
    assert answer["events_loaded"] > 0 and answer["sessions_loaded"] > 0


def _aggregate(_: str, answer: dict) -> None:
    assert answer["days_recomputed"] == ["2026-03-02"] and answer["report_key"]


def _commit(name: str, answer: dict) -> None:
    if "release" in name:  # the failure path gives back the lease Plan took
        assert answer["released"] is True
    else:
        assert answer["status"] == "SUCCEEDED" and answer["watermark"] == "2026-03-02T10:00:00.000000Z"


# What each function's answer to its samples must be (a sample of a new function at least runs without an error).
CONTRACTS: dict[str, Callable[[str, Any], None]] = {
    "IngestFunction": _ingest,
    "ValidateFunction": _validate,
    "PlanFunction": _plan,
    "SessionizeFunction": _sessionize,
    "LoadFunction": _load,
    "AggregateFunction": _aggregate,
    "CommitFunction": _commit,
}


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_event_runs_through_clickstream_invoke(sample: Path, capsys, tmp_path) -> None:
    # Given a sample of events/ and the function its name points to
    function = function_for_sample(sample)
    # When `clickstream invoke FUNCTION -e events/<sample>` runs it
    code = main(["invoke", function, "-e", str(sample), "--warehouse", f"duckdb://{tmp_path}/w.duckdb"])
    out, err = capsys.readouterr()
    # Then it succeeds and prints the handler's answer as sam local invoke does: one JSON document on stdout
    assert code == 0, (out, err)
    answer = json.loads(out)
    CONTRACTS.get(function, lambda _, a: None)(sample.name, answer)
    # And the function's log and metric lines went to stderr, as JSON lines
    assert err.strip() and all(json.loads(line) for line in err.splitlines() if line.strip())


def test_every_function_of_the_template_has_a_sample() -> None:
    assert {function_for_sample(p) for p in SAMPLES} == set(functions())


def test_a_sample_named_after_no_function_is_refused() -> None:
    with pytest.raises(InvokeError, match="no function takes samples named checkout_"):
        function_for_sample(Path("events/checkout_flow.json"))


def test_the_pipeline_samples_are_the_payloads_of_the_sample_hours_run() -> None:
    # Given the sample hour's run as clickstream invoke seeds it (the real handlers, the state machine's payloads)
    chain = sample_chain()
    # Then the samples of events/ are exactly what one step passes to the next
    hint = "run .venv/bin/python scripts/refresh_sample_events.py"
    for name in ("load", "aggregate", "commit"):
        assert load_event(f"{name}.json") == chain[name], f"events/{name}.json is stale: {hint}"
    sessionize = load_event("sessionize.json")
    assert (
        sessionize["run_id"] == chain["plan"]["run_id"] and sessionize["bucket"] in chain["plan"]["buckets"]
    )
    plan = load_event("plan.json")
    assert (plan["execution_id"], plan["execution_name"]) == (
        chain["plan"]["execution_id"],
        chain["plan"]["run_id"],
    )
    obj = json.loads(load_event("validate_sqs.json")["Records"][0]["body"])["Records"][0]["s3"]["object"]
    assert (obj["size"], obj["eTag"]) == (chain["raw"]["size"], chain["raw"]["etag"]), hint
    # And the run ends committed, its lag on the sample clock's hour
    assert chain["commit_answer"]["watermark"] == "2026-03-02T10:00:00.000000Z"


def test_an_unhandled_error_prints_lambdas_error_payload(capsys) -> None:
    # Given a payload the Plan step's contract refuses, and no seeding
    result = invoke("PlanFunction", {"execution_name": "x"}, seeded=False)
    # Then the answer is what Lambda's runtime answers for an unhandled exception, and the failure is logged
    assert not result.invocation.ok
    error = result.invocation.payload
    assert error["errorType"] == "ValidationError" and "execution_id" in error["errorMessage"]
    assert isinstance(error["stackTrace"], list) and error["requestId"]
    [failure] = [r for r in result.invocation.log_records() if r["message"] == "invocation failed"]
    assert failure["level"] == "ERROR" and failure["error_type"] == "ValidationError"


def test_the_command_exits_1_on_a_function_error_and_2_on_bad_usage(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"execution_name": "x"}', encoding="utf-8")
    assert main(["invoke", "PlanFunction", "-e", str(bad), "--no-seed", "--quiet"]) == 1
    assert json.loads(capsys.readouterr().out)["errorType"] == "ValidationError"
    assert main(["invoke", "NoSuchFunction", "-e", str(bad)]) == 2
    assert "no function 'NoSuchFunction'" in capsys.readouterr().err
    assert main(["invoke"]) == 2


# -- the environment -----------------------------------------------------------------------------------------------
def _declared(template: dict, logical_id: str) -> dict:
    glob = template["Globals"]["Function"]["Environment"]["Variables"]
    own = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**glob, **own}


def test_env_json_gives_every_function_every_variable_the_template_declares(tmp_path, capsys) -> None:
    # Given the template, and env.json written by the command for an account
    template = load_template()
    path = tmp_path / "env.json"
    assert (
        main(["invoke", "--write-env-json", str(path), "--account", "111122223333", "--stage", "prod"]) == 0
    )
    doc = json.loads(path.read_text(encoding="utf-8"))
    # Then every function is there with exactly the variables the template gives it, all as text
    lambdas = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(doc) == lambdas
    params = template["Parameters"]
    for name in lambdas:
        declared = _declared(template, name)
        assert set(doc[name]) == set(declared), name
        assert all(isinstance(v, str) for v in doc[name].values())
        # parameters by their defaults (Stage as asked); resources by the names the stack gives them
        for var, value in declared.items():
            if isinstance(value, dict) and value.get("Ref") in params and value["Ref"] != "Stage":
                default = params[value["Ref"]].get("Default")
                assert doc[name][var] == str(default), (name, var)
        env = doc[name]
        assert env["STAGE"] == "prod"
        assert env["RAW_BUCKET"] == "clickstream-prod-raw-111122223333-us-east-1"
        assert env["LAKE_BUCKET"] == "clickstream-prod-lake-111122223333-us-east-1"
        assert env["STATE_TABLE"] == "clickstream-prod-state"
        assert env["DELIVERY_STREAM"] == "clickstream-prod-events"
        assert env["WAREHOUSE_SECRET_ARN"] == ""  # bring-your-own by default: no secret given
    assert doc["LoadFunction"]["WAREHOUSE_SSLMODE"] == "require"
    assert env_json(stage="prod", account="111122223333") == doc


def test_the_laptop_stack_names_and_sams_env_vars_override(aws) -> None:
    # Given the laptop stack and an env.json in sam local invoke's shape
    env_vars = {
        "Parameters": {"SITE_TIMEZONE": "Europe/Paris", "NOT_DECLARED": "x"},
        "IngestFunction": {"ALLOWED_ORIGINS": "https://shop.example.com"},
    }
    local = LocalFunctions(aws, env_vars=env_vars, warehouse_url="duckdb:///tmp/x.duckdb")
    env = local.environment("IngestFunction")
    # Then resource names are the laptop stack's, Parameters apply to every function, the function's entry to it,
    # and a variable the template does not declare is not added (as SAM does)
    assert (env["RAW_BUCKET"], env["STATE_TABLE"], env["STAGE"]) == (
        aws.settings.raw_bucket,
        aws.settings.state_table,
        "local",
    )
    assert env["SITE_TIMEZONE"] == "Europe/Paris" and env["ALLOWED_ORIGINS"] == "https://shop.example.com"
    assert "NOT_DECLARED" not in env
    assert local.environment("PlanFunction")["ALLOWED_ORIGINS"] == "*"
    # And Lambda's own variables are set as sam local sets them, with the laptop's stand-in for the secret
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "clickstream-local-ingest" and env["AWS_SAM_LOCAL"] == "true"
    assert (
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512" and env["WAREHOUSE_URL"] == "duckdb:///tmp/x.duckdb"
    )


def test_the_handler_sees_the_env_vars_override(tmp_path) -> None:
    # Given the sample request from https://shop.example.com and AllowedOrigin overridden to that origin
    env_vars = {"IngestFunction": {"ALLOWED_ORIGINS": "https://shop.example.com"}}
    result = invoke("IngestFunction", load_event("ingest_native.json"), env_vars=env_vars, seeded=False)
    # Then the function answers with that origin echoed and credentials allowed (the default "*" never does)
    headers = result.invocation.response["multiValueHeaders"]
    assert headers["Access-Control-Allow-Origin"] == ["https://shop.example.com"]
    assert headers["Access-Control-Allow-Credentials"] == ["true"]


def test_commit_publishes_the_warehouse_lag_on_the_sample_clock() -> None:
    # Given the sample run committed at 10:05 for the window up to 10:00
    result = invoke("CommitFunction", load_event("commit.json"))
    [doc] = [d for d in result.invocation.metrics() if "WarehouseLagSeconds" in d]
    # Then the lag is now - the watermark it committed: five minutes, in seconds, with the service dimension
    assert SAMPLE_RUN_AT.minute == 5
    assert doc["WarehouseLagSeconds"] == [300.0] and doc["service"] == "clickstream"
    [definition] = doc["_aws"]["CloudWatchMetrics"]
    assert definition["Namespace"] == "Clickstream" and definition["Dimensions"] == [["service"]]
    assert {"Name": "WarehouseLagSeconds", "Unit": "Seconds"} in definition["Metrics"]
