"""The user pool's Hosted UI as ``clickstream serve`` plays it: OAuth 2.0 authorization code + PKCE (RFC 7636).

``GET /oauth2/authorize?response_type=code&client_id&redirect_uri&code_challenge&code_challenge_method=S256&scope
&state`` shows a sign-in page (``data-testid`` ``username``, ``password``, ``sign-in-submit``: any user name, the
password ``demo``); posting it redirects to ``redirect_uri?code=…&state=…``. The code is bound to the client id,
the redirect URI and the PKCE challenge, works once and for :data:`CODE_TTL_SECONDS`.

``POST /oauth2/token`` (``application/x-www-form-urlencoded``) takes ``grant_type=authorization_code`` (the
verifier's BASE64URL(SHA-256) must equal the challenge) and ``grant_type=refresh_token``; it answers Cognito's JSON
``{id_token, access_token, refresh_token?, expires_in, token_type}``, or a 400 in OAuth's error shape
(RFC 6749 §5.2) — ``{"error": "invalid_request" | "invalid_client" | "invalid_grant" | "unsupported_grant_type",
"error_description": …}`` — which is what the store reads. The tokens are the local issuer's
(:class:`~clickstream_local.auth.LocalIssuer`, the keys ``clickstream token`` signs with), so ``/v1/events``
verifies them exactly as it verifies any other. Codes and refresh tokens live in memory: after a restart a stored
refresh token is refused and the store signs its user out.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from clickstream_local.answers import HttpAnswer
from clickstream_local.auth import LocalIssuer

PASSWORD = "demo"
CODE_TTL_SECONDS = 300  # Cognito's authorization codes are valid for five minutes
TOKEN_TTL_SECONDS = 3600
CALLBACK_PATH = "/auth/callback"
MAX_USERNAME = 128
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # BASE64URL(SHA-256(verifier)), no padding
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1
_AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "state",
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """A refusal in OAuth's shape: 400 ``{"error": code, "error_description": message}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def answer(self) -> HttpAnswer:
        return HttpAnswer.json(400, {"error": self.code, "error_description": self.message}, {**_NO_STORE})


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    username: str
    expires_at: float


