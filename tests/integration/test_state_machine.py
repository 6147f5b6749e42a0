"""The real ``statemachine/pipeline.asl.json`` executed by moto, its Lambda tasks routed through the bridge.

Plan and Commit are the real handlers; Sessionize, LoadWarehouse and Aggregate are stand-ins that check their
payload against the step contracts (so the ASL's payload shapes are tested too) and can be told to fail.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from clickstream.adapters.factory import adapters_for
from clickstream.adapters.state import DynamoStateStore
from clickstream.core.errors import TransientError
from clickstream.core.times import iso
from clickstream.pipeline.aggregate import AggregateInput, AggregateResult
from clickstream.pipeline.commit import CommitResult
from clickstream.pipeline.load import LoadInput
from clickstream.pipeline.manifest import LoadResult, SessionizeResult
from clickstream.pipeline.sessionize import SessionizeInput
from clickstream_local import bridge
from clickstream_local.template import asl_path, functions_dir, load_template
from tests.conftest import REPO_ROOT

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ASL = json.loads(asl_path().read_text(encoding="utf-8"))


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """The stack in moto configured to execute state machines, and an SQS queue subscribed to the failure topic."""
    from clickstream.adapters.aws import client
    from clickstream_local.stack import local_settings, local_stack

    with local_stack(local_settings(), with_cognito=False, setenv=monkeypatch.setenv) as stack:
        settings = stack.settings
        sqs = client("sqs")
        queue_url = sqs.create_queue(QueueName="failure-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        bridge.RETRY_WAITS.clear()
        yield {
            "stack": stack,
            "settings": settings,
            "queue_url": queue_url,
            "state": DynamoStateStore(settings.state_table),
        }


class Steps:
    """Stand-ins for Sessionize, LoadWarehouse and Aggregate that record each call and may fail."""

    def __init__(self) -> None:
        self.calls: dict[str, list[dict]] = {"sessionize": [], "load": [], "aggregate": []}
        self.failures: dict[str, Callable[[int], Exception | None]] = {}
        self._lock = threading.Lock()

    def fail(self, step: str, when: Callable[[int], Exception | None]) -> None:
        """``when(attempt)`` (1-based) returns the exception to raise on that attempt, or None to succeed."""
        self.failures[step] = when

    def _record(self, step: str, event: dict) -> None:
        with self._lock:
            self.calls[step].append(event)
            attempt = len(self.calls[step])
        exc = self.failures.get(step, lambda _n: None)(attempt)
        if exc is not None:
            raise exc

    def sessionize(self, event: dict, context) -> dict:
        payload = SessionizeInput.model_validate(event)
        self._record("sessionize", event)
        return SessionizeResult(run_id=payload.run_id, bucket=payload.bucket, n_new_events=1).model_dump(
            mode="json"
        )

    def load(self, event: dict, context) -> dict:
        payload = LoadInput.model_validate(event)
        self._record("load", event)
        n = sum(b.n_new_events for b in payload.buckets)
        return LoadResult(
            run_id=payload.plan.run_id,
            events_loaded=n,
            sessions_loaded=n,
            visitors_replaced=n,
            affected_days=["2026-03-02"],
        ).model_dump(mode="json")

    def aggregate(self, event: dict, context) -> dict:
        payload = AggregateInput.model_validate(event)
        self._record("aggregate", event)
        return AggregateResult(
            run_id=payload.plan.run_id,
            days_recomputed=payload.loaded.affected_days,
            report_key="reports/index.html",
        ).model_dump(mode="json")

    def functions(self) -> dict:
        return {"sessionize": self.sessionize, "load": self.load, "aggregate": self.aggregate}


def _arrive(state: DynamoStateStore, key: str, at: datetime) -> None:
    state.put_ledger(
        {
            "source_key": key,
            "validated_at": at,
            "validated_key": f"validated/{key.rsplit('/', 1)[-1]}.parquet",
        }
    )


def _notifications(queue_url: str) -> list[dict]:
    from clickstream.adapters.aws import client

    messages = client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _lake(sfn: dict):
    from clickstream.adapters.storage import S3ObjectStore

    return S3ObjectStore(sfn["settings"].lake_bucket)


def _max_attempts(state_name: str) -> int:
    retriers = ASL["States"][state_name]["Retry"]
    return next(r["MaxAttempts"] for r in retriers if "TransientError" in r["ErrorEquals"])


# -- (a) happy path ----------------------------------------------------------------------------------------------
def test_happy_path_runs_every_step_and_commits_the_watermark(sfn):
    # Given the watermark at T0 and two objects validated in the next hour
    state = sfn["state"]
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    _arrive(state, "raw/b", T0 + timedelta(minutes=40))
    steps = Steps()
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    # When the pipeline runs for the window ending at T0 + 1h
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then it succeeds through every step, one Sessionize per bucket, and commits the watermark
    assert run["status"] == "SUCCEEDED", run
    assert run["failures"] == []
    assert [s for s in run["states"] if s != "SessionizeBucket"] == [
        "Plan",
        "HasNewObjects",
        "HowToSessionize",
        "Sessionize",
        "LoadWarehouse",
        "Aggregate",
        "Commit",
    ]
    n_buckets = sfn["settings"].n_buckets
    assert sorted(c["bucket"] for c in steps.calls["sessionize"]) == list(range(n_buckets))
    assert {c["run_id"] for c in steps.calls["sessionize"]} == {"hourly-1"}
    load = LoadInput.model_validate(steps.calls["load"][0])
    assert load.plan.n_objects == 2 and load.execution_id == run["execution_arn"]
    assert sorted(b.bucket for b in load.buckets) == list(range(n_buckets))
    assert AggregateInput.model_validate(steps.calls["aggregate"][0]).loaded.events_loaded == n_buckets
    assert CommitResult.model_validate(run["output"]).watermark == iso(T0 + timedelta(hours=1))
    assert state.get_watermark() == T0 + timedelta(hours=1)
    assert adapters_for(sfn["settings"]).state.get_run("hourly-1")["execution_id"] == run["execution_arn"]
    assert _notifications(sfn["queue_url"]) == []


def test_a_transient_failure_that_recovers_is_retried_and_the_run_succeeds(sfn):
    # Given an object to process and a warehouse that fails twice, then works
    state = sfn["state"]
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    steps = Steps()
    steps.fail("load", lambda attempt: TransientError("warehouse busy") if attempt <= 2 else None)
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    # When the pipeline runs
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then the load is retried with backoff until it works, and the run commits without a notification
    assert run["status"] == "SUCCEEDED", run
    assert len(steps.calls["load"]) == 3
    assert bridge.RETRY_WAITS == [2.0, 4.0]
    assert state.get_watermark() == T0 + timedelta(hours=1)
    assert _notifications(sfn["queue_url"]) == []


# -- (b) retried failure ----------------------------------------------------------------------------------------
def test_a_step_failing_every_time_is_retried_then_notifies_and_leaves_the_watermark(sfn):
    # Given the watermark at T0, an object to process, and a warehouse that always fails transiently
    state = sfn["state"]
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    steps = Steps()
    steps.fail("load", lambda attempt: TransientError(f"warehouse unreachable (attempt {attempt})"))
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    # When the pipeline runs
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then LoadWarehouse ran MaxAttempts + 1 times with exponential backoff between attempts
    attempts = _max_attempts("LoadWarehouse") + 1
    assert len(steps.calls["load"]) == attempts
    retry = next(r for r in ASL["States"]["LoadWarehouse"]["Retry"] if "TransientError" in r["ErrorEquals"])
    backoff = [retry["IntervalSeconds"] * retry["BackoffRate"] ** i for i in range(attempts - 1)]
    assert backoff == bridge.RETRY_WAITS
    assert [f["error"] for f in run["failures"]] == ["TransientError"] * attempts
    assert run["failed_step"] == "LoadWarehouse"
    # And the failure topic got one message naming the step, the error, its message and the execution
    [note] = _notifications(sfn["queue_url"])
    assert note["Subject"] == "Clickstream pipeline failed"
    assert note["Message"].startswith("Clickstream pipeline step LoadWarehouse failed with TransientError: ")
    assert f"warehouse unreachable (attempt {attempts})" in note["Message"]
    assert run["execution_arn"] in note["Message"]
    assert note["MessageAttributes"]["failed_step"]["Value"] == "LoadWarehouse"
    # And the execution failed, nothing after the failed step ran, and the watermark did not move
    assert run["status"] == "FAILED"
    assert run["error"] == "PipelineFailed"
    assert steps.calls["aggregate"] == []
    assert "Commit" not in run["states"]
    assert state.get_watermark() == T0
    assert adapters_for(sfn["settings"]).state.get_run("hourly-1") is None


def test_after_a_failed_run_the_next_run_reads_the_same_objects_again(sfn):
    # Given a run that failed in LoadWarehouse
    state = sfn["state"]
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    steps = Steps()
    steps.fail("load", lambda attempt: ValueError("bad column") if attempt == 1 else None)
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    failed = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # When the next scheduled run starts an hour later
    run = bridge.run_pipeline(arn, "hourly-2", {"as_of": iso(T0 + timedelta(hours=2))})
    # Then it plans from the unchanged watermark, so the object is not lost
    assert failed["status"] == "FAILED"
    assert run["status"] == "SUCCEEDED", run
    assert LoadInput.model_validate(steps.calls["load"][-1]).plan.watermark_from == iso(T0)
    assert LoadInput.model_validate(steps.calls["load"][-1]).plan.n_objects == 1
    assert state.get_watermark() == T0 + timedelta(hours=2)


# -- (c) non-retryable failure ----------------------------------------------------------------------------------
def test_a_non_retryable_error_fails_at_once_and_still_notifies(sfn):
    # Given an object to process and an Aggregate step that raises a programming error
    state = sfn["state"]
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    steps = Steps()
    steps.fail("aggregate", lambda attempt: ValueError("no such day: 2026-02-30"))
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    # When the pipeline runs
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then Aggregate ran once, without any retry wait, and the failure was notified
    assert len(steps.calls["aggregate"]) == 1
    assert bridge.RETRY_WAITS == []
    assert run["failed_step"] == "Aggregate"
    [note] = _notifications(sfn["queue_url"])
    assert note["Message"].startswith("Clickstream pipeline step Aggregate failed with ValueError: ")
    assert "no such day: 2026-02-30" in note["Message"]
    assert run["status"] == "FAILED"
    assert state.get_watermark() == T0


def test_a_failing_bucket_fails_the_sessionize_step(sfn):
    # Given an object to process and one bucket whose sessionization fails
    state = sfn["state"]
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    steps = Steps()
    original = steps.sessionize

    def sessionize(event, context):
        if event["bucket"] == 1:
            raise KeyError("anonymous_id")
        return original(event, context)

    functions = {**steps.functions(), "sessionize": sessionize}
    arn = bridge.create_pipeline_state_machine(sfn["stack"], functions)
    # When the pipeline runs
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then the Map's Catch names Sessionize, and nothing was loaded or committed
    assert run["status"] == "FAILED"
    assert run["failed_step"] == "SessionizeBucket"
    [note] = _notifications(sfn["queue_url"])
    assert note["Message"].startswith("Clickstream pipeline step Sessionize failed with KeyError: ")
    assert steps.calls["load"] == []
    assert state.get_watermark() is None


def test_a_plan_input_error_is_not_retried_and_notifies(sfn):
    # Given an execution input whose as_of is not a time
    steps = Steps()
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    # When the pipeline runs (the real Plan handler)
    run = bridge.run_pipeline(arn, "bad-input", {"as_of": "not a time"})
    # Then Plan fails once with the typed error and the topic is told
    assert run["status"] == "FAILED"
    assert [(f["state"], f["error"]) for f in run["failures"]] == [("Plan", "InputError")]
    [note] = _notifications(sfn["queue_url"])
    assert note["Message"].startswith("Clickstream pipeline step Plan failed with InputError: ")
    assert "not a time" in note["Message"]


# -- (d) empty window -------------------------------------------------------------------------------------------
def test_an_empty_window_goes_from_plan_straight_to_commit(sfn):
    # Given the watermark at T0 and nothing arrived since
    state = sfn["state"]
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/old", T0 - timedelta(minutes=5))
    steps = Steps()
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    # When the pipeline runs for the next hour
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then only Plan, the choice and Commit ran, and the watermark advanced over the empty hour
    assert run["status"] == "SUCCEEDED", run
    assert run["states"] == ["Plan", "HasNewObjects", "Commit"]
    assert steps.calls == {"sessionize": [], "load": [], "aggregate": []}
    assert state.get_watermark() == T0 + timedelta(hours=1)
    assert CommitResult.model_validate(run["output"]).n_objects == 0


# -- the bridge itself ------------------------------------------------------------------------------------------
def test_installed_moto_has_the_internals_the_bridge_relies_on():
    # Given the installed moto, When the bridge checks it, Then nothing it relies on has moved
    bridge.check_moto_internals()


def test_the_bridge_refuses_a_moto_that_does_not_execute_state_machines():
    # Given moto started without the bridge's configuration
    from moto import mock_aws

    from clickstream.adapters.aws import reset_clients
    from clickstream_local.stack import create_resources, local_settings

    with mock_aws():
        stack = create_resources(local_settings(), with_cognito=False)
        # When the state machine is created, Then the error says which configuration is needed
        with pytest.raises(bridge.BridgeError, match="MOTO_CONFIG"):
            bridge.create_pipeline_state_machine(stack, Steps().functions())
        reset_clients()


def test_a_handler_exception_reaches_the_caller_as_a_lambda_function_error(sfn):
    # Given the pipeline's functions routed through the bridge, LoadWarehouse raising a typed error
    from clickstream.adapters.aws import client

    steps = Steps()
    steps.fail("load", lambda attempt: TransientError("db down"))
    bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    plan = {
        "run_id": "r",
        "execution_id": "e",
        "watermark_from": None,
        "watermark_to": iso(T0),
        "n_objects": 0,
        "n_buckets": 1,
        "manifest_key": "k",
        "buckets": [],
    }
    # When the function is invoked through the Lambda API
    resp = client("lambda").invoke(
        FunctionName="clickstream-local-load",
        Payload=json.dumps({"execution_id": "e", "plan": plan, "buckets": []}),
    )
    # Then the answer is Lambda's unhandled-error shape: the class name as errorType, the message, a trace
    body = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TransientError"
    assert body["errorMessage"] == "db down"
    assert any("in _record" in frame for frame in body["stackTrace"])


def test_each_handler_gets_a_lambda_like_context(sfn):
    # Given an Aggregate stand-in that reads its context
    seen = {}
    steps = Steps()

    def aggregate(event, context):
        seen.update(
            name=context.function_name,
            arn=context.invoked_function_arn,
            memory=context.memory_limit_in_mb,
            remaining=context.get_remaining_time_in_millis(),
            request_id=context.aws_request_id,
        )
        return steps.aggregate(event, context)

    _arrive(sfn["state"], "raw/a", T0)
    arn = bridge.create_pipeline_state_machine(sfn["stack"], {**steps.functions(), "aggregate": aggregate})
    # When the pipeline runs
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then the handler saw its own function's name and ARN, its memory, and time left before its timeout
    assert run["status"] == "SUCCEEDED", run
    assert seen["name"] == "clickstream-local-aggregate"
    assert seen["arn"].endswith(":function:clickstream-local-aggregate")
    shape = bridge.function_shape("aggregate")
    assert seen["memory"] == shape.memory_mb
    assert 0 < seen["remaining"] <= shape.timeout_seconds * 1000
    assert seen["request_id"]


def test_substitution_fills_every_placeholder_and_refuses_a_missing_one():
    # Given the real ASL
    text = asl_path().read_text(encoding="utf-8")
    # When its placeholders are listed, Then they are exactly the five functions and the failure topic
    assert bridge.placeholders(text) == {*bridge.FUNCTION_PLACEHOLDERS.values(), bridge.TOPIC_PLACEHOLDER}
    # And a full substitution leaves none behind and keeps the document valid JSON
    filled = bridge.substitute(text, {name: f"arn:{name}" for name in bridge.placeholders(text)})
    assert "${" not in filled
    assert json.loads(filled)["States"]["Plan"]["Parameters"]["FunctionName"] == "arn:PlanFunctionArn"
    # And a missing substitution is refused with its name
    with pytest.raises(bridge.BridgeError, match="CommitFunctionArn"):
        bridge.substitute(text, {name: "x" for name in bridge.placeholders(text) - {"CommitFunctionArn"}})


def test_the_template_substitutes_what_the_bridge_substitutes():
    # Given the stack's state machine in template.yaml
    subs = bridge.template_substitutions()
    if not subs:
        pytest.skip("template.yaml declares no state machine yet")
    # When its DefinitionSubstitutions are read, Then they fill the same placeholders as the local bridge,
    # each function placeholder with the function whose code is the same functions/<name> directory
    assert set(subs) == bridge.placeholders(asl_path().read_text(encoding="utf-8"))
    assert {p: subs[p] for p in bridge.FUNCTION_PLACEHOLDERS.values()} == {
        p: n for n, p in bridge.FUNCTION_PLACEHOLDERS.items()
    }


def test_function_shapes_come_from_the_template():
    # Given template.yaml's Globals and per-function settings
    # When the bridge reads the shape of a function, Then its own settings win over the Globals
    shape = bridge.function_shape("commit")
    resource = next(
        r
        for r in load_template()["Resources"].values()
        if r.get("Properties", {}).get("CodeUri") == "functions/commit/"
    )
    globals_ = load_template().get("Globals", {}).get("Function", {})
    props = {**globals_, **resource["Properties"]}
    assert shape == bridge.FunctionShape(memory_mb=props["MemorySize"], timeout_seconds=props["Timeout"])


def test_creating_the_machine_again_reroutes_its_functions(sfn):
    # Given a pipeline created with an always-failing Aggregate
    _arrive(sfn["state"], "raw/a", T0)
    broken = Steps()
    broken.fail("aggregate", lambda attempt: ValueError("broken build"))
    first_arn = bridge.create_pipeline_state_machine(sfn["stack"], broken.functions())
    # When it is created again with working steps (a redeploy)
    fixed = Steps()
    arn = bridge.create_pipeline_state_machine(sfn["stack"], fixed.functions())
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then the same state machine now runs the new code
    assert arn == first_arn
    assert run["status"] == "SUCCEEDED", run
    assert broken.calls["aggregate"] == [] and len(fixed.calls["aggregate"]) == 1


def test_functions_the_bridge_does_not_route_keep_moto_behaviour(sfn):
    # Given the pipeline's functions routed, and another function created directly in moto
    from clickstream.adapters.aws import client

    bridge.create_pipeline_state_machine(sfn["stack"], Steps().functions())
    lam = client("lambda")
    role = client("iam").get_role(RoleName="clickstream-local-pipeline")["Role"]["Arn"]
    lam.create_function(
        FunctionName="other",
        Runtime="python3.12",
        Role=role,
        Handler="app.h",
        Code={"ZipFile": bridge._placeholder_zip()},
    )
    # When it is invoked, Then moto's Docker-less Lambda echoes the payload as before
    resp = lam.invoke(FunctionName="other", Payload=json.dumps({"x": 1}))
    assert json.loads(resp["Payload"].read()) == {"x": 1}
    assert "FunctionError" not in resp


def test_unknown_or_missing_handlers_are_refused_with_their_name(sfn, tmp_path):
    # Given a mapping naming a step the pipeline does not have, and a functions dir without a handler
    # When the bridge is asked for them, Then it refuses, naming what is wrong
    with pytest.raises(bridge.BridgeError, match="validate"):
        bridge.create_pipeline_state_machine(sfn["stack"], {"validate": Steps().load})
    with pytest.raises(bridge.BridgeError, match="does not exist"):
        bridge.load_handler("plan", functions=tmp_path)


def test_real_handlers_are_loaded_by_file_path():
    # Given the committed functions/plan/app.py
    # When the bridge loads it twice, Then it is the module's lambda_handler, imported once
    first = bridge.load_handler("plan")
    assert first.__module__ == "clickstream_functions.plan.app"
    assert bridge.load_handler("plan") is first


# -- the real chain -----------------------------------------------------------------------------------------------
REAL_STEPS = ("plan", "sessionize", "load", "aggregate", "commit")


def _validated_object(path, visitors: int, events_each: int, start: datetime) -> int:
    """Write a validated-events Parquet file (the validate stage's contract) with page views 5 minutes apart."""
    import duckdb

    from clickstream.core.schema import validated_columns_sql

    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE v ({validated_columns_sql()})")
        line = 0
        for v in range(visitors):
            for e in range(events_each):
                ts = start + timedelta(minutes=5 * e)
                con.execute(
                    "INSERT INTO v (app_id, event_id, anonymous_id, event_type, event_ts, received_at, occurred_at,"
                    " page_url, page_path, is_bot, is_internal, ts_clamped, source_object, source_line)"
                    " VALUES ('shop-web', ?, ?, 'page_view', ?, ?, ?, ?, ?, false, false, false, 'raw/obj-1', ?)",
                    [
                        f"e-{v}-{e}",
                        f"visitor-{v}",
                        ts,
                        ts,
                        ts,
                        f"https://shop.example/p/{e}",
                        f"/p/{e}",
                        line,
                    ],
                )
                line += 1
        con.execute(f"COPY v TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    return visitors * events_each


def test_the_real_handlers_run_the_whole_chain(sfn, tmp_path, monkeypatch):
    # Given every step's real handler, a DuckDB warehouse, and one validated object of three visitors
    if not all((functions_dir() / name / "app.py").is_file() for name in REAL_STEPS):
        pytest.skip("not every pipeline step has its handler yet")
    import duckdb

    from clickstream.adapters.storage import S3ObjectStore
    from clickstream.core.config import get_settings

    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{warehouse}")
    get_settings.cache_clear()
    state = sfn["state"]
    n_events = _validated_object(tmp_path / "obj-1.parquet", visitors=3, events_each=4, start=T0)
    S3ObjectStore(sfn["settings"].lake_bucket).upload(tmp_path / "obj-1.parquet", "validated/obj-1.parquet")
    state.put_ledger(
        {
            "source_key": "raw/obj-1",
            "validated_at": T0 + timedelta(minutes=20),
            "validated_key": "validated/obj-1.parquet",
        }
    )
    arn = bridge.create_pipeline_state_machine(sfn["stack"])
    # When the pipeline runs for the hour, and once more for the next (empty) hour
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    again = bridge.run_pipeline(arn, "hourly-2", {"as_of": iso(T0 + timedelta(hours=2))})
    # Then both succeed, every event is in the warehouse with its session, and the watermark moved on
    assert run["status"] == "SUCCEEDED", run
    assert again["status"] == "SUCCEEDED", again
    assert again["states"] == ["Plan", "HasNewObjects", "Commit"]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(session_id) FROM events").fetchone() == (
            n_events,
            n_events,
        )
        assert con.execute("SELECT count(*), sum(n_events) FROM sessions").fetchone() == (3, n_events)
    finally:
        con.close()
    assert state.get_watermark() == T0 + timedelta(hours=2)
    assert _notifications(sfn["queue_url"]) == []


def test_the_bridge_pins_the_moto_range_the_project_installs():
    # Given pyproject.toml's moto requirement
    import re
    import tomllib

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    spec = next(r for r in pyproject["project"]["optional-dependencies"]["local"] if r.startswith("moto"))
    # When its bounds are read, Then the bridge checks exactly that range
    low = tuple(int(x) for x in re.search(r">=\s*([\d.]+)", spec).group(1).split(".")[:2])
    high = tuple(int(x) for x in re.search(r"<\s*([\d.]+)", spec).group(1).split(".")[:2])
    assert (low, high) == bridge.MOTO_VERSION_RANGE


def _warehouse_tables(path) -> tuple[list[tuple], list[tuple]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        events = con.execute(
            "SELECT event_id, session_id, anonymous_id FROM events ORDER BY event_id"
        ).fetchall()
        sessions = con.execute("SELECT * FROM sessions ORDER BY session_id").fetchall()
    finally:
        con.close()
    return events, sessions


def test_a_backfill_goes_through_the_distributed_map_and_leaves_the_watermark(sfn, tmp_path, monkeypatch):
    # Given every real handler, two validated objects of one arrival day, and an hourly run that loaded them
    from clickstream.adapters.storage import S3ObjectStore
    from clickstream.core.config import get_settings

    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{warehouse}")
    get_settings.cache_clear()
    state, lake = sfn["state"], S3ObjectStore(sfn["settings"].lake_bucket)
    for n in (1, 2):
        _validated_object(tmp_path / f"obj-{n}.parquet", visitors=3 * n, events_each=3, start=T0)
        key = f"validated/dt=2026-03-02/hr=09/obj-{n}.parquet"
        lake.upload(tmp_path / f"obj-{n}.parquet", key)
        state.put_ledger(
            {
                "source_key": f"raw/obj-{n}",
                "validated_at": T0 + n * timedelta(minutes=10),
                "validated_key": key,
            }
        )
    arn = bridge.create_pipeline_state_machine(sfn["stack"])
    hourly = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    assert hourly["status"] == "SUCCEEDED", hourly
    before = _warehouse_tables(warehouse)
    # When the day is back-filled, twice
    runs = [
        bridge.run_pipeline(arn, f"backfill-{i}", {"backfill": {"from": "2026-03-02", "to": "2026-03-02"}})
        for i in (1, 2)
    ]
    # Then each went through the Distributed Map (one item per bucket, read from the items Plan wrote) and Load
    for run in runs:
        assert run["status"] == "SUCCEEDED", run
        assert "SessionizeBackfill" in run["states"] and "Sessionize" not in run["states"]
        assert run["states"][-3:] == ["LoadWarehouse", "Aggregate", "Commit"]
    items = json.loads(lake.get_bytes("runs/backfill-1/items.json"))
    assert items == [{"bucket": b} for b in range(sfn["settings"].n_buckets)]
    # And the warehouse is what the hourly run left (re-processing changes nothing), the watermark unmoved
    assert _warehouse_tables(warehouse) == before and before[0]
    assert state.get_watermark() == T0 + timedelta(hours=1)
    assert adapters_for(sfn["settings"]).state.get_run("backfill-2")["kind"] == "backfill"


def test_the_backfill_map_reads_its_items_from_the_plan_manifest():
    # Given the ASL's back-fill branch
    branch = ASL["States"]["SessionizeBackfill"]
    # Then it is a Distributed Map whose ItemReader is the S3 object Plan names, running the same task
    assert branch["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert branch["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert branch["ItemReader"]["Parameters"] == {
        "Bucket.$": "$.plan.result.lake_bucket",
        "Key.$": "$.plan.result.items_key",
    }
    inline = ASL["States"]["Sessionize"]["ItemProcessor"]["States"]["SessionizeBucket"]
    assert branch["ItemProcessor"]["States"]["SessionizeBucket"] == inline
    assert ASL["States"]["HowToSessionize"]["Choices"][0]["Next"] == "SessionizeBackfill"


# -- the pipeline lease: one execution at a time ------------------------------------------------------------------
def test_a_run_started_while_another_holds_the_lease_is_skipped_and_a_backfill_refused(sfn):
    # Given the watermark at T0, an object to process, and a first execution that, while it loads the warehouse
    # (holding the pipeline lease), sees a second scheduled run and a back-fill started
    state, lake = sfn["state"], _lake(sfn)
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    steps = Steps()
    arn = ""
    during: dict[str, dict] = {}

    def load(event, context):
        during["lease"] = state.get_lease("pipeline")
        during["hourly-2"] = bridge.run_pipeline(arn, "hourly-2", {"as_of": iso(T0 + timedelta(hours=2))})
        during["backfill"] = bridge.run_pipeline(
            arn, "backfill-1", {"backfill": {"from": "2026-03-02", "to": "2026-03-02"}}
        )
        during["watermark"] = state.get_watermark()
        during["objects"] = sorted(lake.list_keys("runs/"))
        return steps.load(event, context)

    arn = bridge.create_pipeline_state_machine(sfn["stack"], {**steps.functions(), "load": load})
    # When the first execution runs
    first = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then the second scheduled run ended Skipped, a success, after Plan alone
    skipped = during["hourly-2"]
    assert during["lease"]["owner"] == first["execution_arn"]
    assert skipped["status"] == "SUCCEEDED", skipped
    assert skipped["states"] == ["Plan", "Skipped"]
    assert skipped["output"]["status"] == "SKIPPED" and skipped["output"]["reason"] == "PipelineBusy"
    assert first["execution_arn"] in skipped["output"]["cause"]
    # And the back-fill failed, naming the lease's holder, and took nothing from the first run's lease
    refused = during["backfill"]
    assert refused["status"] == "FAILED"
    assert [(f["state"], f["error"]) for f in refused["failures"]] == [("Plan", "RunRefused")]
    assert "SessionizeBackfill" not in refused["states"]
    assert refused["cause"].startswith("Pipeline step Plan failed with RunRefused: ")
    assert first["execution_arn"] in refused["cause"]
    # And neither wrote a manifest, touched the watermark or sessionized anything; the first run went on
    assert during["watermark"] == T0
    assert all(k.startswith("runs/hourly-1/") for k in during["objects"])
    assert {c["run_id"] for c in steps.calls["sessionize"]} == {"hourly-1"}
    assert first["status"] == "SUCCEEDED", first
    assert state.get_watermark() == T0 + timedelta(hours=1)
    assert adapters_for(sfn["settings"]).state.get_run("hourly-2") is None
    # And the only failure notice is the refused back-fill's; the first run gave the lease back
    notes = _notifications(sfn["queue_url"])
    assert len(notes) == 1 and "step Plan failed with RunRefused" in notes[0]["Message"]
    assert "backfill-1" in notes[0]["Message"]
    assert state.get_lease("pipeline") is None


def test_a_failed_run_gives_the_lease_back_so_the_next_run_goes_ahead(sfn):
    # Given a run that fails in Aggregate after Plan took the lease
    state = sfn["state"]
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    steps = Steps()
    steps.fail("aggregate", lambda attempt: ValueError("broken KPI") if attempt == 1 else None)
    arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
    failed = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then its failure path released the lease, still notified, and failed
    assert failed["status"] == "FAILED" and failed["error"] == "PipelineFailed"
    assert failed["states"][-4:] == ["AggregateFailed", "ReleaseLease", "NotifyFailure", "PipelineFailed"]
    assert state.get_lease("pipeline") is None
    [note] = _notifications(sfn["queue_url"])
    assert note["Message"].startswith("Clickstream pipeline step Aggregate failed with ValueError: ")
    # When the next scheduled run starts (long before the lease would have expired)
    run = bridge.run_pipeline(arn, "hourly-2", {"as_of": iso(T0 + timedelta(hours=2))})
    # Then it runs the window, commits and gives the lease back
    assert run["status"] == "SUCCEEDED", run
    assert "Skipped" not in run["states"]
    assert state.get_watermark() == T0 + timedelta(hours=2)
    assert CommitResult.model_validate(run["output"]).lease_released is True
    assert state.get_lease("pipeline") is None


def test_a_lease_left_by_a_dead_execution_blocks_runs_until_it_expires(sfn):
    # Given the pipeline clock at T0 + 1h and a lease an aborted execution never gave back, live for 30 min more
    from clickstream.core import clock

    state = sfn["state"]
    state.set_watermark(T0, "run-0")
    _arrive(state, "raw/a", T0 + timedelta(minutes=10))
    now = T0 + timedelta(hours=1)
    clock.set_clock(clock.SimulatedClock(now))
    try:
        state.acquire_lease("pipeline", "arn:aborted", now + timedelta(minutes=30), now=now)
        steps = Steps()
        arn = bridge.create_pipeline_state_machine(sfn["stack"], steps.functions())
        # When a scheduled run starts, Then it is skipped and the dead execution's lease stays as it was
        skipped = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(now)})
        assert skipped["states"] == ["Plan", "Skipped"]
        assert state.get_lease("pipeline") == {
            "owner": "arn:aborted",
            "until": iso(now + timedelta(minutes=30)),
        }
        assert state.get_watermark() == T0
        # When the pipeline clock reaches the lease's expiry, Then the next run takes it over and runs the window
        clock.set_clock(clock.SimulatedClock(now + timedelta(minutes=30)))
        run = bridge.run_pipeline(arn, "hourly-2", {"as_of": iso(now)})
    finally:
        clock.set_clock(None)
    assert run["status"] == "SUCCEEDED", run
    assert state.get_watermark() == now
    assert state.get_lease("pipeline") is None
