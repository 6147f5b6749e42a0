"""Property: whatever the schedule, consecutive Plan → Commit runs take every arrived object exactly once."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.adapters.factory import Adapters
from clickstream.core.config import Settings
from clickstream.core.times import iso, parse_instant
from clickstream.pipeline.commit import CommitInput, ReleaseInput, release_run, run_commit
from clickstream.pipeline.manifest import read_manifest
from clickstream.pipeline.plan import PlanInput, run_plan
from tests.fakes.state import MemoryStateStore
from tests.fakes.storage import MemoryObjectStore
from tests.unit.pipeline.conftest import T0

minutes = st.integers(min_value=0, max_value=600)


@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(minutes, max_size=25),
    schedule=st.lists(st.tuples(minutes, st.booleans()), min_size=1, max_size=10),
)
def test_incremental_runs_partition_the_arrivals(arrivals, schedule):
    # Given objects arriving at arbitrary minutes, and a schedule of runs whose as_of may repeat or go back,
    # some of which fail before Commit
    state, lake, cfg = MemoryStateStore(), MemoryObjectStore(), Settings(n_buckets=3)
    for i, minute in enumerate(arrivals):
        state.put_ledger(
            {
                "source_key": f"raw/o{i:03d}",
                "validated_at": T0 + timedelta(minutes=minute),
                "validated_key": f"validated/o{i:03d}.parquet",
            }
        )
    committed: list[str] = []
    # When each run plans, and the successful ones commit
    for n, (minute, fails) in enumerate(schedule):
        name = f"run-{n}"
        plan = run_plan(
            PlanInput(
                execution_id=name, execution_name=name, input={"as_of": iso(T0 + timedelta(minutes=minute))}
            ),
            cfg,
            Adapters(cfg, state=state, lake=lake),
        )
        assert plan.buckets == (list(range(3)) if plan.n_objects else [])
        if fails:  # the failure path gives the pipeline lease back
            release_run(ReleaseInput(action="release", execution_id=name), cfg, Adapters(cfg, state=state))
            continue
        run_commit(CommitInput(execution_id=name, plan=plan), cfg, Adapters(cfg, state=state))
        committed.extend(o.source_key for o in read_manifest(lake, name).objects)
    # Then the committed runs took each object up to the watermark exactly once, and none after it
    successes = [minute for minute, fails in schedule if not fails]
    if not successes:
        assert state.get_watermark() is None
        return
    watermark = T0 + timedelta(minutes=max(successes))
    assert state.get_watermark() == watermark
    expected = sorted(
        f"raw/o{i:03d}" for i, m in enumerate(arrivals) if T0 + timedelta(minutes=m) <= watermark
    )
    assert sorted(committed) == expected
    assert len(committed) == len(set(committed))
    assert all(
        parse_instant(state.get_run(f"run-{n}")["watermark"]) <= watermark
        for n in range(len(schedule))
        if not schedule[n][1]
    )
