"""``clickstream serve``'s HTTP layer against clients that misbehave: read deadlines, JSON for every refusal the
server gives itself (414 and 431 included), the Host check, and a JSON 500 rather than an empty reply."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from clickstream.local.serve import NO_ROUTE_MESSAGE
from tests.unit.local.serve_client import Served, is_api_error, read_answer

IDLE = 0.5
READ = 1.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("serve-http"), idle_timeout=IDLE, read_timeout=READ)
    try:
        yield s
    finally:
        s.stop()


# -- read deadlines ------------------------------------------------------------------------------------------------
def test_a_half_sent_body_is_answered_408_once_the_read_deadline_passes(served):
    with served.connect() as s:
        # Given a request whose body stops halfway
        s.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"app_id":' % served.port
        )
        # Then the server answers 408 in JSON and closes the connection
        status, headers, body = read_answer(s)
        assert status == 408 and headers["connection"] == "close"
        is_api_error(body, "request_timeout")
        assert s.recv(10) == b""


def test_an_idle_connection_is_closed_after_the_idle_deadline(served):
    with served.connect() as s:
        # Given a connection that sends nothing: it is closed, not kept
        assert s.recv(10) == b""


def test_a_request_dripping_one_byte_at_a_time_cannot_outlive_the_read_deadline(served):
    # Given a client sending its headers a byte every 0.1 s, each recv well within any per-read timeout
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % served.port + b"a" * 200
    with served.connect() as s:
        started = time.monotonic()
        closed = False
        for i in range(len(request)):
            try:
                s.sendall(request[i : i + 1])
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > READ + IDLE + 5:
                break
        # Then the server dropped the connection (the deadline covers the whole request, not each read)
        if not closed:
            s.settimeout(10)
            with contextlib.suppress(ConnectionResetError):  # closed, or reset with unread data
                assert s.recv(10) == b""


# -- the HTTP layer's own answers are JSON -------------------------------------------------------------------------
def test_a_uri_too_long_is_a_json_414(served):
    status, headers, body = served.raw(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414 and headers["content-type"] == "application/json"
    is_api_error(body, "uri_too_long")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(b"X-Big: " + b"a" * 70_000 + b"\r\n", id="header-line-too-long"),
        pytest.param(b"".join(b"X-H%d: v\r\n" % i for i in range(120)), id="too-many-headers"),
    ],
)
def test_headers_too_large_are_a_json_431(served, headers):
    status, answer_headers, body = served.raw(
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % served.port + headers + b"\r\n"
    )
    assert status == 431 and answer_headers["content-type"] == "application/json"
    is_api_error(body, "headers_too_large")


@pytest.mark.parametrize(
    ("request_line", "status", "code"),
    [
        (b"NONSENSE\r\n", 400, "bad_request"),
        (b"GET /health HTTP/9.9\r\n", 400, "bad_request"),
        (b"GET /health HTTP/2.0\r\n", 400, "bad_request"),
        (b"BREW /health HTTP/1.1\r\n", 404, "not_found"),
    ],
)
def test_malformed_requests_are_json_4xx_never_html_or_5xx(served, request_line, status, code):
    got, headers, body = served.raw(request_line + b"Host: 127.0.0.1:%d\r\n\r\n" % served.port)
    assert got == status and headers["content-type"] == "application/json"
    error = is_api_error(body, code)
    if code == "not_found":
        assert error["message"] == NO_ROUTE_MESSAGE


# -- the Host check ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/local/status"), ("POST", "/local/run-pipeline"), ("POST", "/v1/events"), ("GET", "/")],
)
@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "localhost:1", "127.0.0.1", "127.0.0.1.evil.example:{port}"],
)
def test_a_request_for_another_host_is_refused_in_json(served, method, path, host):
    # Given a page on an attacker's name that resolves to 127.0.0.1 (DNS rebinding) asking for the endpoint
    shown = host.format(port=served.port)
    status, headers, body = served.raw(
        f"{method} {path} HTTP/1.1\r\nHost: {shown}\r\nContent-Length: 0\r\n\r\n".encode()
    )
    # Then it is refused before any route runs
    assert status == 403 and headers["content-type"] == "application/json"
    assert is_api_error(body, "host_not_allowed")["message"].startswith("Host ")


def test_a_request_without_a_host_is_refused(served):
    status, _, body = served.raw(b"GET /local/status HTTP/1.0\r\n\r\n")
    assert status == 403
    is_api_error(body, "host_not_allowed")


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "LOCALHOST"])
def test_the_bound_address_and_localhost_with_the_port_are_served(served, name):
    status, _, body = served.raw(f"GET /local/status HTTP/1.1\r\nHost: {name}:{served.port}\r\n\r\n".encode())
    assert status == 200 and json.loads(body)["ok"] is True


def test_an_unexpected_error_in_a_route_is_a_json_500_not_an_empty_reply(served, monkeypatch):
    def broken() -> dict[str, Any]:
        raise RuntimeError("the stack is gone")

    monkeypatch.setattr(served.server.endpoint, "run_pipeline", broken)
    status, answer = served.request("POST", "/local/run-pipeline")
    assert status == 500 and answer["error"]["code"] == "internal_error"
    assert "RuntimeError: the stack is gone" in answer["error"]["message"]
