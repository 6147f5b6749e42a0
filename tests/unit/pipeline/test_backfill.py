"""The back-fill path of Plan, Commit and Load: arrival days in, items for the Distributed Map out, watermark kept."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from clickstream.adapters.factory import Adapters
from clickstream.core.errors import InputError
from clickstream.core.times import iso
from clickstream.pipeline.commit import CommitInput, run_commit
from clickstream.pipeline.load import LoadInput, bucket_results
from clickstream.pipeline.manifest import SessionizeResult, arrival_day, read_manifest, run_result_key
from clickstream.pipeline.plan import PlanInput, run_plan
from tests.unit.pipeline.conftest import T0
from tests.unit.pipeline.test_plan import _ledger


def _backfill(settings, name: str, start: str, end: str):
    payload = PlanInput(
        execution_id=f"arn:aws:states:us-east-1:123456789012:execution:p:{name}",
        execution_name=name,
        input={"backfill": {"from": start, "to": end}},
    )
    return run_plan(payload, settings)


def test_a_backfill_takes_the_objects_of_its_arrival_days_whatever_the_watermark(aws, state, lake):
    # Given objects that arrived over four days, a watermark after all of them, and an object with no valid event
    for day in range(4):
        _ledger(state, f"raw/o{day}", T0 + timedelta(days=day))
    _ledger(state, "raw/bad", T0 + timedelta(days=1, hours=1), validated=False)
    state.set_watermark(T0 + timedelta(days=10), "run-x")
    # When the middle two days are back-filled
    result = _backfill(aws.settings, "backfill-1", "2026-03-03", "2026-03-04")
    # Then the manifest holds exactly those days' objects, and the plan asks for the Distributed Map
    manifest = read_manifest(lake, "backfill-1")
    assert [o.source_key for o in manifest.objects if o.validated_key] == ["raw/o1", "raw/o2"]
    assert (result.kind, result.distributed, result.n_objects, result.buckets) == ("backfill", True, 2, [])
    assert result.lake_bucket == aws.settings.lake_bucket
    items = json.loads(lake.get_bytes(result.items_key))
    assert items == [{"bucket": b} for b in range(aws.settings.n_buckets)]
    # And the watermark is only recorded, never a window
    assert result.watermark_from == result.watermark_to == iso(T0 + timedelta(days=10))


def test_a_backfill_range_must_be_ordered(aws):
    # When the range ends before it starts, Then Plan refuses it as an input error naming the field
    with pytest.raises(InputError) as err:
        _backfill(aws.settings, "backfill-2", "2026-03-04", "2026-03-03")
    assert err.value.field == "backfill"


def test_committing_a_backfill_leaves_the_watermark(aws, state):
    # Given a watermark and a back-fill plan over earlier days
    _ledger(state, "raw/o0", T0)
    state.set_watermark(T0 + timedelta(hours=5), "run-x")
    plan = _backfill(aws.settings, "backfill-3", "2026-03-01", "2026-03-02")
    # When it is committed (twice)
    for _ in range(2):
        result = run_commit(
            CommitInput(execution_id=plan.execution_id, plan=plan),
            aws.settings,
            Adapters(aws.settings, state=state),
        )
    # Then the watermark stays, and the run is recorded as a back-fill that did not move it
    assert state.get_watermark() == T0 + timedelta(hours=5)
    assert result.watermark == iso(T0 + timedelta(hours=5))
    run = state.get_run("backfill-3")
    assert run["kind"] == "backfill" and run["watermark_moved"] is False


def test_load_reads_the_distributed_map_answers_from_the_lake(aws, state, lake):
    # Given a back-fill plan and each bucket's result.json, as the Sessionize tasks leave them
    _ledger(state, "raw/o0", T0)
    plan = _backfill(aws.settings, "backfill-4", "2026-03-02", "2026-03-02")
    for bucket in range(plan.n_buckets):
        answer = SessionizeResult(run_id=plan.run_id, bucket=bucket, n_events=bucket)
        lake.put_bytes(run_result_key(plan.run_id, bucket), answer.model_dump_json().encode())
    # When Load resolves the answers of a payload without any (the ASL passes an empty list)
    results = bucket_results(LoadInput(execution_id="x", plan=plan, buckets=[]), lake)
    # Then it has one per bucket, read from the lake
    assert [(r.bucket, r.n_events) for r in results] == [(b, b) for b in range(plan.n_buckets)]


def test_arrival_day_comes_from_the_lake_partition():
    assert str(arrival_day("validated/dt=2026-03-02/hr=10/x.parquet")) == "2026-03-02"
    assert arrival_day("validated/x.parquet") is None and arrival_day(None) is None
