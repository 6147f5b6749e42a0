"""The stack's side of the back-fill: the Distributed Map's permissions and its items, read from template.yaml."""

from __future__ import annotations

import json

import pytest

from clickstream.local.template import ASL_PATH, load_template


@pytest.fixture(scope="module")
def machine() -> dict:
    return load_template()["Resources"]["PipelineStateMachine"]["Properties"]


def _statements(machine: dict) -> list[dict]:
    return [s for p in machine["Policies"] if "Statement" in p for s in p["Statement"]]


def test_the_machine_may_start_and_follow_its_own_child_executions(machine):
    # Given the state machine's name and its inline policy statements
    name = machine["Name"]["Fn::Sub"]
    statements = _statements(machine)
    # Then it may start executions of itself (the Distributed Map's children) and describe or stop them
    start = next(s for s in statements if s["Action"] == "states:StartExecution")
    assert start["Resource"]["Fn::Sub"].endswith(f":stateMachine:{name}")
    follow = next(s for s in statements if "states:DescribeExecution" in s["Action"])
    assert set(follow["Action"]) == {"states:DescribeExecution", "states:StopExecution"}
    assert follow["Resource"]["Fn::Sub"].endswith(f":execution:{name}/*")


def test_the_machine_may_read_the_items_plan_writes_to_the_lake(machine):
    # Given the ASL's back-fill branch, which reads items from the bucket Plan names
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    reader = asl["States"]["SessionizeBackfill"]["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    # Then the machine may read the run's items Plan writes under runs/ in the lake, and no other object
    from clickstream.core.keys import RUNS_PREFIX
    from clickstream.pipeline.plan import items_key

    assert items_key("some-run").startswith(RUNS_PREFIX)
    reads = [s for s in _statements(machine) if "s3:GetObject" in s["Action"]]
    assert [s["Resource"] for s in reads] == [
        {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{LakeBucket}}/{RUNS_PREFIX}*"}
    ]


def test_back_fill_concurrency_stays_within_a_lambda_account_default(machine):
    # Given the Distributed Map's concurrency
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    branch = asl["States"]["SessionizeBackfill"]
    # Then it is a number (Step Functions refuses a string) well under the default 1,000 concurrent Lambdas
    assert isinstance(branch["MaxConcurrency"], int) and 0 < branch["MaxConcurrency"] <= 100
    assert branch["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
