"""The Sessionize step against moto S3: bucket state, affected visitors, idempotency, incremental = full."""

from __future__ import annotations

import importlib.util
import random
from datetime import timedelta
from pathlib import Path

import pytest

from clickstream.adapters.aws import client
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.buckets import bucket_of
from clickstream.core.keys import bucket_prefix, sessions_bucket_prefix, validated_key
from clickstream.pipeline.manifest import Manifest, ManifestObject, manifest_key
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.files import sessionize_files
from clickstream.sessionize.state import (
    LEGACY_SESSIONS,
    bucket_state_totals,
    published_prefix,
    read_state,
    row_files,
)
from tests.conftest import REPO_ROOT, load_event
from tests.fakes.context import lambda_context
from tests.unit.sessionize import reference
from tests.unit.sessionize.data import T0, Stream, boundary_stream, read_parquet, write_parquet

MIN = timedelta(minutes=1)


@pytest.fixture
def lake(aws) -> S3ObjectStore:
    return S3ObjectStore(aws.settings.lake_bucket)


def put_run(
    lake: S3ObjectStore,
    tmp: Path,
    run_id: str,
    rows: list[dict],
    n_buckets: int = 1,
    watermark_to: str = "2026-03-02T10:00:00Z",
) -> None:
    """A run's window: the rows as validated objects (one per source_object) and its manifest."""
    by_object: dict[str, list[dict]] = {}
    for row in rows:
        by_object.setdefault(row["source_object"], []).append(row)
    objects = []
    for source_key, object_rows in sorted(by_object.items()):
        key = validated_key(source_key, T0)
        path = write_parquet(tmp / run_id / f"{len(objects)}.parquet", object_rows)
        lake.upload(path, key)
        objects.append(
            ManifestObject(source_key=source_key, validated_key=key, validated_at="2026-03-02T10:00:00Z")
        )
    objects.append(
        ManifestObject(source_key="raw/all-bad", validated_key=None, validated_at="2026-03-02T10:00:00Z")
    )
    manifest = Manifest(
        run_id=run_id,
        watermark_from=None,
        watermark_to=watermark_to,
        n_buckets=n_buckets,
        objects=objects,
    )
    lake.put_bytes(manifest_key(run_id), manifest.model_dump_json().encode())


def fetch(lake: S3ObjectStore, tmp: Path, key: str) -> list[dict]:
    path = tmp / "fetched" / key.replace("/", "_")
    return read_parquet(lake.download(key, path))


def state(lake: S3ObjectStore, tmp: Path, bucket: int = 0) -> tuple[list[dict], list[dict]]:
    """The bucket's state over all its slices: (rows, sessions), hot and frozen, without the placement column.
    The sessions are read from the lake's published sessions table, which must equal the state's own files."""
    current = read_state(lake, bucket, set(lake.list_keys(bucket_prefix(bucket))))
    if current is None:
        return [], []
    rows = [
        {k: v for k, v in r.items() if k != "session_start"}
        for key in sorted(row_files(current))
        for r in fetch(lake, tmp, key)
    ]
    own = [
        key
        for slice_no, files in current.slices.items()
        # a slice still in the layout before frozen history has its sessions only in the published table
        for key in [files.sessions, *files.frozen_sessions]
        + ([published_prefix(bucket, slice_no) + LEGACY_SESSIONS] if files.legacy else [])
        if key is not None
    ]
    published = sorted(lake.list_keys(sessions_bucket_prefix(bucket)))
    sessions = [r for k in published for r in fetch(lake, tmp, k)]
    key = lambda r: r["session_id"]  # noqa: E731
    assert sorted(sessions, key=key) == sorted((r for k in own for r in fetch(lake, tmp, k)), key=key)
    return rows, sessions


