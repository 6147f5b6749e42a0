"""A source object is a unit: when a window brings an object again, its rows in the state are exactly its new ones.

A re-validation (``clickstream backfill --revalidate``, a stricter schema, an erasure) may yield fewer rows for a
raw object than before. The rows it no longer has must leave the bucket state, its sessions and the run's affected
visitors, also in slices where the object now has no row at all.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.keys import bucket_prefix, sessions_bucket_prefix, validated_key
from clickstream.pipeline.manifest import Manifest, ManifestObject, manifest_key
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.files import sessionize_files
from clickstream.sessionize.state import pointer_key, published_prefix, read_state, slice_of
from tests.unit.pipeline.test_sessionize import MIN, fetch, state
from tests.unit.sessionize import reference
from tests.unit.sessionize.data import T0, Stream, boundary_stream, read_parquet, write_parquet


@pytest.fixture
def lake(aws) -> S3ObjectStore:
    return S3ObjectStore(aws.settings.lake_bucket)


def deliver(lake: S3ObjectStore, tmp: Path, run_id: str, objects: dict[str, list[dict]]) -> None:
    """A run's window: each source object with its rows now (an object with no row has no validated file)."""
    entries = []
    for n, (source_key, rows) in enumerate(sorted(objects.items())):
        key = None
        if rows:
            key = validated_key(source_key, T0)
            lake.upload(write_parquet(tmp / run_id / f"{n}.parquet", rows), key)
        elif lake.exists(validated_key(source_key, T0)):
            lake.delete(validated_key(source_key, T0))  # validation removes an object's stale output
        entries.append(
            ManifestObject(source_key=source_key, validated_key=key, validated_at="2026-03-02T10:00:00Z")
        )
    manifest = Manifest(
        run_id=run_id, watermark_from=None, watermark_to="2026-03-02T10:00:00Z", n_buckets=1, objects=entries
    )
    lake.put_bytes(manifest_key(run_id), manifest.model_dump_json().encode())


def index_key(lake: S3ObjectStore) -> str:
    """The object index the bucket's pointer names."""
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    assert current is not None and current.index is not None
    return current.index


def run(lake: S3ObjectStore, run_id: str):
    return sessionize_bucket(SessionizeInput(run_id=run_id, bucket=0), lake)


def assert_state_is_a_full_recompute(lake: S3ObjectStore, tmp: Path, current: dict[str, list[dict]]) -> None:
    """The bucket state equals one recompute over every object's current rows: rows, drops and sessions."""
    rows = [r for object_rows in current.values() for r in object_rows]
    all_rows, state_sessions = state(lake, tmp / "state")
    assert sorted(reference.row_key(r) for r in all_rows) == sorted(reference.row_key(r) for r in rows)
    want_assigned, want_dropped, _ = reference.sessionize(rows)
    assert {
        reference.row_key(r): r["session_id"] for r in all_rows if r["drop_reason"] is None
    } == want_assigned
    assert {reference.row_key(r): r["drop_reason"] for r in all_rows if r["drop_reason"]} == want_dropped
    if rows:
        sessionize_files([write_parquet(tmp / "full.parquet", rows)], tmp / "full")
        full = read_parquet(tmp / "full" / "sessions.parquet")
    else:
        full = []
    key = lambda x: x["session_id"]  # noqa: E731
    assert sorted(state_sessions, key=key) == sorted(full, key=key)


def _visitors_in_distinct_slices(n: int) -> list[str]:
    """``n`` visitors, each alone in its state slice (one bucket)."""
    chosen: dict[int, str] = {}
    for i in range(1000):
        v = f"visitor-{i}"
        chosen.setdefault(slice_of(v, 1), v)
        if len(chosen) == n:
            break
    return list(chosen.values())


def _sessionized_object_of_two_slices(lake: S3ObjectStore, tmp: Path) -> tuple[str, str, dict]:
    """raw/a with one row of x and one of y (visitors of distinct slices), sessionized by run-1: (x, y, x's row)."""
    x, y = _visitors_in_distinct_slices(2)
    a = Stream("raw/a")
    x_row = a.add(x, T0)
    a.add(y, T0)
    deliver(lake, tmp, "run-1", {"raw/a": a.rows})
    run(lake, "run-1")
    return x, y, x_row


