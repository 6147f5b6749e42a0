"""Plan takes the pipeline lease, Commit and the failure path's release give it back (state table in moto)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clickstream.adapters.factory import Adapters
from clickstream.core.times import iso
from clickstream.pipeline.commit import CommitInput, ReleaseInput, release_run, run_commit
from clickstream.pipeline.lease import PIPELINE_LEASE, PipelineBusy, RunRefused
from clickstream.pipeline.manifest import manifest_key
from clickstream.pipeline.plan import PlanInput, run_plan
from tests.conftest import load_event
from tests.unit.pipeline.conftest import T0


def _payload(name: str, **input_) -> PlanInput:
    return PlanInput(execution_id=f"arn:exec:{name}", execution_name=name, input=input_)


def _arrive(state, key: str, at) -> None:
    state.put_ledger(
        {"source_key": key, "validated_at": at, "validated_key": f"validated/dt=2026-03-02/{key}.parquet"}
    )


def test_plan_takes_the_lease_for_its_execution_for_the_configured_time(aws, state, lake, sim_clock):
    # Given a lease bound of 45 minutes
    settings = aws.settings.replace(pipeline_lease_minutes=45)
    # When Plan runs
    run_plan(_payload("run-1", as_of=iso(T0)), settings, Adapters(settings, state=state, lake=lake))
    # Then its execution holds the lease until now + 45 min
    assert state.get_lease(PIPELINE_LEASE) == {
        "owner": "arn:exec:run-1",
        "until": iso(T0 + timedelta(minutes=45)),
    }


def test_a_retried_plan_re_acquires_its_own_lease_and_keeps_its_window(aws, state, lake, sim_clock):
    # Given Plan ran once for run-1
    _arrive(state, "raw/a", T0 - timedelta(minutes=20))
    first = run_plan(_payload("run-1"), aws.settings, Adapters(aws.settings, state=state, lake=lake))
    # When the same execution's Plan is retried a minute later
    sim_clock.advance(60)
    again = run_plan(_payload("run-1"), aws.settings, Adapters(aws.settings, state=state, lake=lake))
    # Then it succeeds with the same window, still holding the lease
    assert again == first
    assert state.get_lease(PIPELINE_LEASE)["owner"] == "arn:exec:run-1"


@pytest.mark.parametrize(
    ("input_", "error"),
    [
        ({}, PipelineBusy),
        ({"as_of": iso(T0)}, PipelineBusy),
        ({"full": True}, RunRefused),
        ({"backfill": {"from": "2026-03-02", "to": "2026-03-02"}}, RunRefused),
    ],
)
def test_plan_of_another_execution_is_busy_and_writes_nothing(aws, state, lake, sim_clock, input_, error):
    # Given run-1 planned and holds the lease, with the watermark at T0
    state.set_watermark(T0 - timedelta(hours=1), "run-0")
    _arrive(state, "raw/a", T0 - timedelta(minutes=20))
    run_plan(_payload("run-1"), aws.settings, Adapters(aws.settings, state=state, lake=lake))
    # When another execution plans (scheduled, full or back-fill)
    with pytest.raises(PipelineBusy) as busy:
        run_plan(_payload("run-2", **input_), aws.settings, Adapters(aws.settings, state=state, lake=lake))
    # Then a scheduled run is told busy, an operator's run is refused, both naming the holder
    assert type(busy.value) is error
    assert busy.value.holder == "arn:exec:run-1" and "arn:exec:run-1" in busy.value.message
    # And nothing of run-2 was written, and the lease is still run-1's
    assert not lake.exists(manifest_key("run-2"))
    assert list(lake.list_keys("runs/run-2/")) == []
    assert state.get_lease(PIPELINE_LEASE)["owner"] == "arn:exec:run-1"
    assert state.get_watermark() == T0 - timedelta(hours=1)


def test_commit_gives_the_lease_back_after_moving_the_watermark(aws, state, lake, sim_clock):
    # Given run-1 planned
    plan = run_plan(
        _payload("run-1", as_of=iso(T0)), aws.settings, Adapters(aws.settings, state=state, lake=lake)
    )
    # When it commits, twice (a retried Commit)
    results = [
        run_commit(
            CommitInput(execution_id="arn:exec:run-1", plan=plan),
            aws.settings,
            Adapters(aws.settings, state=state),
        )
        for _ in "ab"
    ]
    # Then the watermark moved, the lease is free, and only the first commit had a lease to give back
    assert state.get_watermark() == T0
    assert state.get_lease(PIPELINE_LEASE) is None
    assert [r.lease_released for r in results] == [True, False]
    # And the next execution plans at once
    run_plan(
        _payload("run-2", as_of=iso(T0 + timedelta(hours=1))),
        aws.settings,
        Adapters(aws.settings, state=state, lake=lake),
    )
    assert state.get_lease(PIPELINE_LEASE)["owner"] == "arn:exec:run-2"


def test_the_failure_release_frees_only_its_own_lease(aws, state, lake, sim_clock):
    # Given run-1 holds the lease
    run_plan(_payload("run-1", as_of=iso(T0)), aws.settings, Adapters(aws.settings, state=state, lake=lake))
    # When a refused run's failure path releases, Then run-1 keeps the lease
    other = release_run(
        ReleaseInput(action="release", execution_id="arn:exec:run-2"),
        aws.settings,
        Adapters(aws.settings, state=state),
    )
    assert other.released is False
    assert state.get_lease(PIPELINE_LEASE)["owner"] == "arn:exec:run-1"
    # When run-1's failure path releases, Then the lease is free and the watermark did not move
    mine = release_run(
        ReleaseInput(action="release", execution_id="arn:exec:run-1"),
        aws.settings,
        Adapters(aws.settings, state=state),
    )
    assert mine.released is True
    assert state.get_lease(PIPELINE_LEASE) is None
    assert state.get_watermark() is None


def test_the_commit_handler_releases_on_the_failure_path(aws, state, lake, sim_clock):
    # Given run-1 holds the lease
    from clickstream_local.bridge import FakeLambdaContext, load_handler

    event = load_event("commit_release.json")  # the failure path's payload, as the ASL sends it
    name = event["execution_id"].rsplit(":", 1)[1]
    plan = PlanInput(execution_id=event["execution_id"], execution_name=name, input={"as_of": iso(T0)})
    run_plan(plan, aws.settings, Adapters(aws.settings, state=state, lake=lake))
    handler = load_handler("commit")
    # When the Commit function gets {"action": "release"}
    answer = handler(
        event, FakeLambdaContext("commit", "arn:aws:lambda:us-east-1:123456789012:function:commit")
    )
    # Then it gave the lease back without committing anything
    assert answer == {"execution_id": event["execution_id"], "released": True}
    assert state.get_lease(PIPELINE_LEASE) is None
    assert state.get_watermark() is None
