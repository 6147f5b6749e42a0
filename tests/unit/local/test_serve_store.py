"""``clickstream serve`` as the store's server side (web/README.md, the store's contract): the built store with its
caching and SPA fallback, ``/config.json``, the dashboard, the local Hosted UI and identity pool, and the guest
route behind SigV4, answered by the real ingest handler with the identity in the proxy event."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from clickstream_local import serve
from clickstream_local.hosted_ui import s256
from clickstream_local.store import StoreFiles
from tests.unit.local.serve_client import Served, batch, is_api_error, read_answer

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("store")
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Example Electronics</title>")
    (dist / "assets" / "app-XYZ.js").write_text("export {}")
    s = Served(root / "serve-output", store_dir=dist)
    try:
        yield s
    finally:
        s.stop()


def get(
    served: Served, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{served.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return served.raw(("\r\n".join(lines) + "\r\n\r\n").encode())


def post(
    served: Served, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{served.port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with served.connect() as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return read_answer(s)


# -- the store ----------------------------------------------------------------------------------------------------
def test_the_store_is_served_at_the_root_with_its_caching_and_fallback(served):
    status, headers, body = get(served, "/")
    assert status == 200 and body.startswith(b"<!doctype html>") and headers["cache-control"] == "no-cache"
    status, headers, body = get(served, "/assets/app-XYZ.js")
    assert status == 200 and body == b"export {}" and "immutable" in headers["cache-control"]
    for route in ("/c/laptops", "/p/LAP-0001/x", "/checkout/confirmation?order=A-1", "/auth/callback?code=x"):
        status, headers, body = get(served, route)
        assert status == 200 and body.startswith(b"<!doctype html>"), route


@pytest.mark.parametrize("path", ["/v1/events", "/v1/guest/nothing", "/local/nothing", "/oauth2/nothing"])
def test_api_paths_never_fall_back_to_the_store(served, path):
    status, headers, body = get(served, path)
    assert status == 404 and headers["content-type"] == "application/json"
    is_api_error(body, "not_found")


def test_config_json_is_for_this_origin(served):
    status, headers, body = get(served, "/config.json")
    config = json.loads(body)
    assert status == 200 and headers["cache-control"] == "no-store"
    endpoint = served.server.endpoint
    assert config["clientId"] == served.issuer.client_id and config["authDomain"] == ""
    assert config["identityPoolId"] == endpoint.identity_pool.pool_id
    assert config["identityEndpoint"] == serve.IDENTITY_PATH and config["apiBase"] == ""
    assert config["requireConsent"] is True


def test_the_dashboard_has_its_own_path(served):
    status, _, body = get(served, "/dashboard")
    assert status == 200 and b"clickstream serve" in body


def test_a_store_that_is_not_built_says_to_run_make_web(tmp_path):
    endpoint = SimpleNamespace(store=StoreFiles(tmp_path / "dist"))
    answer = serve._store_file(endpoint, "/")  # type: ignore[arg-type]
    assert answer.status == 503 and b"make web" in answer.body


# -- the Hosted UI ------------------------------------------------------------------------------------------------
def test_sign_in_through_the_hosted_ui_then_post_with_the_id_token(served):
    origin = f"http://127.0.0.1:{served.port}"
    params = {
        "response_type": "code",
        "client_id": served.issuer.client_id,
        "redirect_uri": f"{origin}/auth/callback",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        "scope": "openid email profile",
        "state": "s-1",
    }
    status, _, page = get(served, "/oauth2/authorize?" + urlencode(params))
    assert status == 200 and b'data-testid="sign-in-submit"' in page
    form = urlencode({**params, "username": "grace", "password": "demo"}).encode()
    status, headers, _ = post(
        served, "/oauth2/authorize", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 302
    code = parse_qs(urlsplit(headers["location"]).query)["code"][0]
    exchange = urlencode(
        {
            "grant_type": "authorization_code",
            "client_id": served.issuer.client_id,
            "code": code,
            "redirect_uri": f"{origin}/auth/callback",
            "code_verifier": VERIFIER,
        }
    ).encode()
    status, _, body = post(
        served, "/oauth2/token", exchange, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200
    tokens = json.loads(body)
    again = post(served, "/oauth2/token", exchange, {"Content-Type": "application/x-www-form-urlencoded"})
    assert again[0] == 400 and json.loads(again[2])["error"] == "invalid_grant"
    # the ID token is what /v1/events verifies, as any token of the local issuer
    status, _, body = post(
        served,
        "/v1/events",
        json.dumps(batch(2)).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {tokens['id_token']}"},
    )
    assert status == 202 and json.loads(body)["accepted"] == 2


def test_an_authorize_request_for_another_redirect_uri_is_refused(served):
    query = urlencode(
        {"client_id": served.issuer.client_id, "redirect_uri": "https://evil.example/auth/callback"}
    )
    status, _, body = get(served, "/oauth2/authorize?" + query)
    assert status == 400 and json.loads(body)["error"] == "invalid_request"


# -- the identity pool and the guest route ------------------------------------------------------------------------
def identity_call(served: Served, operation: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
    status, _, answer = post(
        served,
        serve.IDENTITY_PATH,
        json.dumps(body).encode(),
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AWSCognitoIdentityService.{operation}",
        },
    )
    return status, json.loads(answer)


def guest_credentials(served: Served) -> tuple[str, Credentials]:
    pool_id = served.server.endpoint.identity_pool.pool_id
    status, got = identity_call(served, "GetId", {"IdentityPoolId": pool_id})
    assert status == 200
    identity = str(got["IdentityId"])
    status, answer = identity_call(served, "GetCredentialsForIdentity", {"IdentityId": identity})
    assert status == 200
    c = answer["Credentials"]
    assert isinstance(c, dict)
    return identity, Credentials(c["AccessKeyId"], c["SecretKey"], c["SessionToken"])


def signed_post(served: Served, credentials: Credentials, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:{served.port}/v1/guest/events",
        data=body,
        headers={"Content-Type": "application/gzip", "Host": f"127.0.0.1:{served.port}"},
    )
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "host"}


def test_an_unknown_identity_is_resource_not_found(served):
    status, answer = identity_call(served, "GetCredentialsForIdentity", {"IdentityId": "us-east-1:nobody"})
    assert status == 400 and answer["__type"] == "ResourceNotFoundException"


def test_a_guest_batch_signed_by_botocore_is_accepted_with_the_identity(served):
    identity, credentials = guest_credentials(served)
    body = gzip.compress(json.dumps(batch(3)).encode())
    spooled = len(served.server.endpoint.spool.entries())
    status, _, answer = post(served, "/v1/guest/events", body, signed_post(served, credentials, body))
    assert status == 202 and json.loads(answer)["accepted"] == 3
    # the ingest handler derived the guest caller from the proxy event's identity, as in AWS
    entries = served.server.endpoint.spool.entries()[spooled:]
    records = [json.loads(r) for e in entries for r in e.records()]
    assert len(records) == 1 and records[0]["guest_id"] == identity  # one raw record per request
    assert records[0].get("user_id") is None


@pytest.mark.parametrize("tamper", ["body", "header", "date", "token"])
def test_a_tampered_guest_request_is_the_stacks_json_403(served, tamper):
    _, credentials = guest_credentials(served)
    body = gzip.compress(json.dumps(batch(1)).encode())
    headers = signed_post(served, credentials, body)
    if tamper == "body":
        body = gzip.compress(json.dumps(batch(1)).encode())
    elif tamper == "header":
        headers["Content-Type"] = "application/json"
    elif tamper == "date":
        headers["X-Amz-Date"] = "20200101T000000Z"
    else:
        headers["X-Amz-Security-Token"] = guest_credentials(served)[1].token
    status, answer_headers, answer = post(served, "/v1/guest/events", body, headers)
    assert status == 403 and answer_headers["content-type"] == "application/json"
    is_api_error(answer, "client_error")


def test_the_cli_passes_the_store_folder_and_the_consent_choice(monkeypatch, tmp_path):
    from clickstream_cli.main import main

    seen: list[serve.ServeOptions] = []
    monkeypatch.setattr(serve, "serve", lambda options, log=None: seen.append(options) or 0)
    assert main(["serve", "--port", "0", "--store", str(tmp_path), "--no-consent-banner", "--quiet"]) == 0
    assert seen[0].store_dir == tmp_path and seen[0].require_consent is False
    assert main(["serve", "--port", "0", "--quiet"]) == 0
    assert seen[1].store_dir == serve.DEFAULT_STORE_DIR and seen[1].require_consent is True
