"""Helpers for the ingest tests: API Gateway REST proxy events built from the sample in ``events/``."""

from __future__ import annotations

import base64
import copy
import gzip
import importlib.util
import json
from dataclasses import dataclass
from typing import Any

import pytest

from clickstream.core.config import Settings
from clickstream.ingest.api import app
from tests.conftest import REPO_ROOT, load_event
from tests.fakes.sink import MemorySink

NATIVE = load_event("ingest_native.json")
SUB = NATIVE["requestContext"]["authorizer"]["claims"]["sub"]


def envelope(n_events: int = 3, **overrides: Any) -> dict:
    """The sample request's envelope (3 realistic events), optionally with ``n_events`` generated ones."""
    env = json.loads(NATIVE["body"])
    if n_events != 3:
        env["events"] = [
            {
                "event_id": f"00000000-0000-4000-8000-{i:012d}",
                "event_type": "page_view",
                "occurred_at": "2026-03-02T14:04:51.120Z",
                "page": {"url": f"https://shop.example.com/p/{i}"},
            }
            for i in range(n_events)
        ]
    env.update(overrides)
    return env


def api_event(
    body: Any = None,
    *,
    raw: str | bytes | None = None,
    gzip_body: bool = False,
    headers: dict[str, str] | None = None,
    drop_headers: tuple[str, ...] = (),
    claims: dict | bool | None = True,
    method: str = "POST",
    path: str = "/v1/events",
    request_time_epoch: int | None = 1772460309731,
) -> dict:
    """An API Gateway REST proxy event for ``POST /v1/events`` shaped like ``events/ingest_native.json``.

    ``body`` is JSON-encoded; ``raw`` is sent as is (bytes are base64-encoded as API Gateway does for binary
    media types); ``gzip_body`` compresses the body and marks it ``Content-Encoding: gzip``.
    """
    event = copy.deepcopy(NATIVE)
    event["httpMethod"] = method
    event["path"] = path
    hdrs = {k: v for k, v in event["headers"].items() if k not in drop_headers}
    hdrs.update(headers or {})
    data: str | bytes | None = raw if raw is not None else (None if body is None else json.dumps(body))
    if gzip_body:
        payload = data.encode() if isinstance(data, str) else (data or b"")
        data = gzip.compress(payload, mtime=0)
        hdrs.setdefault("Content-Encoding", "gzip")
    if isinstance(data, bytes):
        event["body"] = base64.b64encode(data).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = data
        event["isBase64Encoded"] = False
    event["headers"] = hdrs
    event["multiValueHeaders"] = {k: [v] for k, v in hdrs.items()}
    ctx = event["requestContext"]
    if claims is None or claims is False:
        ctx.pop("authorizer", None)
    elif isinstance(claims, dict):
        ctx["authorizer"] = {"claims": claims}
    if request_time_epoch is None:
        ctx.pop("requestTimeEpoch", None)
    else:
        ctx["requestTimeEpoch"] = request_time_epoch
    return event


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict[str, list[str]]

    @property
    def error(self) -> dict:
        return self.body["error"]


def call(event: dict, sink: MemorySink, settings: Settings | None = None) -> Answer:
    """Resolve ``event`` through the ingest API with ``sink`` behind it."""
    app.append_context(settings=settings or Settings(), sink=sink)
    response = app.resolve(event, None)
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return Answer(response["statusCode"], json.loads(response["body"]), dict(response["multiValueHeaders"]))


def records_of(sink: MemorySink) -> list[dict]:
    out = []
    for record in sink.records:
        assert record.endswith(b"\n") and record.count(b"\n") == 1
        out.append(json.loads(record))
    return out


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink([])


@pytest.fixture(scope="session")
def ingest_handler():
    """``functions/ingest/app.py`` loaded as Lambda loads it (it is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "ingest_function_app", REPO_ROOT / "functions/ingest/app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SNOWPLOW_FIXTURES = REPO_ROOT / "tests/fixtures/snowplow"
GUEST_IDENTITY = "us-east-1:3f0c8a52-7d1e-4c59-9b5e-2a6f0d4c1e77"
GUEST_POOL = "us-east-1:0b6f5a3c-1d2e-4f70-8a9b-c0d1e2f3a4b5"


def load_capture(name: str) -> dict:
    """A batch captured from the real Snowplow browser tracker (web/snowplow-capture/capture.sh)."""
    return json.loads((SNOWPLOW_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def captured_event(
    captured: dict, *, path: str = "/com.snowplowanalytics.snowplow/tp2", claims: dict | bool | None = True
) -> dict:
    """One captured tp2 POST as API Gateway hands it over: its headers and body as the browser sent them,
    ``requestTimeEpoch`` = the moment the collector received it."""
    event = api_event(
        raw=captured["body"],
        headers={k.title(): v for k, v in captured["headers"].items() if k != "content-length"},
        drop_headers=tuple(NATIVE["headers"]),
        path=path,
        claims=claims,
        request_time_epoch=captured["received_at_ms"],
    )
    event["resource"] = path
    event["requestContext"]["resourcePath"] = path
    return event


def guest_identity(event: dict, identity_id: str | None = GUEST_IDENTITY) -> dict:
    """``event`` as API Gateway passes a SigV4-signed call from an unauthenticated identity-pool identity."""
    ctx = event["requestContext"]
    ctx.pop("authorizer", None)
    ctx["identity"] = {
        **ctx.get("identity", {}),
        "cognitoIdentityPoolId": GUEST_POOL if identity_id else None,
        "cognitoIdentityId": identity_id,
        "cognitoAuthenticationType": "unauthenticated" if identity_id else None,
        "cognitoAuthenticationProvider": None,
        "accessKey": "ASIAEXAMPLEGUESTKEY1" if identity_id else None,
        "caller": "AROAEXAMPLEGUESTROLE:CognitoIdentityCredentials" if identity_id else None,
        "userArn": (
            "arn:aws:sts::123456789012:assumed-role/clickstream-dev-guest/CognitoIdentityCredentials"
            if identity_id
            else None
        ),
    }
    return event