def test_an_object_delivered_again_with_fewer_rows_leaves_exactly_its_new_rows(lake, tmp_path: Path) -> None:
    # Given visitors X, Y, Z in three different slices: object raw/a has rows of all three (Z only in raw/a, and
    # Y only in raw/a), raw/b has more rows of X
    x, y, z = _visitors_in_distinct_slices(3)
    a, b = Stream("raw/a"), Stream("raw/b")
    x_kept = a.add(x, T0)
    a.add(x, T0 + 20 * MIN)  # bridges x's two raw/b events into one session
    a.add(y, T0)
    a.add(y, T0 + 5 * MIN)
    a.add(z, T0 + 3 * MIN)
    b.add(x, T0 + 40 * MIN, event_id="b-1")
    b.add(x, T0 + 45 * MIN, event_id="b-2")
    deliver(lake, tmp_path, "run-1", {"raw/a": a.rows, "raw/b": b.rows})
    first = run(lake, "run-1")
    assert (first.n_visitors, first.n_sessions) == (3, 3)
    # When raw/a is re-validated and now holds only x's first row (a stricter rule quarantined the rest)
    deliver(lake, tmp_path, "run-2", {"raw/a": [x_kept]})
    second = run(lake, "run-2")
    # Then every visitor who lost rows is affected, also the ones in slices raw/a no longer has rows in
    assert [r["anonymous_id"] for r in fetch(lake, tmp_path, second.visitors_key)] == sorted([x, y, z])
    assert second.n_slices == 3
    # And x's session split where its bridging row went, y and z have no session left anywhere
    sessions = fetch(lake, tmp_path, second.sessions_key)
    assert sorted((s["anonymous_id"], s["n_events"]) for s in sessions) == [(x, 1), (x, 2)]
    assert {e["anonymous_id"] for e in fetch(lake, tmp_path, second.events_key)} == {x}
    # And the slices left without a row have no state files any more
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    assert current is not None
    published = set(lake.list_keys(sessions_bucket_prefix(0)))
    for gone in (y, z):
        assert current.slices[slice_of(gone, 1)].keys() == set()
        assert not any(k.startswith(published_prefix(0, slice_of(gone, 1))) for k in published)
    # And the state equals one full recompute over the objects' current rows
    assert_state_is_a_full_recompute(lake, tmp_path, {"raw/a": [x_kept], "raw/b": b.rows})
    # And the index names only the slices that still hold each object's rows
    index = read_parquet(lake.download(index_key(lake), tmp_path / "index.parquet"))
    assert sorted((r["source_object"], r["slices"]) for r in index) == [
        ("raw/a", 1 << slice_of(x, 1)),
        ("raw/b", 1 << slice_of(x, 1)),
    ]


def test_an_object_left_without_a_valid_event_loses_all_its_rows(lake, tmp_path: Path) -> None:
    # Given raw/a with rows of two visitors in two slices, and raw/b with another of one of them
    v, w = _visitors_in_distinct_slices(2)
    a, b = Stream("raw/a"), Stream("raw/b")
    a.add(v, T0)
    a.add(w, T0)
    kept = b.add(v, T0 + 2 * MIN, event_id="b-1")
    deliver(lake, tmp_path, "run-1", {"raw/a": a.rows, "raw/b": b.rows})
    run(lake, "run-1")
    # When raw/a comes again with no valid event (no validated file: the manifest names it without one)
    deliver(lake, tmp_path, "run-2", {"raw/a": []})
    second = run(lake, "run-2")
    # Then both visitors are affected; w has nothing left, v keeps raw/b's event alone
    assert [r["anonymous_id"] for r in fetch(lake, tmp_path, second.visitors_key)] == sorted([v, w])
    assert second.n_new_events == 0 and second.n_events == 1
    assert_state_is_a_full_recompute(lake, tmp_path, {"raw/b": [kept]})


