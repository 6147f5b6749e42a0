"""A Sessionize iteration that loses the bucket pointer race is retried by the state machine, not failed.

The real ``statemachine/pipeline.asl.json`` runs under moto with every real handler and a DuckDB warehouse. In the
second hourly run, while the first attempt of one bucket's Sessionize task has written its files and is about to
swap the bucket's ``state.json``, a duplicate invocation of the same task (the real step, same run and bucket: what
a Lambda invocation that Step Functions gave up on but that kept running does) publishes first. The first attempt's
conditional write is refused (``PointerMoved``, as Lambda's Python runtime names the exception), the ASL's Retry
runs the iteration again, it re-reads the pointer and recomputes, and the execution succeeds with the warehouse a
run without the race leaves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.buckets import bucket_of
from clickstream.core.config import get_settings
from clickstream.core.keys import bucket_prefix
from clickstream.core.times import iso
from clickstream.pipeline.sessionize import SessionizeInput, run_sessionize
from clickstream.sessionize.state import PointerMoved, pointer_key, read_state
from clickstream_local import bridge
from clickstream_local.template import asl_path
from tests.integration.staging import stage_validated
from tests.integration.test_state_machine import T0
from tests.unit.sessionize.data import Stream

MIN = timedelta(minutes=1)
# Every table a run's data reaches (pipeline_runs holds the executions' own ids and timings).
TABLES = ("events", "sessions", "users", "daily_kpis", "daily_revenue")
VISITORS = [f"visitor-{n}" for n in range(8)]
_PUT_BYTES_IF = S3ObjectStore.put_bytes_if


def _hour(lake: S3ObjectStore, state: DynamoStateStore, tmp: Path, hour: int) -> None:
    """One validated object arriving in hour ``hour`` (from T0): every visitor's page views, 10 minutes apart, the
    second hour's continuing the first hour's sessions (and a visitor seen for the first time)."""
    name = f"obj-{hour}"
    stream = Stream(f"raw/{name}")
    start = T0 + hour * timedelta(hours=1)
    for n, visitor in enumerate([*VISITORS, f"newcomer-{hour}"]):
        for k in range(3):
            stream.add(visitor, start + (10 * k + n) * MIN, event_id=f"{name}-{visitor}-{k}")
    stage_validated(
        lake,
        state,
        stream,
        f"validated/dt=2026-03-02/hr={9 + hour:02d}/{name}.parquet",
        start + 40 * MIN,
        tmp,
    )


def _tables(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    finally:
        con.close()


class Race:
    """Once ``armed``, the next pointer swap of bucket ``target`` loses to a duplicate invocation of the same
    Sessionize task (same run and bucket), which runs the real step to its end just before that swap."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.armed = False
        self.lost: list[dict] = []  # the task inputs whose swap lost
        self._current = threading.local()  # the task input of the invocation running in this thread

    def route(self, handler: bridge.Handler) -> bridge.Handler:
        def sessionize(event: dict, context: Any) -> Any:
            self._current.event = dict(event)
            return handler(event, context)

        return sessionize

    def put_bytes_if(self, original: Callable[..., str]) -> Callable[..., str]:
        def put(store: S3ObjectStore, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
            event = getattr(self._current, "event", None)
            if (
                self.armed
                and event is not None
                and key == pointer_key(self.target)
                and event["bucket"] == self.target
            ):
                self.armed = False
                self.lost.append(event)
                run_sessionize(SessionizeInput.model_validate(event), get_settings())  # publishes first
            return original(store, key, data, etag, content_type)

        return put


def _run_two_hours(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, *, race: bool
) -> tuple[dict[str, list[tuple]], list[dict], Race]:
    """Two hourly runs through the real state machine and handlers (the second with the race when ``race``); the
    warehouse's tables, the second run's task failures and the race."""
    from clickstream_local.stack import local_settings, local_stack

    warehouse = tmp / "warehouse.duckdb"
    with local_stack(local_settings(), with_cognito=False, setenv=monkeypatch.setenv) as stack:
        monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{warehouse}")
        get_settings.cache_clear()
        settings = stack.settings
        lake, state = S3ObjectStore(settings.lake_bucket), DynamoStateStore(settings.state_table)
        target = bucket_of(VISITORS[0], settings.n_buckets)
        rival = Race(target)
        monkeypatch.setattr(S3ObjectStore, "put_bytes_if", rival.put_bytes_if(_PUT_BYTES_IF))
        arn = bridge.create_pipeline_state_machine(
            stack, {"sessionize": rival.route(bridge.load_handler("sessionize"))}
        )
        bridge.RETRY_WAITS.clear()
        _hour(lake, state, tmp, 0)
        first = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
        assert first["status"] == "SUCCEEDED", first
        assert lake.exists(pointer_key(target))  # the second run's swap replaces a pointer (If-Match)
        _hour(lake, state, tmp, 1)
        rival.armed = race
        second = bridge.run_pipeline(arn, "hourly-2", {"as_of": iso(T0 + timedelta(hours=2))})
        assert second["status"] == "SUCCEEDED", second
        assert state.get_watermark() == T0 + timedelta(hours=2)
        current = read_state(lake, target, set(lake.list_keys(bucket_prefix(target))))
        assert current is not None
        named: set[str] = current.keys()  # the pointer names only files that exist
        assert sorted(k for k in named if not lake.exists(k)) == []
        return _tables(warehouse), second["failures"], rival


def test_a_sessionize_iteration_that_lost_the_pointer_race_is_retried_and_the_run_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same two hours run once undisturbed
    calm, calm_failures, _ = _run_two_hours(tmp_path / "calm", monkeypatch, race=False)
    assert calm_failures == [] and calm["events"] and calm["sessions"]
    # When they run again and, in the second hour, one bucket's first attempt loses its pointer swap
    raced, failures, rival = _run_two_hours(tmp_path / "raced", monkeypatch, race=True)
    # Then that attempt failed with PointerMoved (the name the ASL's Retry matches), once, and was retried after a
    # jittered wait no longer than the retrier's interval
    assert len(rival.lost) == 1 and rival.lost[0]["bucket"] == rival.target
    assert [(f["state"], f["error"]) for f in failures] == [("SessionizeBucket", PointerMoved.__name__)]
    assert "run the window again" in failures[0]["cause"]
    assert len(bridge.RETRY_WAITS) == 1
    assert 0 <= bridge.RETRY_WAITS[0] <= _pointer_retrier()["IntervalSeconds"]
    # And the execution succeeded with exactly the warehouse rows of the undisturbed run
    assert raced == calm


def _pointer_retrier() -> dict:
    import json

    asl = json.loads(asl_path().read_text(encoding="utf-8"))
    task = asl["States"]["Sessionize"]["ItemProcessor"]["States"]["SessionizeBucket"]
    return next(r for r in task["Retry"] if PointerMoved.__name__ in r["ErrorEquals"])