def s256(verifier: str) -> str:
    """BASE64URL(SHA-256(ASCII(verifier))) without padding: the S256 code challenge."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def clean_username(value: str) -> str:
    """The user name as typed, trimmed; refused when empty, too long or holding control characters."""
    name = value.strip()
    if not name:
        raise ValueError("Enter a user name.")
    if len(name) > MAX_USERNAME:
        raise ValueError(f"A user name has at most {MAX_USERNAME} characters.")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in name):
        raise ValueError("A user name cannot hold control characters.")
    return name


class HostedUI:
    """The sign-in page and the token endpoint for the local issuer's one app client."""

    def __init__(self, issuer: LocalIssuer, *, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.clock = clock
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token -> (user name, client id)
        self._lock = threading.Lock()

    # -- /oauth2/authorize ---------------------------------------------------------------------------------------
    def _authorize_params(self, params: Mapping[str, str], origin: str) -> dict[str, str]:
        """The authorize request's parameters once every one is as the app client allows."""
        if params.get("client_id") != self.issuer.client_id:
            raise OAuthError("invalid_client", "unknown client_id")
        if params.get("redirect_uri") != origin + CALLBACK_PATH:
            raise OAuthError("invalid_request", f"redirect_uri must be {origin}{CALLBACK_PATH}")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.match(params.get("code_challenge", "")):
            raise OAuthError("invalid_request", "code_challenge must be BASE64URL(SHA-256(code_verifier))")
        if "openid" not in params.get("scope", "").split():
            raise OAuthError("invalid_scope", "scope must include openid")
        if len(params.get("state", "")) > 2048:
            raise OAuthError("invalid_request", "state is too long")
        return {k: params[k] for k in _AUTHORIZE_FIELDS if k in params}

    def authorize_page(self, query: str, origin: str) -> HttpAnswer:
        """``GET /oauth2/authorize``: the sign-in form, or a 400 when the request is not the client's."""
        try:
            params = self._authorize_params(_form(query), origin)
        except OAuthError as exc:
            return exc.answer()
        return _sign_in_page(params, error=None, status=200)

    def sign_in(self, body: bytes, origin: str) -> HttpAnswer:
        """``POST /oauth2/authorize`` (the form): a 302 to the redirect URI with a fresh code and the state, or
        the form again with the reason."""
        try:
            form = _form(body.decode("utf-8"))
            params = self._authorize_params(form, origin)
        except UnicodeDecodeError:
            return OAuthError("invalid_request", "the form is not UTF-8").answer()
        except OAuthError as exc:
            return exc.answer()
        try:
            username = clean_username(form.get("username", ""))
        except ValueError as exc:
            return _sign_in_page(params, error=str(exc), status=400)
        if not secrets.compare_digest(form.get("password", "").encode(), PASSWORD.encode()):
            return _sign_in_page(params, error="Incorrect user name or password.", status=401)
        code = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            for stale in [k for k, v in self._codes.items() if v.expires_at <= now]:
                del self._codes[stale]
            self._codes[code] = _Code(
                client_id=params["client_id"],
                redirect_uri=params["redirect_uri"],
                challenge=params["code_challenge"],
                username=username,
                expires_at=now + CODE_TTL_SECONDS,
            )
        query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
        location = f"{params['redirect_uri']}?{urlencode(query)}"
        return HttpAnswer(302, {"Location": location, **_NO_STORE})

    # -- /oauth2/token -------------------------------------------------------------------------------------------
    def token(self, content_type: str | None, body: bytes) -> HttpAnswer:
        """``POST /oauth2/token``: tokens, or a 400 in OAuth's error shape."""
        try:
            return HttpAnswer.json(200, self._token(content_type, body), _NO_STORE)
        except OAuthError as exc:
            return exc.answer()

    def _token(self, content_type: str | None, body: bytes) -> dict[str, Any]:
        media = (content_type or "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
        try:
            form = _form(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "the body is not UTF-8") from None
        if form.get("client_id") != self.issuer.client_id:
            raise OAuthError("invalid_client", "unknown client_id")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == "refresh_token":
            return self._refresh_tokens(form)
        raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")

    def _exchange_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)  # a code works once, even when refused
        if code is None:
            raise OAuthError("invalid_grant", "the code is unknown or was already used")
        if code.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "the code has expired")
        if code.client_id != form.get("client_id"):
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if code.redirect_uri != form.get("redirect_uri"):
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.match(verifier) or not secrets.compare_digest(s256(verifier), code.challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        refresh = secrets.token_urlsafe(48)
        with self._lock:
            self._refresh[refresh] = (code.username, code.client_id)
        return {**self._tokens(code.username), "refresh_token": refresh}

    def _refresh_tokens(self, form: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            known = self._refresh.get(form.get("refresh_token", ""))
        if known is None or known[1] != form.get("client_id"):
            raise OAuthError("invalid_grant", "the refresh token is unknown")
        return self._tokens(known[0])

    def _tokens(self, username: str) -> dict[str, Any]:
        from datetime import UTC, datetime

        now = datetime.fromtimestamp(self.clock(), UTC)
        extra = {"email": username} if "@" in username else {}
        return {
            "id_token": self.issuer.issue(
                username, token_use="id", expires_in=TOKEN_TTL_SECONDS, now=now, extra_claims=extra
            ),
            "access_token": self.issuer.issue(
                username, token_use="access", expires_in=TOKEN_TTL_SECONDS, now=now
            ),
            "expires_in": TOKEN_TTL_SECONDS,
            "token_type": "Bearer",
        }


def _form(text: str) -> dict[str, str]:
    """A query string or form body; the last of a repeated name wins. Refuses oversize input."""
    if len(text) > 16384:
        raise OAuthError("invalid_request", "the request is too long")
    return dict(parse_qsl(text, keep_blank_values=True))


def _sign_in_page(params: Mapping[str, str], *, error: str | None, status: int) -> HttpAnswer:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
    )
    alert = (
        f'<p role="alert" class="error" data-testid="sign-in-error">{html.escape(error)}</p>' if error else ""
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Example Electronics</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#f4f5f7;margin:0;display:grid;place-items:center;
min-height:100vh}}main{{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0003;width:min(22rem,90vw)}}
label{{display:block;margin-top:1rem;font-weight:600}}input{{width:100%;box-sizing:border-box;padding:.5rem;
font:inherit;border:1px solid #6b6b6b;border-radius:4px}}button{{margin-top:1.5rem;width:100%;padding:.6rem;
font:inherit;font-weight:600;color:#fff;background:#1f4fd1;border:0;border-radius:4px;cursor:pointer}}
.error{{color:#a4000f;font-weight:600}}.hint{{color:#4a4a4a;font-size:.9rem}}
</style></head>
<body><main><h1>Sign in</h1>
<p class="hint">Local sign-in of <code>clickstream serve</code>: any user name, the password <code>demo</code>.</p>
{alert}
<form method="post" action="/oauth2/authorize">{hidden}
<label for="username">User name</label>
<input id="username" name="username" data-testid="username" autocomplete="username" required maxlength="{MAX_USERNAME}">
<label for="password">Password</label>
<input id="password" name="password" type="password" data-testid="password" autocomplete="current-password" required>
<button type="submit" data-testid="sign-in-submit">Sign in</button>
</form></main></body></html>
"""
    headers = {"Content-Type": "text/html; charset=utf-8", **_NO_STORE}
    return HttpAnswer(status, headers, page.encode("utf-8"))