def test_an_exact_redelivery_rewrites_nothing_but_the_touched_slices_and_changes_no_row(
    lake, tmp_path: Path
) -> None:
    # Given the boundary stream in two objects, sessionized
    rows = boundary_stream(seed=3).rows
    for i, row in enumerate(rows):
        row["source_object"] = f"raw/obj-{i % 2}"
    objects = {k: [r for r in rows if r["source_object"] == k] for k in ("raw/obj-0", "raw/obj-1")}
    deliver(lake, tmp_path, "run-1", objects)
    run(lake, "run-1")
    before = state(lake, tmp_path / "before")
    # When one object is delivered again, unchanged
    deliver(lake, tmp_path, "run-2", {"raw/obj-1": objects["raw/obj-1"]})
    run(lake, "run-2")
    # Then the state is the same, row for row
    assert state(lake, tmp_path / "after") == before


def test_a_state_without_an_index_is_indexed_from_its_slices(lake, tmp_path: Path) -> None:
    # Given a state written before the bucket had an object index (the pointer names none)
    x, y, x_row = _sessionized_object_of_two_slices(lake, tmp_path)
    pointer = json.loads(lake.get_bytes(pointer_key(0)))
    lake.delete(pointer["index"])
    pointer["index"] = None
    lake.put_bytes(pointer_key(0), json.dumps(pointer).encode())
    # When raw/a comes again without y's row
    deliver(lake, tmp_path, "run-2", {"raw/a": [x_row]})
    second = run(lake, "run-2")
    # Then y's slice was found from the slices themselves, and the index is written
    assert [r["anonymous_id"] for r in fetch(lake, tmp_path, second.visitors_key)] == sorted([x, y])
    assert_state_is_a_full_recompute(lake, tmp_path, {"raw/a": [x_row]})
    assert lake.exists(index_key(lake))


def test_a_retry_after_a_partial_state_write_still_names_the_visitors_who_lost_rows(
    lake, tmp_path: Path
) -> None:
    # Given raw/a with rows of x and y (two slices), sessionized
    x, y, x_row = _sessionized_object_of_two_slices(lake, tmp_path)
    # When a run bringing raw/a without y's row writes its new generation and pointer but dies before it returns,
    # and is retried
    deliver(lake, tmp_path, "run-2", {"raw/a": [x_row]})
    run(lake, "run-2")
    retried = run(lake, "run-2")
    # Then the retry's outputs still name y, so the warehouse replaces y's rows, and the state is right
    assert [r["anonymous_id"] for r in fetch(lake, tmp_path, retried.visitors_key)] == sorted([x, y])
    assert_state_is_a_full_recompute(lake, tmp_path, {"raw/a": [x_row]})


@pytest.mark.parametrize("seed", [5, 11])
def test_any_sequence_of_re_validations_equals_one_full_recompute(lake, tmp_path: Path, seed: int) -> None:
    # Given the boundary stream spread over 5 objects
    rng = random.Random(seed)
    rows = boundary_stream(seed=seed).rows
    for row in rows:
        row["source_object"] = f"raw/obj-{rng.randrange(5)}"
    every = {f"raw/obj-{i}": [r for r in rows if r["source_object"] == f"raw/obj-{i}"] for i in range(5)}
    current: dict[str, list[dict]] = {}
    # When windows deliver objects, some again with a random subset of their rows (rows may come back later)
    for n in range(6):
        window = {}
        for source_key in rng.sample(sorted(every), rng.randrange(1, 4)):
            keep = rng.choice([1.0, 0.7, 0.3, 0.0]) if source_key in current else 1.0
            window[source_key] = [r for r in every[source_key] if rng.random() < keep]
        deliver(lake, tmp_path, f"run-{n}", window)
        run(lake, f"run-{n}")
        current.update(window)
    # Then the state equals one full recompute over each object's last delivery
    assert_state_is_a_full_recompute(lake, tmp_path, current)
