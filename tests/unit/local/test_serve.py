"""``clickstream serve`` on an ephemeral port in a thread: CORS, the token check, the real ingest handler, the
pipeline run and a clean shutdown."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from clickstream_local.auth import LocalIssuer
from clickstream_local.serve import (
    NO_ROUTE_MESSAGE,
    GatewayShape,
    ServeOptions,
    api_gateway_event,
    running,
)
from clickstream_local.template import load_template
from tests.conftest import load_event
from tests.unit.local.serve_client import batch

ALLOWED = "http://localhost:5173"
FOREIGN = "https://evil.example"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _request(
    url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Answer:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


class Served:
    """A running endpoint in a thread, stopped by :meth:`stop` (or at the end of the module)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._cm = running(ServeOptions(port=0, out=out))
        self.server = self._cm.__enter__()
        self.url = self.server.url
        self.issuer = LocalIssuer.load(out)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self._thread.join()
            self._cm.__exit__(None, None, None)

    def post(self, batch: dict[str, Any], token: str | None = None, **headers: str) -> Answer:
        all_headers = {"Content-Type": "application/json", **headers}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return _request(self.url, "POST", "/v1/events", json.dumps(batch).encode(), all_headers)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("serve-output"))
    try:
        yield s
    finally:
        s.stop()


# -- the proxy event ----------------------------------------------------------------------------------------------
def test_the_proxy_event_has_api_gateways_shape():
    # Given a gzip request with a repeated header, a query string and verified claims
    body = gzip.compress(b'{"events": []}')
    when = datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)
    # When it becomes an API Gateway event
    event = api_gateway_event(
        method="POST",
        path="/v1/events",
        query="a=1&a=2",
        headers=[("Content-Type", "application/gzip"), ("X-Tag", "one"), ("X-Tag", "two")],
        body=body,
        source_ip="127.0.0.1",
        claims={"sub": "u-1", "exp": 1772445600, "email_verified": True},
        stage="local",
        received_at=when,
    )
    # Then the binary body is base64, headers come single- and multi-valued, claims are strings as the authorizer
    # passes them, and the receive time is in milliseconds
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == body
    assert event["headers"]["X-Tag"] == "two" and event["multiValueHeaders"]["X-Tag"] == ["one", "two"]
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    ctx = event["requestContext"]
    assert ctx["authorizer"]["claims"] == {"sub": "u-1", "exp": "1772445600", "email_verified": "true"}
    assert ctx["requestTimeEpoch"] == 1772445600123 and ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert event["path"] == "/v1/events" and ctx["stage"] == "local"


def test_a_json_body_stays_text_and_bytes_that_are_not_utf8_are_base64():
    common = dict(
        method="POST", path="/v1/events", query="", source_ip="127.0.0.1", claims=None, stage="local"
    )
    text = api_gateway_event(
        headers=[("Content-Type", "application/json")],
        body=b'{"a":1}',
        received_at=datetime.now(UTC),
        **common,
    )
    assert text["isBase64Encoded"] is False and text["body"] == '{"a":1}'
    assert "authorizer" not in text["requestContext"]
    raw = api_gateway_event(
        headers=[("Content-Type", "application/json")],
        body=b"\xff\xfe",
        received_at=datetime.now(UTC),
        **common,
    )
    assert raw["isBase64Encoded"] is True and base64.b64decode(raw["body"]) == b"\xff\xfe"


def test_cors_and_binary_types_come_from_the_template():
    # Given the stack's API as template.yaml declares it
    api = next(
        r["Properties"] for r in load_template()["Resources"].values() if r["Type"] == "AWS::Serverless::Api"
    )
    # When the endpoint reads its shape
    shape = GatewayShape.from_template()
    # Then the preflight answer and the binary media types are the stack's
    assert shape.allow_headers == api["Cors"]["AllowHeaders"].strip("'")
    assert {"Authorization", "Content-Type", "Content-Encoding"} <= set(shape.allow_headers.split(","))
    assert shape.allow_methods == "OPTIONS,POST" and shape.max_age == api["Cors"]["MaxAge"].strip("'")
    assert shape.binary_media_types == {"application/gzip", "application/x-gzip"}


