"""The Commit step: the watermark moves forward only, and each run is recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clickstream.adapters.factory import adapters_for
from clickstream.adapters.state import DynamoStateStore
from clickstream.core.times import iso
from clickstream.pipeline.commit import CommitInput, CommitResult, run_commit
from clickstream.pipeline.lease import LeaseLost, acquire_pipeline_lease
from clickstream.pipeline.manifest import PlanResult
from tests.conftest import load_event
from tests.unit.pipeline.conftest import T0


def _plan(run_id: str, watermark_from, watermark_to, n_objects: int = 3) -> PlanResult:
    return PlanResult(
        run_id=run_id,
        execution_id=f"arn:aws:states:us-east-1:123456789012:execution:p:{run_id}",
        watermark_from=iso(watermark_from) if watermark_from else None,
        watermark_to=iso(watermark_to),
        n_objects=n_objects,
        n_buckets=4,
        manifest_key=f"runs/{run_id}/manifest.json",
        buckets=[0, 1, 2, 3] if n_objects else [],
    )


def _commit(settings, run_id: str, watermark_from, watermark_to, n_objects: int = 3) -> CommitResult:
    """Commit a run whose execution holds the pipeline lease, as Plan left it (a second commit of a committed run
    finds the lease given back, which it may)."""
    plan = _plan(run_id, watermark_from, watermark_to, n_objects)
    if adapters_for(settings).state.get_run(run_id) is None:
        acquire_pipeline_lease(DynamoStateStore(settings.state_table), plan.execution_id, 120, manual=False)
    return run_commit(CommitInput(execution_id=plan.execution_id, plan=plan), settings)


def test_commit_moves_the_watermark_to_the_end_of_the_window(aws, state, sim_clock):
    # Given a watermark at T0
    state.set_watermark(T0, "run-0")
    sim_clock.set(T0 + timedelta(hours=1, minutes=7))
    # When the run that covered (T0, T0 + 1h] commits
    result = _commit(aws.settings, "run-1", T0, T0 + timedelta(hours=1))
    # Then the watermark is at T0 + 1h, set by that run
    assert state.get_watermark() == T0 + timedelta(hours=1)
    assert state.watermark_run() == "run-1"
    assert result == CommitResult(
        run_id="run-1", watermark=iso(T0 + timedelta(hours=1)), n_objects=3, lease_released=True
    )


def test_commit_records_the_run_with_its_window_counts_and_time(aws, state, sim_clock):
    # Given the clock at T0 + 1h 7min
    sim_clock.set(T0 + timedelta(hours=1, minutes=7))
    # When a first run (no earlier watermark) commits
    _commit(aws.settings, "run-1", None, T0 + timedelta(hours=1), n_objects=5)
    # Then the state table holds the run's record
    run = adapters_for(aws.settings).state.get_run("run-1")
    assert run is not None
    assert run["status"] == "SUCCEEDED"
    assert run["execution_id"].endswith(":run-1")
    assert "watermark_from" not in run  # the first window had no start
    assert run["watermark_to"] == iso(T0 + timedelta(hours=1))
    assert run["n_objects"] == 5
    assert run["buckets"] == 4
    assert run["watermark_moved"] is True
    assert run["committed_at"] == iso(T0 + timedelta(hours=1, minutes=7))
    assert state.get_run("run-1") == run


def test_a_replayed_older_run_never_moves_the_watermark_back(aws, state):
    # Given the watermark already at T0 + 2h
    state.set_watermark(T0 + timedelta(hours=2), "run-2")
    # When an older execution's Commit is replayed
    result = _commit(aws.settings, "run-1", T0, T0 + timedelta(hours=1))
    # Then the watermark stays at T0 + 2h, still owned by run-2, and the replay says so
    assert state.get_watermark() == T0 + timedelta(hours=2)
    assert state.watermark_run() == "run-2"
    assert result.watermark == iso(T0 + timedelta(hours=2))
    assert adapters_for(aws.settings).state.get_run("run-1")["watermark_moved"] is False


def test_an_empty_window_at_the_watermark_leaves_it_in_place(aws, state):
    # Given a run whose window ends exactly at the current watermark (nothing to do)
    state.set_watermark(T0, "run-0")
    # When it commits
    result = _commit(aws.settings, "run-1", T0, T0, n_objects=0)
    # Then the watermark and its owner are unchanged, and the run is still recorded
    assert state.watermark_run() == "run-0"
    assert result.watermark == iso(T0)
    assert adapters_for(aws.settings).state.get_run("run-1")["n_objects"] == 0


def test_committing_the_same_run_twice_has_the_effect_of_once(aws, state, sim_clock):
    # Given a committed run
    sim_clock.set(T0 + timedelta(hours=1))
    first = _commit(aws.settings, "run-1", T0, T0 + timedelta(hours=1))
    record = adapters_for(aws.settings).state.get_run("run-1")
    # When Commit is retried later
    sim_clock.advance(3600)
    second = _commit(aws.settings, "run-1", T0, T0 + timedelta(hours=1))
    # Then the answer (but for the lease, which the first commit gave back), the watermark and the record are
    # unchanged
    assert first.lease_released and not second.lease_released
    assert second.model_copy(update={"lease_released": True}) == first
    assert state.get_watermark() == T0 + timedelta(hours=1)
    assert adapters_for(aws.settings).state.get_run("run-1") == record


def test_an_uncommitted_run_has_no_record(aws):
    # Given a run that never reached Commit
    # When its record is read, Then there is none
    assert adapters_for(aws.settings).state.get_run("never") is None


def test_commit_handler_answers_the_commit_result(aws, state):
    # Given the sample event sam local invoke uses, and the watermark at its window's start
    from clickstream_local.bridge import FakeLambdaContext, load_handler

    event = load_event("commit.json")
    state.set_watermark(T0, "run-0")
    acquire_pipeline_lease(state, event["execution_id"], 120, manual=False)  # as Plan left it
    handler = load_handler("commit")
    # When the handler runs
    answer = handler(
        event,
        FakeLambdaContext(
            "clickstream-local-commit",
            "arn:aws:lambda:us-east-1:123456789012:function:clickstream-local-commit",
        ),
    )
    # Then the watermark moved to the window's end and the answer is a CommitResult
    assert CommitResult.model_validate(answer).watermark == event["plan"]["watermark_to"]
    assert iso(state.get_watermark()) == event["plan"]["watermark_to"]
    assert adapters_for(aws.settings).state.get_run(event["plan"]["run_id"])["status"] == "SUCCEEDED"


@pytest.mark.parametrize("holder", ["arn:aws:states:us-east-1:123456789012:execution:p:other", None])
def test_an_execution_that_lost_the_lease_moves_nothing(aws, state, sim_clock, holder):
    # Given a watermark at T0, and the pipeline lease held by another execution (or by nobody: it was given back)
    state.set_watermark(T0, "run-0")
    if holder:
        acquire_pipeline_lease(state, holder, 120, manual=False)
    plan = _plan("run-1", T0, T0 + timedelta(hours=1))
    # When run-1's execution commits
    with pytest.raises(LeaseLost) as refused:
        run_commit(CommitInput(execution_id=plan.execution_id, plan=plan), aws.settings)
    # Then it is refused by name, the watermark and the lease stay, and no run is recorded
    assert plan.execution_id in str(refused.value)
    assert state.get_watermark() == T0
    assert (state.get_lease("pipeline") or {}).get("owner") == holder
    assert adapters_for(aws.settings).state.get_run("run-1") is None


def test_an_expired_lease_nobody_took_still_lets_its_execution_commit(aws, state, sim_clock):
    # Given run-1's execution took the lease at T0 for 1 minute, and nobody took it since
    sim_clock.set(T0)
    plan = _plan("run-1", None, T0 + timedelta(hours=1))
    acquire_pipeline_lease(state, plan.execution_id, 1, manual=False)
    sim_clock.set(T0 + timedelta(hours=3))
    # When the execution commits long after the lease expired
    result = run_commit(CommitInput(execution_id=plan.execution_id, plan=plan), aws.settings)
    # Then the watermark moves: no other execution can have run
    assert result.watermark == iso(T0 + timedelta(hours=1))
