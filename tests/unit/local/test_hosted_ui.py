"""The local Hosted UI: the sign-in form, the code bound to client, redirect URI and PKCE challenge, the token
endpoint's grants and every refusal as a 400 in OAuth's error shape."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream_local.auth import LocalIssuer
from clickstream_local.hosted_ui import CODE_TTL_SECONDS, HostedUI, s256

ORIGIN = "http://127.0.0.1:3000"
REDIRECT = ORIGIN + "/auth/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
FORM = "application/x-www-form-urlencoded"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer.load_or_create(Path(tmp_path_factory.mktemp("issuer")))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ui(issuer: LocalIssuer, clock: Clock) -> HostedUI:
    return HostedUI(issuer, clock=clock)


def authorize(issuer: LocalIssuer, **changes: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": issuer.client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        "scope": "openid email profile",
        "state": "xyz-state",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v != "<drop>"}


def sign_in(ui: HostedUI, params: dict[str, str], username: str = "ada", password: str = "demo"):
    return ui.sign_in(urlencode({**params, "username": username, "password": password}).encode(), ORIGIN)


def code_of(answer) -> str:
    assert answer.status == 302, answer.body
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz-state"]
    return query["code"][0]


def exchange(ui: HostedUI, issuer: LocalIssuer, issued: str, **changes: str):
    form = {
        "grant_type": "authorization_code",
        "client_id": issuer.client_id,
        "code": issued,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        **changes,
    }
    return ui.token(FORM, urlencode(form).encode())


def oauth_error(answer) -> str:
    assert answer.status == 400 and answer.headers["Content-Type"] == "application/json"
    body = json.loads(answer.body)
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body["error"]


def test_rfc_7636_example_challenge():
    assert s256(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_sign_in_page_has_the_hooks_and_carries_the_request(ui, issuer):
    page = ui.authorize_page(urlencode(authorize(issuer)), ORIGIN)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.body.decode()
    for hook in ('data-testid="username"', 'data-testid="password"', 'data-testid="sign-in-submit"'):
        assert hook in text
    assert 'name="state" value="xyz-state"' in text and 'method="post" action="/oauth2/authorize"' in text


def test_sign_in_then_code_then_tokens_the_api_verifies(ui, issuer):
    code = code_of(sign_in(ui, authorize(issuer), username="ada@example.com"))
    answer = exchange(ui, issuer, code)
    assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
    tokens = json.loads(answer.body)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600 and tokens["refresh_token"]
    claims = issuer.verifier().verify(tokens["id_token"])
    assert claims["sub"] == issuer.subject("ada@example.com") and claims["aud"] == issuer.client_id
    assert claims["cognito:username"] == "ada@example.com" and claims["email"] == "ada@example.com"
    assert issuer.verifier().verify(tokens["access_token"])["token_use"] == "access"
    # the refresh grant gives fresh tokens for the same user
    refreshed = ui.token(
        FORM,
        urlencode(
            {
                "grant_type": "refresh_token",
                "client_id": issuer.client_id,
                "refresh_token": tokens["refresh_token"],
            }
        ).encode(),
    )
    assert refreshed.status == 200
    assert issuer.verifier().verify(json.loads(refreshed.body)["id_token"])["sub"] == claims["sub"]


def test_a_wrong_password_shows_the_form_again_with_an_error(ui, issuer):
    answer = sign_in(ui, authorize(issuer), password="Demo")
    assert answer.status == 401 and b'data-testid="sign-in-error"' in answer.body
    assert b"Incorrect user name or password." in answer.body and "Location" not in answer.headers


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"redirect_uri": "https://evil.example/auth/callback"}, "invalid_request"),
        ({"redirect_uri": ORIGIN + "/elsewhere"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "<drop>"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "email"}, "invalid_scope"),
    ],
)
def test_an_authorize_request_that_is_not_the_clients_is_refused_without_a_redirect(
    ui, issuer, changes, error
):
    assert oauth_error(ui.authorize_page(urlencode(authorize(issuer, **changes)), ORIGIN)) == error
    assert oauth_error(sign_in(ui, authorize(issuer, **changes))) == error


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_verifier": "x" * 43}, "invalid_grant"),  # wrong verifier
        ({"code_verifier": ""}, "invalid_grant"),
        ({"redirect_uri": ORIGIN + "/other"}, "invalid_grant"),
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"code": "never-issued"}, "invalid_grant"),
    ],
)
def test_a_code_exchange_that_does_not_match_is_refused(ui, issuer, changes, error):
    code = code_of(sign_in(ui, authorize(issuer)))
    assert oauth_error(exchange(ui, issuer, code, **changes)) == error


def test_a_code_works_once_even_after_a_refusal(ui, issuer):
    code = code_of(sign_in(ui, authorize(issuer)))
    assert exchange(ui, issuer, code).status == 200
    assert oauth_error(exchange(ui, issuer, code)) == "invalid_grant"
    other = code_of(sign_in(ui, authorize(issuer)))
    assert oauth_error(exchange(ui, issuer, other, code_verifier="y" * 43)) == "invalid_grant"
    assert oauth_error(exchange(ui, issuer, other)) == "invalid_grant"  # refused once: gone


def test_an_expired_code_is_refused(ui, issuer, clock):
    code = code_of(sign_in(ui, authorize(issuer)))
    clock.now += CODE_TTL_SECONDS
    assert oauth_error(exchange(ui, issuer, code)) == "invalid_grant"


def test_token_requests_of_the_wrong_shape_are_refused(ui, issuer):
    assert oauth_error(ui.token("application/json", b"{}")) == "invalid_request"
    assert oauth_error(ui.token(FORM, b"\xff\xfe")) == "invalid_request"
    assert oauth_error(ui.token(FORM, b"a=" + b"x" * 20000)) == "invalid_request"
    refresh = {"grant_type": "refresh_token", "client_id": issuer.client_id, "refresh_token": "nope"}
    assert oauth_error(ui.token(FORM, urlencode(refresh).encode())) == "invalid_grant"


@settings(max_examples=40, deadline=None)
@given(username=st.text(max_size=200), state=st.text(max_size=100))
def test_any_user_name_or_state_is_signed_in_or_refused_never_breaks(issuer, username, state):
    ui = HostedUI(issuer)
    params = authorize(issuer, state=state)
    answer = sign_in(ui, params, username=username)
    assert answer.status in (302, 400)
    page = answer.body.decode("utf-8")
    assert "<script" not in page.lower()
    if answer.status == 302:
        query = parse_qs(urlsplit(answer.headers["Location"]).query, keep_blank_values=True)
        assert query.get("state", [""]) == [state]
        tokens = json.loads(exchange(ui, issuer, query["code"][0]).body)
        assert issuer.verifier().verify(tokens["id_token"])["cognito:username"] == username.strip()


@settings(max_examples=80, deadline=None)
@given(body=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)))
def test_any_token_request_body_is_refused_in_oauths_shape(issuer, body):
    answer = HostedUI(issuer).token(FORM, body)
    assert answer.status == 400 and oauth_error(answer) in {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
    }
