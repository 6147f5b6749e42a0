"""Logs without shoppers' rows: failures are logged with clipped error text, keyed by the run or the raw object, and
re-raised clipped; the handlers are traced."""

from __future__ import annotations

import ast
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.core.observability import ERROR_TEXT_LIMIT, clip, error_text, shorten
from clickstream_local.bridge import load_handler
from clickstream_local.invoke import captured_output
from clickstream_local.template import functions_dir
from tests.conftest import load_event
from tests.fakes.context import lambda_context

# A raw line as Firehose stores it: a whole request of a signed-in shopper, personal data included.
ROW = json.dumps(
    {
        "app_id": "shop-web",
        "anonymous_id": "a1f3c2d4-6b7e-4f10-9a2b-3c4d5e6f7a80",
        "user_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "received_at": "2026-03-02T14:05:09.731Z",
        "ip": "203.0.113.42",
        "events": [
            {
                "event_id": f"0b6f9a1e-2c3d-4e5f-8a9b-1c2d3e4f5a{i:02d}",
                "event_type": "page_view",
                "page": {"url": f"https://shop.example.com/account?email=jane.doe{i}@example.com"},
            }
            for i in range(8)
        ],
    }
)


def _records(lines: list[str]) -> list[dict]:
    """The JSON log lines (not the metric documents)."""
    return [r for r in (json.loads(line) for line in lines if line.startswith("{")) if "message" in r]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_clipped_text_is_one_printable_line_within_the_limit(text: str) -> None:
    out = clip(text)
    assert len(out) <= ERROR_TEXT_LIMIT and out.isprintable()
    if len(text) <= ERROR_TEXT_LIMIT // 6 and text.isprintable():  # short printable text is kept whole
        assert out == text


def test_a_long_error_says_how_long_it_was() -> None:
    text = error_text(ValueError(ROW))
    assert text.startswith("ValueError: {") and text.endswith(f"[{len('ValueError: ' + ROW)} chars]")
    assert len(text) == ERROR_TEXT_LIMIT and ROW not in text


def test_shorten_clips_in_place_and_keeps_the_class() -> None:
    exc = KeyError(ROW)
    assert shorten(exc) is exc and isinstance(exc, KeyError) and len(str(exc)) <= ERROR_TEXT_LIMIT


def test_a_failing_raw_object_is_logged_with_its_key_and_no_whole_row(aws, monkeypatch) -> None:
    # Given the validate handler, and validation failing with an error that quotes a whole raw line
    handler = load_handler("validate")
    module = __import__("clickstream_functions.validate.app", fromlist=["process_notification"])

    real = module.process_notification

    def fails(body, settings):
        if "s3:TestEvent" in body:
            return real(body, settings=settings)
        raise ValueError(f"cannot read line 1: {ROW}")

    monkeypatch.setattr(module, "process_notification", fails)
    sample = load_event("validate_sqs.json")
    ok = json.loads(json.dumps(sample))
    ok["Records"][0]["body"] = json.dumps({"Event": "s3:TestEvent"})  # a message that validates nothing
    ok["Records"][0]["messageId"] = "test-event"
    sample["Records"].append(ok["Records"][0])
    # When SQS delivers the sample notification (with a message that succeeds in the same batch)
    with captured_output() as out:
        answer = handler(sample, lambda_context("clickstream-local-validate", memory_mb=2048))
    # Then the message is reported failed (retried, then dead-lettered), and one ERROR line says why
    assert answer == {"batchItemFailures": [{"itemIdentifier": sample["Records"][0]["messageId"]}]}
    lines = out.getvalue().splitlines()
    [failure] = [r for r in _records(lines) if r["message"] == "raw object failed"]
    assert failure["level"] == "ERROR" and failure["object_key"].startswith("raw/dt=2026-03-02/hr=09/")
    assert failure["error_type"] == "ValueError" and len(failure["error"]) <= ERROR_TEXT_LIMIT
    assert failure["where"].endswith("in fails")
    # And no line holds the row, nor its last shopper's e-mail address
    assert not any(ROW in line or "jane.doe7@example.com" in line for line in lines)


def test_an_unexpected_ingest_error_is_a_500_whose_log_holds_no_request_body(aws, monkeypatch) -> None:
    # Given the ingest handler, and storing a request failing with an error that quotes its body
    import clickstream.ingest.api as api

    event = load_event("ingest_native.json")

    def fails(request, **_):
        raise RuntimeError(f"cannot store {event['body']}")

    monkeypatch.setattr(api, "ingest_native", fails)
    handler = load_handler("ingest")
    # When the sample request arrives
    with captured_output() as out:
        answer = handler(event, lambda_context("clickstream-local-ingest", memory_mb=512))
    # Then it is a JSON 500, and the log line names the error without the body
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"])["error"]["code"] == "internal_error"
    lines = out.getvalue().splitlines()
    [failure] = [r for r in _records(lines) if r["message"] == "unexpected error"]
    assert failure["error_type"] == "RuntimeError" and len(failure["error"]) <= ERROR_TEXT_LIMIT
    assert "exception" not in failure  # no traceback text: its last line would be the whole message
    assert not any(event["body"] in line for line in lines)


def test_a_failing_step_logs_its_run_and_raises_its_error_clipped(aws, monkeypatch) -> None:
    # Given the load handler, and the step failing with an error that quotes a warehouse row
    handler = load_handler("load")
    module = __import__("clickstream_functions.load.app", fromlist=["run_load"])

    def fails(payload, settings):
        raise RuntimeError(f"COPY failed at row {ROW}")

    monkeypatch.setattr(module, "run_load", fails)
    # When the sample payload arrives
    with captured_output() as out, pytest.raises(RuntimeError) as raised:
        handler(load_event("load.json"), lambda_context("clickstream-local-load", memory_mb=2048))
    # Then what Lambda logs and the state machine's failure notice quote (the exception's text) is clipped
    assert len(str(raised.value)) <= ERROR_TEXT_LIMIT and ROW not in str(raised.value)
    # And the function's own ERROR line carries the run id
    [failure] = [r for r in _records(out.getvalue().splitlines()) if r["message"] == "invocation failed"]
    assert failure["run_id"] == "hourly-2026-03-02T10" and failure["error_type"] == "RuntimeError"
    assert ROW not in out.getvalue()


HANDLER_DECORATORS = (
    "logger.inject_lambda_context",
    "tracer.capture_lambda_handler",
    "metrics.log_metrics",
    "failures_logged",
)


@pytest.mark.parametrize("function", sorted(p.parent.name for p in functions_dir().glob("*/app.py")))
def test_every_handler_is_traced_logged_and_measured(function: str) -> None:
    # Given a handler's source
    tree = ast.parse((functions_dir() / function / "app.py").read_text(encoding="utf-8"))
    [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
    names = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in handler.decorator_list]
    # Then it logs with the Lambda context (keys cleared per invocation), is traced, flushes its metrics and logs
    # its failures clipped, in that order (outermost first)
    assert names == list(HANDLER_DECORATORS)
    context = next(d for d in handler.decorator_list if isinstance(d, ast.Call))
    assert any(k.arg == "clear_state" and ast.unparse(k.value) == "True" for k in context.keywords)
    traced = next(d for d in handler.decorator_list if "capture_lambda_handler" in ast.unparse(d))
    assert "capture_response=False" in ast.unparse(traced)  # an answer may hold shoppers' data