def test_late_event_merging_two_sessions_replaces_them(lake, tmp_path: Path) -> None:
    # Given a first run with two sessions of visitor A (50 min apart) and one of visitor B
    s = Stream("raw/first")
    a1 = s.add("A", T0)
    a2 = s.add("A", T0 + 50 * MIN)
    s.add("B", T0)
    put_run(lake, tmp_path, "run-1", s.rows)
    first = sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake)
    assert (first.n_visitors, first.n_sessions, first.n_events) == (2, 3, 3)
    # When a second run brings A's late event in between
    late = Stream("raw/second")
    late.add("A", T0 + 25 * MIN, event_id="late")
    put_run(lake, tmp_path, "run-2", late.rows)
    second = sessionize_bucket(SessionizeInput(run_id="run-2", bucket=0), lake)
    # Then A's sessions are recomputed as one, and only A is in the run's outputs
    assert (second.n_new_events, second.n_visitors, second.n_events, second.n_sessions) == (1, 1, 3, 1)
    assert [r["anonymous_id"] for r in fetch(lake, tmp_path, second.visitors_key)] == ["A"]
    sessions = fetch(lake, tmp_path, second.sessions_key)
    assert [(x["anonymous_id"], x["session_start"], x["n_events"]) for x in sessions] == [("A", T0, 3)]
    events = fetch(lake, tmp_path, second.events_key)
    assert {e["session_id"] for e in events} == {reference.session_id_of("A", T0)}
    # And the bucket state holds one session for A, B's untouched
    all_rows, state_sessions = state(lake, tmp_path)
    assert sorted((x["anonymous_id"], x["n_events"]) for x in state_sessions) == [("A", 3), ("B", 1)]
    assert {r["event_id"]: r["session_id"] for r in all_rows if r["anonymous_id"] == "A"} == {
        a1["event_id"]: reference.session_id_of("A", T0),
        a2["event_id"]: reference.session_id_of("A", T0),
        "late": reference.session_id_of("A", T0),
    }


def test_same_run_twice_gives_identical_outputs_and_state(lake, tmp_path: Path) -> None:
    # Given a run over the boundary stream, already sessionized once
    put_run(lake, tmp_path, "run-1", boundary_stream(seed=2).rows)
    request = SessionizeInput(run_id="run-1", bucket=0)
    first = sessionize_bucket(request, lake)
    outputs = [
        fetch(lake, tmp_path / "a", k) for k in (first.events_key, first.sessions_key, first.visitors_key)
    ]
    before = state(lake, tmp_path / "a")
    # When the same run is sessionized again (a retried task)
    again = sessionize_bucket(request, lake)
    # Then the result, the run's outputs and the bucket's state are identical
    assert again == first
    assert [
        fetch(lake, tmp_path / "b", k) for k in (again.events_key, again.sessions_key, again.visitors_key)
    ] == outputs
    assert state(lake, tmp_path / "b") == before


@pytest.mark.parametrize("seed", [1, 4])
def test_incremental_windows_equal_one_full_recompute(lake, tmp_path: Path, seed: int) -> None:
    # Given the boundary stream delivered in random arrival batches (by source object), with re-deliveries
    rows = boundary_stream(seed=seed).rows
    rng = random.Random(seed)
    for row in rows:
        row["source_object"] = f"raw/obj-{rng.randrange(6)}"
    windows: list[list[dict]] = [[] for _ in range(4)]
    by_object: dict[str, int] = {}
    for row in rows:
        windows[by_object.setdefault(row["source_object"], rng.randrange(4))].append(row)
    windows.append([r for r in rows if r["source_object"] == "raw/obj-0"])  # a re-delivered object
    # When each window is a run of the step
    for i, window in enumerate(windows):
        if window:
            put_run(lake, tmp_path, f"run-{i}", window)
            sessionize_bucket(SessionizeInput(run_id=f"run-{i}", bucket=0), lake)
    # Then the bucket state equals one full recompute: the reference's assignment and drops …
    all_rows, state_sessions = state(lake, tmp_path)
    assert len(all_rows) == len(rows)
    want_assigned, want_dropped, _ = reference.sessionize(rows)
    assert {
        reference.row_key(r): r["session_id"] for r in all_rows if r["drop_reason"] is None
    } == want_assigned
    assert {reference.row_key(r): r["drop_reason"] for r in all_rows if r["drop_reason"]} == want_dropped
    # … and every session field of the CLI run over all rows at once
    sessionize_files([write_parquet(tmp_path / "full.parquet", rows)], tmp_path / "full")
    full = read_parquet(tmp_path / "full" / "sessions.parquet")
    key = lambda x: x["session_id"]  # noqa: E731
    assert sorted(state_sessions, key=key) == sorted(full, key=key)


