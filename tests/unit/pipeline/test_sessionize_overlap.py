"""Two runs of one bucket at once (a run whose lease expired while it kept working, and the runs after it): the
bucket pointer is replaced only over the generation a run read, so it never names a file a clean-up deleted, and a
stale run publishes nothing; the window run again gives a full recompute."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.keys import bucket_prefix
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize.state import PointerMoved, read_state
from tests.unit.pipeline.test_sessionize import MIN
from tests.unit.pipeline.test_sessionize_redelivery import (
    _visitors_in_distinct_slices,
    assert_state_is_a_full_recompute,
    deliver,
    run,
)
from tests.unit.sessionize.data import T0, Stream, read_parquet


@pytest.fixture
def lake(aws) -> S3ObjectStore:
    return S3ObjectStore(aws.settings.lake_bucket)


def test_a_stale_writer_never_publishes_over_later_generations(lake: S3ObjectStore, tmp_path: Path) -> None:
    # Given visitors x and y in two slices, sessionized by run-0
    x, y = _visitors_in_distinct_slices(2)
    objects: dict[str, list[dict]] = {}
    for n, name in enumerate(("raw/a", "raw/b", "raw/c", "raw/d")):
        s = Stream(name)
        s.add(x, T0 + n * 10 * MIN, event_id=f"{name}-x")
        if name != "raw/b":  # run-1's window touches x's slice only
            s.add(y, T0 + n * 10 * MIN, event_id=f"{name}-y")
        objects[name] = s.rows
    deliver(lake, tmp_path, "run-0", {"raw/a": objects["raw/a"]})
    run(lake, "run-0")
    for run_id, name in (("run-1", "raw/b"), ("run-2", "raw/c"), ("run-3", "raw/d")):
        deliver(lake, tmp_path, run_id, {name: objects[name]})

    # When run-1 has read run-0's generation and, before it writes, run-2 and run-3 publish theirs (run-3's
    # clean-up deletes run-0's files of y's slice, which only run-0's generation named)
    def later_runs_publish() -> None:
        run(lake, "run-2")
        run(lake, "run-3")

    refused = None
    try:
        sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake, fence=later_runs_publish)
    except PointerMoved as exc:
        refused = exc

    # Then the pointer names only files that exist
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    assert current is not None
    named: set[str] = current.keys()
    missing = sorted(k for k in named if not lake.exists(k))
    assert missing == []
    # And the stale run was refused, saying why
    assert refused is not None and "run-1" in str(refused) and "run the window again" in str(refused)
    # And run-1's window run again starts from the current generation: the state is a full recompute
    run(lake, "run-1")
    assert_state_is_a_full_recompute(lake, tmp_path, objects)


def test_a_retry_of_the_run_that_published_replaces_its_own_pointer(
    lake: S3ObjectStore, tmp_path: Path
) -> None:
    # Given a run that published its generation (then failed later, e.g. in the lake's sessions table)
    s = Stream("raw/a")
    s.add("A", T0)
    deliver(lake, tmp_path, "run-1", {"raw/a": s.rows})
    run(lake, "run-1")
    # When the same run is retried, it publishes again over its own pointer
    again = run(lake, "run-1")
    # Then nothing is refused and the state is unchanged
    assert again.n_sessions == 1
    assert_state_is_a_full_recompute(lake, tmp_path, {"raw/a": s.rows})


def test_a_conditional_write_refuses_a_changed_or_created_object(lake: S3ObjectStore) -> None:
    from clickstream.adapters.storage import ObjectChanged

    etag = lake.put_bytes_if("k/state.json", b"one", None)
    with pytest.raises(ObjectChanged):
        lake.put_bytes_if("k/state.json", b"two", None)  # it exists now
    assert lake.get_tagged("k/state.json") == (b"one", etag)
    lake.put_bytes_if("k/state.json", b"two", etag)
    with pytest.raises(ObjectChanged):
        lake.put_bytes_if("k/state.json", b"three", etag)  # replaced since
    assert lake.get_bytes("k/state.json") == b"two"


def test_the_retry_of_a_refused_run_leaves_no_file_of_its_refused_attempt_unnamed(
    lake: S3ObjectStore, tmp_path: Path
) -> None:
    # Given visitors x and y in two slices, sessionized by run-0, and run-1's window touching both
    x, y = _visitors_in_distinct_slices(2)
    objects: dict[str, list[dict]] = {}
    for n, name in enumerate(("raw/a", "raw/b", "raw/c")):
        s = Stream(name)
        s.add(x, T0 + n * 10 * MIN, event_id=f"{name}-x")
        s.add(y, T0 + n * 10 * MIN, event_id=f"{name}-y")
        objects[name] = s.rows
    deliver(lake, tmp_path, "run-0", {"raw/a": objects["raw/a"]})
    run(lake, "run-0")
    deliver(lake, tmp_path, "run-1", {"raw/b": objects["raw/b"]})
    deliver(lake, tmp_path, "run-2", {"raw/c": objects["raw/c"]})
    # When run-1's first attempt loses its swap to run-2 (it has written its outputs and its generation's files)
    with pytest.raises(PointerMoved):
        sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake, fence=lambda: run(lake, "run-2"))
    assert any("-run-1." in k for k in lake.list_keys(bucket_prefix(0)))
    # And the state machine runs it again (the same task input)
    again = run(lake, "run-1")
    # Then the retry published over run-2's generation, and every state file is named by it or the one before it
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    assert current is not None and current.generation == "run-1" and current.previous is not None
    assert current.previous.generation == "run-2"
    named: set[str] = current.keys() | current.previous.keys()
    stored = {k for k in lake.list_keys(bucket_prefix(0)) if not k.endswith("/state.json")}
    assert sorted(stored - named) == [] and sorted(named - stored) == []
    # And the state is one full recompute of every object, and the retry's answer names both visitors for Load
    assert_state_is_a_full_recompute(lake, tmp_path, objects)
    visitors = read_parquet(lake.download(again.visitors_key, tmp_path / "visitors.parquet"))
    assert sorted(v["anonymous_id"] for v in visitors) == sorted([x, y])
