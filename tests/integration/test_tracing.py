"""The handlers trace when Lambda runs them with ``Tracing: Active``: the X-Ray documents a function sends.

A child process plays Lambda's part (its task root, a sampled trace header, the X-Ray daemon's address) and the test
is the daemon: a UDP socket that receives the subsegments the X-Ray SDK streams. Tracing stays off in every other
test (``POWERTOOLS_TRACE_DISABLED``), and in-process enabling would leak into them, hence the child.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

from tests.conftest import REPO_ROOT

CHILD = r"""
import json, sys
from clickstream_local.bridge import load_handler
from clickstream_local.stack import local_settings, local_stack
from tests.conftest import load_event
from tests.fakes.context import lambda_context

with local_stack(local_settings(), with_cognito=False):
    answers = {
        "ingest": load_handler("ingest")(load_event("ingest_native.json"), lambda_context("clickstream-local-ingest")),
        "plan": load_handler("plan")(load_event("plan.json"), lambda_context("clickstream-local-plan")),
    }
print(json.dumps({k: (v.get("statusCode") or v.get("run_id")) for k, v in answers.items()}))
"""


def _subsegments(sock: socket.socket) -> list[dict[str, Any]]:
    docs = []
    sock.setblocking(False)
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return docs
        header, _, body = data.decode("utf-8").partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        docs.append(json.loads(body))


def _walk(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc, *(d for sub in doc.get("subsegments", []) for d in _walk(sub))]


def test_handlers_send_their_subsegments_with_run_annotations_and_aws_calls(tmp_path) -> None:
    # Given an X-Ray daemon, and a child process that runs the ingest and plan handlers as Lambda would
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_TRACE", "AWS_XRAY", "_X_AMZN"))
    }
    env.update(
        {
            "LAMBDA_TASK_ROOT": str(tmp_path),
            "AWS_LAMBDA_FUNCTION_NAME": "clickstream-local-ingest",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    # When the handlers answer
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"ingest": 202, "plan": "hourly-2026-03-02T10"}
    docs = [d for doc in _subsegments(daemon) for d in _walk(doc)]
    daemon.close()
    # Then each invocation is a "## lambda_handler" subsegment annotated with the cold start and the service …
    handlers = [d for d in docs if d.get("name") == "## lambda_handler"]
    assert len(handlers) == 2
    assert all(d["annotations"]["Service"] == "clickstream" for d in handlers)
    # … the plan's carries its run id, searchable as an annotation …
    assert {d["annotations"].get("run_id") for d in handlers} == {None, "hourly-2026-03-02T10"}
    # … and every AWS call is a subsegment of its own (botocore patched): Firehose for ingest, DynamoDB for plan
    ids = {d["id"]: d for d in docs}

    def under(doc: dict[str, Any]) -> str | None:  # the handler subsegment an AWS call was made in
        while doc and doc.get("name") != "## lambda_handler":
            doc = ids.get(doc.get("parent_id", ""), {})
        return doc.get("id") if doc else None

    calls = {
        (d["name"], d["aws"]["operation"], under(d)) for d in docs if d.get("namespace") == "aws" and under(d)
    }
    ingest, plan = sorted(handlers, key=lambda d: d["annotations"].get("run_id") or "")
    assert ("firehose", "PutRecordBatch", ingest["id"]) in calls
    assert {op for name, op, h in calls if name == "dynamodb" and h == plan["id"]} >= {"PutItem", "GetItem"}
    # And nothing of the request's content is in a trace (no response or argument captured as metadata)
    text = json.dumps(docs)
    assert "a1f3c2d4-6b7e-4f10-9a2b-3c4d5e6f7a80" not in text  # the sample request's anonymous_id