def test_copies_across_runs_are_counted_and_the_earliest_received_wins(lake, tmp_path: Path) -> None:
    # Given an event kept in the first run
    s = Stream("raw/first")
    original = s.add("A", T0 + 40 * MIN, received_at=T0 + 41 * MIN)
    s.add("A", T0)
    put_run(lake, tmp_path, "run-1", s.rows)
    first = sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake)
    assert first.n_sessions == 2
    # When a later run brings a copy received earlier (with an earlier time), a retry, and a conflicting reuse
    later = Stream("raw/second")
    later.copy(original, received_at=T0 + 20 * MIN, event_ts=T0 + 20 * MIN, source_object="raw/second")
    later.copy(original, received_at=T0 + 90 * MIN, source_object="raw/second")
    later.copy(original, received_at=T0 + 95 * MIN, payload_hash="another", source_object="raw/second")
    put_run(lake, tmp_path, "run-2", later.rows)
    second = sessionize_bucket(SessionizeInput(run_id="run-2", bucket=0), lake)
    # Then the earlier-received copy wins (joining the first session), and the totals count the rest
    assert (second.n_events, second.n_sessions) == (2, 1)
    assert (second.n_duplicates, second.n_conflicts) == (2, 1)
    assert bucket_state_totals(lake, n_buckets=1).__dict__ == {"duplicates": 2, "conflicts": 1}
    all_rows, _ = state(lake, tmp_path)
    dropped = [r for r in all_rows if r["drop_reason"]]
    assert sorted(d["drop_reason"] for d in dropped) == ["duplicate", "duplicate", "duplicate_conflict"]
    assert {d["event_id"] for d in dropped} == {original["event_id"]}


def test_only_the_buckets_visitors_are_taken_and_empty_buckets_touch_nothing(lake, tmp_path: Path) -> None:
    # Given visitors spread over 4 buckets, none of them in one bucket
    s = Stream()
    visitors = [v for v in (f"visitor-{i}" for i in range(60)) if bucket_of(v, 4) != 3][:12]
    for v in visitors:
        s.add(v, T0)
    put_run(lake, tmp_path, "run-1", s.rows, n_buckets=4)
    buckets = {v: bucket_of(v, 4) for v in visitors}
    empty = 3
    used = buckets[visitors[0]]
    # When two buckets are sessionized
    result = sessionize_bucket(SessionizeInput(run_id="run-1", bucket=used), lake)
    nothing = sessionize_bucket(SessionizeInput(run_id="run-1", bucket=empty), lake)
    # Then a bucket holds exactly its visitors, and an empty bucket reports zeros and writes no state
    mine = sorted(v for v, b in buckets.items() if b == used)
    assert [r["anonymous_id"] for r in fetch(lake, tmp_path, result.visitors_key)] == mine
    assert (nothing.n_new_events, nothing.n_sessions, nothing.events_key, nothing.visitors_key) == (
        0,
        0,
        None,
        None,
    )
    assert list(lake.list_keys(bucket_prefix(empty))) == []
    assert bucket_state_totals(lake, n_buckets=4).__dict__ == {"duplicates": 0, "conflicts": 0}


def test_run_events_have_the_event_columns(lake, tmp_path: Path) -> None:
    # Given a run
    s = Stream()
    s.add("A", T0)
    put_run(lake, tmp_path, "run-1", s.rows)
    # When sessionized
    result = sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake)
    # Then the events file has EVENT_COLUMNS in order
    from clickstream.core.schema import EVENT_COLUMN_NAMES, SESSION_COLUMN_NAMES

    assert list(fetch(lake, tmp_path, result.events_key)[0]) == list(EVENT_COLUMN_NAMES)
    assert list(fetch(lake, tmp_path, result.sessions_key)[0]) == list(SESSION_COLUMN_NAMES)