# -- the server -----------------------------------------------------------------------------------------------------
def test_preflight_from_an_allowed_origin_is_answered(served):
    # When a browser on localhost asks whether it may post with a token and gzip
    answer = _request(
        served.url,
        "OPTIONS",
        "/v1/events",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,content-encoding",
        },
    )
    # Then the origin is echoed with the methods, headers and max-age of the stack's API
    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    # with credentials allowed, as trackers that fetch with credentials: 'include' need
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-allow-methods"] == "OPTIONS,POST"
    allowed = {h.lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "content-encoding"} <= allowed
    assert int(answer.headers["access-control-max-age"]) > 0


@pytest.mark.parametrize("origin", [FOREIGN, "http://localhost.evil.example:3000", None])
def test_preflight_from_another_origin_is_refused_without_cors_headers(served, origin):
    headers = {"Access-Control-Request-Method": "POST"} | ({"Origin": origin} if origin else {})
    answer = _request(served.url, "OPTIONS", "/v1/events", headers=headers)
    assert answer.status == 403
    assert not any(h.startswith("access-control-") for h in answer.headers)
    assert answer.json()["error"]["code"] == "forbidden"


def test_a_post_with_a_token_is_accepted_with_cors_for_the_origin(served):
    # Given a token for alice
    token = served.issuer.issue("alice")
    # When a browser posts two events with it
    answer = served.post(batch(2), token, Origin=ALLOWED)
    # Then the real ingest handler accepts them and the answer is readable cross-origin
    assert answer.status == 202 and answer.json() == {"accepted": 2}
    assert answer.headers["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda issuer: None, id="missing"),
        pytest.param(lambda issuer: "not-a-token", id="garbage"),
        pytest.param(
            lambda issuer: issuer.issue("alice", now=datetime.now(UTC) - timedelta(hours=2)), id="expired"
        ),
        pytest.param(lambda issuer: LocalIssuer.generate().issue("alice"), id="other-issuer"),
        pytest.param(lambda issuer: issuer.issue("alice", extra_claims={"aud": "x"}), id="other-audience"),
    ],
)
def test_a_post_without_a_valid_token_is_401_in_the_apis_error_shape(served, make_token):
    # When events are posted with no token or a bad one, from an allowed origin
    answer = served.post(batch(), make_token(served.issuer), Origin=ALLOWED)
    # Then the authorizer refuses them in the API's JSON error shape, readable by the page
    assert answer.status == 401
    assert answer.json()["error"]["code"] == "unauthorized" and answer.json()["error"]["message"]
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["access-control-allow-origin"] == ALLOWED


def test_a_refusal_to_a_foreign_origin_carries_no_cors_headers(served):
    answer = served.post(batch(), None, Origin=FOREIGN)
    assert answer.status == 401 and "access-control-allow-origin" not in answer.headers


def test_the_user_id_comes_from_the_token_not_the_body(served):
    # Given a body that claims to be another user
    claimed = batch()
    claimed["user_id"] = "someone-else"
    claimed["events"][0]["user_id"] = "someone-else"
    answer = served.post(claimed, served.issuer.issue("alice"))
    # Then the handler judges it as the real handler does (accepted as alice, or refused): never a 5xx
    assert answer.status < 500


def test_a_gzip_body_is_accepted(served):
    # Given a gzip-compressed batch sent as application/gzip, and one as JSON with Content-Encoding: gzip
    body = gzip.compress(json.dumps(batch(3)).encode())
    token = served.issuer.issue("alice")
    for headers in (
        {"Content-Type": "application/gzip"},
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ):
        # When it is posted
        answer = _request(
            served.url, "POST", "/v1/events", body, {**headers, "Authorization": f"Bearer {token}"}
        )
        # Then the handler inflates it and accepts every event
        assert (answer.status, answer.json()) == (202, {"accepted": 3}), headers


