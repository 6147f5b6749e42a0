"""Fencing: a Sessionize step that names its execution writes the bucket state only while that execution holds the
pipeline lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream.adapters.factory import Adapters
from clickstream.adapters.state import DynamoStateStore
from clickstream.pipeline.lease import LeaseLost, acquire_pipeline_lease
from clickstream.pipeline.sessionize import SessionizeInput, run_sessionize
from tests.unit.pipeline.test_sessionize import lake, put_run  # noqa: F401  (the lake fixture)
from tests.unit.sessionize.data import T0, Stream

OURS = "arn:aws:states:us-east-1:123456789012:execution:p:run-1"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:p:run-2"


def _window(lake, tmp_path: Path) -> None:  # noqa: F811
    s = Stream("raw/first")
    s.add("A", T0)
    s.add("B", T0)
    put_run(lake, tmp_path, "run-1", s.rows)


def test_a_step_whose_execution_lost_the_lease_writes_nothing(aws, lake, tmp_path: Path) -> None:  # noqa: F811
    # Given a run's window, and the pipeline lease held by another execution
    _window(lake, tmp_path)
    state = DynamoStateStore(aws.settings.state_table)
    acquire_pipeline_lease(state, OTHER, 120, manual=False)
    before = set(lake.list_keys(""))
    # When the run's Sessionize step runs for its execution
    with pytest.raises(LeaseLost) as refused:
        run_sessionize(
            SessionizeInput(run_id="run-1", bucket=0, execution_id=OURS),
            aws.settings,
            Adapters(aws.settings, lake=lake),
        )
    # Then it is refused naming both executions, and the lake is as it was: no state, no run outputs
    assert OURS in str(refused.value) and OTHER in str(refused.value)
    assert set(lake.list_keys("")) == before


def test_a_step_whose_execution_holds_the_lease_writes_the_state(aws, lake, tmp_path: Path) -> None:  # noqa: F811
    # Given a run's window, and the lease held by the run's own execution
    _window(lake, tmp_path)
    acquire_pipeline_lease(DynamoStateStore(aws.settings.state_table), OURS, 120, manual=False)
    # When its Sessionize step runs
    result = run_sessionize(
        SessionizeInput(run_id="run-1", bucket=0, execution_id=OURS),
        aws.settings,
        Adapters(aws.settings, lake=lake),
    )
    # Then the bucket state is written
    assert result.n_sessions == 2
    assert any(k.endswith("/state.json") for k in lake.list_keys("sessionized/"))


def test_a_step_without_an_execution_is_not_fenced(aws, lake, tmp_path: Path) -> None:  # noqa: F811
    # Given a run's window and no lease at all (the CLI and tests call the step directly)
    _window(lake, tmp_path)
    # When the step runs without naming an execution
    result = run_sessionize(
        SessionizeInput(run_id="run-1", bucket=0), aws.settings, Adapters(aws.settings, lake=lake)
    )
    # Then it writes the state
    assert result.n_sessions == 2