def test_handler_sessionizes_the_sample_event(lake, tmp_path: Path) -> None:
    # Given the sample event's run, with visitors in its bucket among 4
    event = load_event("sessionize.json")
    s = Stream()
    mine = [v for v in (f"shopper-{i}" for i in range(40)) if bucket_of(v, 4) == event["bucket"]][:3]
    for v in [*mine, "shopper-x"]:
        s.add(v, T0)
    put_run(lake, tmp_path, event["run_id"], s.rows, n_buckets=4)
    spec = importlib.util.spec_from_file_location("sessionize_app", REPO_ROOT / "functions/sessionize/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # When the handler runs
    answer = module.lambda_handler(event, lambda_context("SessionizeFunction"))
    # Then it answers the SessionizeResult of the bucket as JSON
    assert answer["run_id"] == event["run_id"] and answer["bucket"] == event["bucket"]
    assert answer["n_visitors"] == len(mine) and answer["n_sessions"] == len(mine)
    assert answer["events_key"] == f"runs/{event['run_id']}/bucket={event['bucket']:04d}/events.parquet"


def test_a_run_rewrites_only_the_slices_of_the_visitors_it_brings(lake, tmp_path: Path) -> None:
    # Given a state built from 40 visitors, spread over many slices of the bucket
    from clickstream.sessionize.state import pointer_key, published_prefix, slice_of, slice_prefix

    s = Stream("raw/first")
    visitors = [f"visitor-{i}" for i in range(40)]
    for v in visitors:
        s.add(v, T0)
    put_run(lake, tmp_path, "run-1", s.rows)
    sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake)
    s3 = client("s3")

    def tags() -> dict[str, str]:
        keys = [*lake.list_keys(bucket_prefix(0)), *lake.list_keys(sessions_bucket_prefix(0))]
        return {k: s3.head_object(Bucket=lake.bucket, Key=k)["ETag"] for k in keys}

    before = tags()
    assert len({k.rsplit("/", 2)[1] for k in before}) > 4
    # When a second run brings one visitor's late event
    late = Stream("raw/second")
    late.add(visitors[7], T0 + 5 * MIN, event_id="late")
    put_run(lake, tmp_path, "run-2", late.rows)
    second = sessionize_bucket(SessionizeInput(run_id="run-2", bucket=0), lake)
    # Then only that visitor's slice was read and written (plus the bucket's object index, its pointer and the
    # slice's published sessions); every other file is the same object as before, and none was removed (the
    # previous generation stays until the next one)
    mine = slice_of(visitors[7], 1)
    assert second.n_slices == 1 and second.n_visitors == 1
    after = tags()
    assert set(before) <= set(after)
    changed = {k for k, tag in after.items() if before.get(k) != tag}
    assert changed == {
        slice_prefix(0, mine) + "hot-run-2.parquet",
        slice_prefix(0, mine) + "sessions-run-2.parquet",
        bucket_prefix(0) + "objects-run-2.parquet",
        pointer_key(0),
        published_prefix(0, mine) + "hot.parquet",
    }
    assert published_prefix(0, mine).startswith("sessions/bucket=0000/slice=")
    # And the state still holds every visitor, each in the slice its hash names
    all_rows, sessions = state(lake, tmp_path)
    assert sorted({r["anonymous_id"] for r in all_rows}) == sorted(visitors)
    assert len(sessions) == 40
    for key in lake.list_keys(bucket_prefix(0)):
        if "/hot-" in key:
            assert {slice_prefix(0, slice_of(r["anonymous_id"], 1)) for r in fetch(lake, tmp_path, key)} == {
                key.rsplit("/", 1)[0] + "/"
            }


def test_an_event_id_reused_by_another_visitor_is_not_that_visitors_duplicate(lake, tmp_path: Path) -> None:
    # Given visitor A's event, and later visitor B sending an event with the same id (a broken client)
    s = Stream("raw/first")
    s.add("A", T0, event_id="shared")
    put_run(lake, tmp_path, "run-1", s.rows)
    sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake)
    other = Stream("raw/second")
    other.add("B", T0 + MIN, event_id="shared", received_at=T0 - MIN)
    put_run(lake, tmp_path, "run-2", other.rows)
    # When B's run is sessionized
    second = sessionize_bucket(SessionizeInput(run_id="run-2", bucket=0), lake)
    # Then each visitor keeps its own event: duplicates are ranked within a visitor, whatever the state layout
    assert (second.n_visitors, second.n_events, second.n_duplicates) == (1, 1, 0)
    all_rows, _ = state(lake, tmp_path)
    assert sorted((r["anonymous_id"], r["drop_reason"]) for r in all_rows) == [("A", None), ("B", None)]


def test_the_step_leaves_its_answer_beside_its_outputs(lake, tmp_path: Path) -> None:
    # Given a run with one visitor in bucket 0 of 1
    from clickstream.pipeline.manifest import SessionizeResult, run_result_key

    s = Stream()
    s.add("A", T0)
    put_run(lake, tmp_path, "run-1", s.rows)
    # When the bucket is sessionized
    result = sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake)
    # Then result.json holds the same answer the task returned
    stored = SessionizeResult.model_validate_json(lake.get_bytes(run_result_key("run-1", 0)))
    assert stored == result and stored.n_sessions == 1