def test_a_snowplow_tracker_batch_is_accepted_with_the_token_it_carries(served):
    # Given a batch captured from the Snowplow JavaScript tracker, its Authorization replaced by a local token
    sample = load_event("ingest_snowplow.json")
    n = len(json.loads(sample["body"])["data"])
    headers = {
        **sample["headers"],
        "Authorization": f"Bearer {served.issuer.issue('alice')}",
        "Origin": ALLOWED,
    }
    # When the tracker posts it to the tp2 route
    answer = _request(
        served.url, "POST", "/com.snowplowanalytics.snowplow/tp2", sample["body"].encode("utf-8"), headers
    )
    # Then every event in it is accepted
    assert answer.status == 202 and answer.json() == {"accepted": n}
    assert answer.headers["access-control-allow-origin"] == ALLOWED


def test_handler_refusals_keep_their_status(served):
    token = served.issuer.issue("alice")
    bad_json = _request(
        served.url,
        "POST",
        "/v1/events",
        b"{not json",
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert bad_json.status == 400 and bad_json.json()["error"]["code"] == "bad_json"
    xml = _request(
        served.url,
        "POST",
        "/v1/events",
        b"<a/>",
        {"Content-Type": "text/xml", "Authorization": f"Bearer {token}"},
    )
    assert xml.status == 415


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/guest/events"), ("POST", "/nowhere"), ("GET", "/v1/events"), ("DELETE", "/v1/events")],
)
def test_routes_the_endpoint_does_not_have_are_404_as_api_gateway_answers(served, method, path):
    answer = _request(served.url, method, path, headers={"Content-Length": "0"})
    assert answer.status == 404
    assert answer.json() == {"error": {"code": "not_found", "message": NO_ROUTE_MESSAGE}}


def test_health_status_page_and_key_set(served):
    assert _request(served.url, "GET", "/health").json() == {"ok": True}
    keys = _request(served.url, "GET", "/.well-known/jwks.json").json()
    assert keys == served.issuer.jwks()
    home = _request(served.url, "GET", "/dashboard")
    assert home.status == 200 and home.headers["content-type"].startswith("text/html")
    assert b"clickstream serve" in home.body or b"<html" in home.body.lower()


def test_run_pipeline_loads_what_arrived_into_the_warehouse(served):
    # Given events accepted from bob
    before = _request(served.url, "POST", "/local/run-pipeline", b"").json()["warehouse"]["events"]
    assert served.post(batch(4), served.issuer.issue("bob")).status == 202
    # When the pipeline is run
    answer = _request(served.url, "POST", "/local/run-pipeline", b"", {"Origin": ALLOWED})
    # Then the run succeeded and the warehouse holds bob's events, under bob's user id
    run = answer.json()
    assert answer.status == 200 and run["status"] == "SUCCEEDED", run
    assert run["requests_since_previous_run"] == 1 and run["objects_validated"] >= 1
    assert run["warehouse"]["events"] == before + 4 and run["report_written"] is True
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    # And GET /dashboard now shows the report
    assert _request(served.url, "GET", "/dashboard").body == (served.out / "report.html").read_bytes()
    # And a page from a foreign origin cannot trigger a run
    assert _request(served.url, "POST", "/local/run-pipeline", b"", {"Origin": FOREIGN}).status == 403


def test_stopping_runs_a_last_pass_and_leaves_the_warehouse_readable(served):
    # Given events that arrived after the last pipeline run (this test stops the module's server: keep it last)
    import duckdb

    user = served.issuer.issue("carol")
    assert served.post(batch(5), user).status == 202
    # When the server is stopped
    served.stop()
    # Then the last pass loaded them, and the warehouse file opens (no lock held, no pending WAL needed)
    con = duckdb.connect(str(served.out / "warehouse.duckdb"), read_only=True)
    try:
        sub = served.issuer.subject("carol")
        assert con.execute("SELECT count(*) FROM events WHERE user_id = ?", [sub]).fetchone()[0] == 5
        # And no event was stored under the user a body claimed to be
        assert con.execute("SELECT count(*) FROM events WHERE user_id = 'someone-else'").fetchone()[0] == 0
    finally:
        con.close()
