"""The workload the cost model prices (``src/clickstream_cli/cost/workload.json``) is what the code does today: the
smaller measured hour, measured again, gives the same requests, bytes, AWS calls and state transitions."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from clickstream_cli.cost.model import HERE

# What may differ between two measurements in one process: durations, and what a process-wide cache spares the
# second time (the validate step's tombstone scan, a library's one-time warning in the logs).
_VARYING = ("seconds_local", "log_bytes", "dynamodb_units")


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VARYING}
    return value


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    hours = json.loads((HERE / "workload.json").read_text(encoding="utf-8"))["measured"]["hours"]
    return min(hours, key=lambda h: h["events_generated"])


_MEASURE = """
import json, sys
from clickstream_local.workload import measure_hour
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump(measure_hour(int(sys.argv[2]), seed=int(sys.argv[3])), fh)
"""


@pytest.fixture(scope="module")
def measured(recorded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # In a fresh process, as scripts/measure_workload.py measures it: what earlier tests left in this process's caches
    # (a warm client, a module-level cache) would change a count by one.
    out = tmp_path_factory.mktemp("workload") / "hour.json"
    args = [str(out), str(recorded["events_generated"]), str(recorded["seed"])]
    subprocess.run([sys.executable, "-c", _MEASURE, *args], check=True, capture_output=True, timeout=900)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def test_the_cost_models_workload_is_current(recorded, measured) -> None:
    # When this fails after a change to what the functions write or call: scripts/measure_workload.py
    assert _stable(measured) == _stable(recorded)


def test_an_hour_is_measured_through_the_real_handlers(measured) -> None:
    ingest = measured["ingest"]
    # one Firehose call per accepted request, nothing else from the ingest function
    assert ingest["aws_calls"] == {"firehose:PutRecordBatch": ingest["requests_accepted"]}
    assert 1 <= ingest["events_per_request"]["mean"] <= ingest["events_per_request"]["max"]
    assert ingest["record_bytes_fit"]["per_event"] > 0 and 0 < measured["raw_object"]["gzip_ratio"] < 1
    assert measured["validate"]["aws_calls"]["s3:GetObject"] == 1  # the raw object, read once
    steps = measured["pipeline"]["steps"]
    assert steps["sessionize"]["invocations"] == measured["pipeline"]["buckets"]
    assert all(steps[name]["invocations"] == 1 for name in ("plan", "load", "aggregate", "commit"))
    assert measured["pipeline"]["state_transitions"] > len(steps)
    assert {"validated", "sessionized", "sessions"} <= set(measured["lake_bytes"])
