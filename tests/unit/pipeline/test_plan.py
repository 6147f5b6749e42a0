"""The Plan step: which ledger rows a run takes, and the manifest it writes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from clickstream.core.errors import InputError
from clickstream.core.times import iso, parse_instant
from clickstream.pipeline.manifest import Manifest, PlanResult, manifest_key, read_manifest
from clickstream.pipeline.plan import PlanInput, run_plan
from tests.conftest import load_event
from tests.unit.pipeline.conftest import T0


def _ledger(state, key: str, at, *, validated: bool = True, had_valid: bool = False) -> None:
    row = {"source_key": key, "validated_at": at, "events_in": 2, "validated": 2 if validated else 0}
    row["had_valid"] = validated or had_valid
    if validated:
        row["validated_key"] = f"validated/dt={at:%Y-%m-%d}/hr={at:%H}/{key.rsplit('/', 1)[-1]}.parquet"
    state.put_ledger(row)


def _plan(settings, name: str = "run-1", **input_) -> PlanResult:
    payload = PlanInput(
        execution_id=f"arn:aws:states:us-east-1:123456789012:execution:p:{name}",
        execution_name=name,
        input=input_,
    )
    return run_plan(payload, settings)


def test_plan_takes_rows_after_the_watermark_up_to_and_including_as_of(aws, state):
    # Given a watermark at T0 and objects validated before, at, between and after the window
    state.set_watermark(T0, "run-0")
    for i, minutes in enumerate((-10, 0, 20, 60, 61)):
        _ledger(state, f"raw/o{i}", T0 + timedelta(minutes=minutes))
    # When Plan runs with as_of = T0 + 1h
    result = _plan(aws.settings, as_of=iso(T0 + timedelta(hours=1)))
    # Then it takes exactly (T0, T0 + 1h] and names every bucket
    manifest = read_manifest(_lake(aws), "run-1")
    assert [o.source_key for o in manifest.objects] == ["raw/o2", "raw/o3"]
    assert result.watermark_from == iso(T0)
    assert result.watermark_to == iso(T0 + timedelta(hours=1))
    assert result.n_objects == 2
    assert result.buckets == list(range(aws.settings.n_buckets))
    assert result.n_buckets == aws.settings.n_buckets


def test_first_run_without_a_watermark_starts_at_the_first_arrival(aws, state):
    # Given no watermark and two objects
    _ledger(state, "raw/a", T0)
    _ledger(state, "raw/b", T0 + timedelta(minutes=5))
    # When Plan runs
    result = _plan(aws.settings, as_of=iso(T0 + timedelta(hours=1)))
    # Then it takes both and records that the window had no start
    assert result.watermark_from is None
    assert result.n_objects == 2


def test_as_of_defaults_to_now_minus_the_arrival_settle_delay(aws, state, sim_clock):
    # Given settle delay of 5 minutes, the clock at T0 + 1h, and objects validated 6 and 4 minutes ago
    settings = aws.settings.replace(arrival_settle_seconds=300)
    sim_clock.set(T0 + timedelta(hours=1))
    _ledger(state, "raw/settled", T0 + timedelta(minutes=54))
    _ledger(state, "raw/in-flight", T0 + timedelta(minutes=56))
    # When Plan runs without an as_of
    result = _plan(settings)
    # Then the window ends 5 minutes before now and the in-flight object waits for the next run
    assert result.watermark_to == iso(T0 + timedelta(minutes=55))
    assert [o.source_key for o in read_manifest(_lake(aws), "run-1").objects] == ["raw/settled"]


def test_empty_window_plans_no_buckets_but_still_writes_a_manifest(aws, state):
    # Given a watermark and no object arrived since
    state.set_watermark(T0, "run-0")
    _ledger(state, "raw/old", T0 - timedelta(minutes=1))
    # When Plan runs an hour later
    result = _plan(aws.settings, as_of=iso(T0 + timedelta(hours=1)))
    # Then nothing is to be sessionized, and the window still advances to as_of
    assert result.n_objects == 0
    assert result.buckets == []
    assert result.watermark_to == iso(T0 + timedelta(hours=1))
    assert read_manifest(_lake(aws), "run-1").objects == []


def test_objects_without_valid_events_are_listed_but_not_counted(aws, state):
    # Given one object with valid events and one whose events were all quarantined
    _ledger(state, "raw/good", T0)
    _ledger(state, "raw/all-bad", T0 + timedelta(minutes=1), validated=False)
    # When Plan runs
    result = _plan(aws.settings, as_of=iso(T0 + timedelta(hours=1)))
    manifest = read_manifest(_lake(aws), "run-1")
    # Then both are in the manifest (the window covered them), only one counts as work
    assert {o.source_key: o.validated_key for o in manifest.objects}["raw/all-bad"] is None
    assert result.n_objects == 1
    assert result.buckets


def test_only_quarantined_objects_means_nothing_to_sessionize(aws, state):
    # Given only an object with no valid event
    _ledger(state, "raw/all-bad", T0, validated=False)
    # When Plan runs
    result = _plan(aws.settings, as_of=iso(T0 + timedelta(hours=1)))
    # Then the state machine will go straight to Commit
    assert result.n_objects == 0
    assert result.buckets == []


def test_an_object_that_lost_all_its_valid_rows_is_still_sessionized(aws, state):
    # Given only an object that an earlier validation gave valid rows and a re-validation none
    _ledger(state, "raw/emptied", T0, validated=False, had_valid=True)
    # When Plan runs
    result = _plan(aws.settings, as_of=iso(T0 + timedelta(hours=1)))
    # Then the run sessionizes every bucket, so the object's old rows leave the state
    assert result.n_objects == 1
    assert result.buckets == list(range(aws.settings.n_buckets))
    assert read_manifest(_lake(aws), "run-1").objects[0].had_valid


def test_as_of_not_after_the_watermark_plans_nothing_and_keeps_the_watermark(aws, state):
    # Given a watermark at T0 and an object validated before it
    state.set_watermark(T0, "run-0")
    _ledger(state, "raw/a", T0 - timedelta(minutes=30))
    # When Plan runs with an as_of earlier than the watermark (a replayed old schedule)
    result = _plan(aws.settings, as_of=iso(T0 - timedelta(hours=1)))
    # Then it plans nothing and its window ends at the watermark (Commit will not move it back)
    assert result.n_objects == 0
    assert result.watermark_to == iso(T0)
    assert read_manifest(_lake(aws), "run-1").objects == []


def test_full_mode_takes_every_arrived_object(aws, state):
    # Given a watermark at T0 and objects before and after it
    state.set_watermark(T0, "run-0")
    _ledger(state, "raw/early", T0 - timedelta(days=2))
    _ledger(state, "raw/before", T0 - timedelta(minutes=1))
    _ledger(state, "raw/after", T0 + timedelta(minutes=1))
    _ledger(state, "raw/future", T0 + timedelta(hours=2))
    # When Plan runs in full mode up to T0 + 1h
    result = _plan(aws.settings, as_of=iso(T0 + timedelta(hours=1)), full=True)
    # Then every object up to as_of is taken, in arrival order, whatever the watermark
    keys = [o.source_key for o in read_manifest(_lake(aws), "run-1").objects]
    assert keys == ["raw/early", "raw/before", "raw/after"]
    assert result.n_objects == 3
    assert result.watermark_from == iso(T0)


def test_full_mode_never_stops_short_of_the_watermark(aws, state):
    # Given a watermark at T0 and an object validated just before it
    state.set_watermark(T0, "run-0")
    _ledger(state, "raw/before", T0 - timedelta(minutes=1))
    # When a full run is asked up to a time before the watermark
    result = _plan(aws.settings, as_of=iso(T0 - timedelta(hours=1)), full=True)
    # Then it still covers everything the earlier runs took
    assert result.watermark_to == iso(T0)
    assert result.n_objects == 1


def test_manifest_is_written_under_the_run_prefix_with_each_object(aws, state):
    # Given one object
    _ledger(state, "raw/dt=2026-03-02/hr=09/obj-1", T0 + timedelta(seconds=1, microseconds=5))
    # When Plan runs
    result = _plan(aws.settings, name="hourly-2026-03-02T10", as_of="2026-03-02T10:00:00Z")
    # Then the manifest sits at runs/<run_id>/manifest.json and lists the object's keys and arrival time
    assert result.manifest_key == "runs/hourly-2026-03-02T10/manifest.json"
    raw = json.loads(_lake(aws).get_bytes(result.manifest_key))
    assert raw["run_id"] == "hourly-2026-03-02T10"
    assert raw["watermark_to"] == "2026-03-02T10:00:00.000000Z"
    assert raw["objects"] == [
        {
            "source_key": "raw/dt=2026-03-02/hr=09/obj-1",
            "validated_key": "validated/dt=2026-03-02/hr=09/obj-1.parquet",
            "validated_at": "2026-03-02T09:00:01.000005Z",
            "had_valid": True,
        }
    ]
    assert Manifest.model_validate(raw).n_buckets == aws.settings.n_buckets


def test_rerun_with_the_same_input_writes_the_same_manifest(aws, state):
    # Given a window with two objects
    state.set_watermark(T0, "run-0")
    _ledger(state, "raw/b", T0 + timedelta(minutes=2))
    _ledger(state, "raw/a", T0 + timedelta(minutes=2))
    as_of = iso(T0 + timedelta(hours=1))
    # When Plan runs twice with the same input
    first = _plan(aws.settings, as_of=as_of)
    first_bytes = _lake(aws).get_bytes(first.manifest_key)
    second = _plan(aws.settings, as_of=as_of)
    # Then the answers and the manifest's bytes are identical (ties ordered by source key)
    assert second == first
    assert _lake(aws).get_bytes(second.manifest_key) == first_bytes
    assert [o.source_key for o in read_manifest(_lake(aws), "run-1").objects] == ["raw/a", "raw/b"]


def test_retried_plan_without_as_of_keeps_the_window_it_chose(aws, state, sim_clock):
    # Given a Plan that ran at T0 + 1h without an explicit as_of
    state.set_watermark(T0, "run-0")
    _ledger(state, "raw/a", T0 + timedelta(minutes=10))
    sim_clock.set(T0 + timedelta(hours=1))
    first = _plan(aws.settings)
    # When the same execution retries Plan later, after another object arrived
    sim_clock.advance(600)
    _ledger(state, "raw/b", T0 + timedelta(hours=1, minutes=5))
    second = _plan(aws.settings)
    # Then the retry keeps the first window: the later object belongs to the next run
    assert second == first
    assert [o.source_key for o in read_manifest(_lake(aws), "run-1").objects] == ["raw/a"]


def test_a_new_execution_plans_from_the_committed_watermark(aws, state):
    # Given a first run planned and its window committed
    _ledger(state, "raw/a", T0 + timedelta(minutes=10))
    first = _plan(aws.settings, name="run-1", as_of=iso(T0 + timedelta(hours=1)))
    state.set_watermark(parse_instant(first.watermark_to), "run-1")
    state.release_lease("pipeline", first.execution_id)
    _ledger(state, "raw/b", T0 + timedelta(hours=1, minutes=10))
    # When the next execution plans
    second = _plan(aws.settings, name="run-2", as_of=iso(T0 + timedelta(hours=2)))
    # Then it takes only what arrived after the first window
    assert second.watermark_from == first.watermark_to
    assert [o.source_key for o in read_manifest(_lake(aws), "run-2").objects] == ["raw/b"]


def test_malformed_as_of_is_an_input_error(aws):
    # Given an execution input whose as_of is not a time
    # When Plan runs, Then it fails with a typed error naming the field (not retried by the state machine)
    with pytest.raises(InputError) as err:
        _plan(aws.settings, as_of="yesterday")
    assert err.value.field == "as_of"


def test_parse_instant_reads_z_offsets_and_naive_utc():
    # Given the same instant written three ways
    # When parsed, Then all are the same aware UTC datetime
    assert parse_instant("2026-03-02T10:00:00Z") == T0 + timedelta(hours=1)
    assert parse_instant("2026-03-02T11:00:00+01:00") == T0 + timedelta(hours=1)
    assert parse_instant("2026-03-02T10:00:00") == T0 + timedelta(hours=1)


def test_plan_handler_answers_the_plan_result(aws, state):
    # Given the sample event sam local invoke uses and an object in its window
    from clickstream_local.bridge import FakeLambdaContext, load_handler

    _ledger(state, "raw/a", T0 + timedelta(minutes=30))
    event = load_event("plan.json")
    handler = load_handler("plan")
    # When the handler runs
    answer = handler(
        event,
        FakeLambdaContext(
            "clickstream-local-plan", "arn:aws:lambda:us-east-1:123456789012:function:clickstream-local-plan"
        ),
    )
    # Then it answers a JSON-ready PlanResult for that execution
    result = PlanResult.model_validate(answer)
    assert result.run_id == event["execution_name"]
    assert result.execution_id == event["execution_id"]
    assert result.n_objects == 1
    assert result.manifest_key == manifest_key(event["execution_name"])
    json.dumps(answer)


def _lake(aws):
    from clickstream.adapters.storage import S3ObjectStore

    return S3ObjectStore(aws.settings.lake_bucket)
