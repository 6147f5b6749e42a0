"""The workload measurement counts each AWS call for the function that made it, while the state machine's Map runs
several handlers in threads of their own, each with its own transfer pool, and the harness polls meanwhile."""

from __future__ import annotations

import contextlib
import io
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from clickstream_local import workload


def _model(service: str, operation: str) -> SimpleNamespace:
    return SimpleNamespace(service_model=SimpleNamespace(service_name=service), name=operation)


@contextlib.contextmanager
def _no_capture() -> Iterator[io.StringIO]:
    yield io.StringIO()


def test_calls_count_for_the_handler_and_pool_that_made_them_not_the_harness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workload, "captured_output", _no_capture)  # output capture is not what is tested here
    # Given a call log, and a handler that puts through its own thread pool, run by the measurement's wrapper
    calls = workload.CallLog()
    started, finish = threading.Event(), threading.Event()
    puts = 3

    def handler(event: dict, context: object) -> dict:
        started.set()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: calls(_model("s3", "PutObject"), {}), range(puts)))
        finish.wait(5)  # still running while the harness polls
        return {}

    seconds: dict[str, list[float]] = defaultdict(list)
    measured = workload._attributed("sessionize", handler, defaultdict(list), seconds)
    with workload._pools_inherit():
        # When the handler runs in a thread of its own (as a Map iteration does) and the harness polls meanwhile
        runner = threading.Thread(target=measured, args=({}, None))
        runner.start()
        assert started.wait(5)
        calls(_model("stepfunctions", "DescribeExecution"), {})
        finish.set()
        runner.join(5)
        # And a pool the harness runs itself counts as the harness
        with ThreadPoolExecutor(1) as pool:
            pool.submit(calls, _model("s3", "ListObjectsV2"), {}).result()
    # Then the pool's puts are the handler's, the polling and the harness's pool are the harness's
    assert calls.per_function("sessionize") == {"s3:PutObject": puts}
    assert calls.per_function("setup") == {"s3:ListObjectsV2": 1, "stepfunctions:DescribeExecution": 1}
    assert len(seconds["sessionize"]) == 1
    # And outside a measurement pools are left as they were
    assert ThreadPoolExecutor.submit is not None and "inherit" not in ThreadPoolExecutor.submit.__qualname__
