"""The local issuer and the token check ``clickstream serve`` makes as the Cognito User Pool authorizer would."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clickstream_local.auth import (
    ISSUER_FILE,
    InvalidToken,
    LocalIssuer,
    TokenVerifier,
    bearer_token,
    issuer_url,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return LocalIssuer.generate()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def test_an_id_token_of_the_issuer_verifies_with_cognitos_claims(issuer):
    # Given an id token for alice
    token = issuer.issue("alice", now=NOW)
    # When the verifier checks it at the same moment
    claims = issuer.verifier().verify(token, now=NOW)
    # Then it carries what Cognito's id tokens carry, with a stable sub per user name
    assert claims["iss"] == f"https://cognito-idp.us-east-1.amazonaws.com/{issuer.user_pool_id}"
    assert claims["aud"] == issuer.client_id and claims["token_use"] == "id"
    assert claims["cognito:username"] == "alice"
    assert claims["exp"] == int(NOW.timestamp()) + 3600
    assert claims["sub"] == issuer.subject("alice") != issuer.subject("bob")
    assert issuer.verifier().verify(issuer.issue("alice", now=NOW), now=NOW)["sub"] == claims["sub"]
    header, _, _ = _segments(token)
    assert header["alg"] == "RS256" and header["kid"] == issuer.kid


def test_an_access_token_is_checked_on_client_id(issuer):
    # Given an access token (no aud; the app client is in client_id)
    token = issuer.issue("alice", token_use="access", now=NOW)
    # When it is verified
    claims = issuer.verifier().verify(token, now=NOW)
    # Then it passes and names the client
    assert claims["client_id"] == issuer.client_id and "aud" not in claims and claims["username"] == "alice"
    # And an access token for another client is refused
    other = issuer.issue("alice", token_use="access", now=NOW, extra_claims={"client_id": "someoneelse"})
    with pytest.raises(InvalidToken, match="client_id"):
        issuer.verifier().verify(other, now=NOW)


def test_an_expired_token_is_refused(issuer):
    # Given a token that expired one second ago
    token = issuer.issue("alice", now=NOW - timedelta(seconds=3601))
    # Then it is refused
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verifier().verify(token, now=NOW)
    # And a token still valid for one more second passes
    issuer.verifier().verify(issuer.issue("alice", now=NOW - timedelta(seconds=3599)), now=NOW)


def test_a_token_issued_in_the_future_is_refused(issuer):
    token = issuer.issue("alice", now=NOW + timedelta(minutes=5))
    with pytest.raises(InvalidToken, match="future"):
        issuer.verifier().verify(token, now=NOW)


def test_a_token_for_another_audience_is_refused(issuer):
    # Given an id token whose aud is another app client
    token = issuer.issue("alice", now=NOW, extra_claims={"aud": "anotherclient"})
    # Then it is refused
    with pytest.raises(InvalidToken, match="aud"):
        issuer.verifier().verify(token, now=NOW)


def test_a_token_of_another_issuer_is_refused_even_with_the_same_key(issuer):
    # Given a token signed with the right key but naming another pool as issuer
    token = issuer.issue("alice", now=NOW, extra_claims={"iss": issuer_url("us-east-1", "us-east-1_other")})
    # Then it is refused
    with pytest.raises(InvalidToken, match="iss"):
        issuer.verifier().verify(token, now=NOW)


def test_a_token_signed_by_another_key_is_refused(issuer):
    # Given a token from another issuer that claims this pool, its key id and its client
    forger = LocalIssuer(
        user_pool_id=issuer.user_pool_id,
        client_id=issuer.client_id,
        private_jwk={**LocalIssuer.generate().private_jwk, "kid": issuer.kid},
    )
    token = forger.issue("alice", now=NOW)
    # Then the signature does not verify against the issuer's JWKS
    with pytest.raises(InvalidToken, match="not signed by the issuer"):
        issuer.verifier().verify(token, now=NOW)


def test_a_token_whose_payload_was_altered_is_refused(issuer):
    # Given a genuine token whose payload is swapped for one naming another user
    header, _, signature = issuer.issue("alice", now=NOW).split(".")
    _, claims, _ = _segments(issuer.issue("alice", now=NOW))
    claims["sub"] = issuer.subject("mallory")
    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    # Then it is refused
    with pytest.raises(InvalidToken, match="not signed by the issuer"):
        issuer.verifier().verify(forged, now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_a_token_with_another_algorithm_is_refused(issuer, alg):
    # Given an unsigned token, or one MAC'ed with the public modulus as a shared secret (algorithm confusion)
    _, claims, _ = _segments(issuer.issue("alice", now=NOW))
    head = _b64(json.dumps({"alg": alg, "kid": issuer.kid, "typ": "JWT"}).encode())
    token = f"{head}.{_b64(json.dumps(claims).encode())}.{'' if alg == 'none' else _b64(b'x' * 32)}"
    # Then it is refused
    with pytest.raises(InvalidToken):
        issuer.verifier().verify(token, now=NOW)


@pytest.mark.parametrize("token_use", ["refresh", "", None])
def test_a_token_that_is_neither_id_nor_access_is_refused(issuer, token_use):
    # Given a token whose token_use is something else, empty or null
    token = issuer.issue("alice", now=NOW, extra_claims={"token_use": token_use})
    # Then it is refused
    with pytest.raises(InvalidToken, match="token_use"):
        issuer.verifier().verify(token, now=NOW)


@pytest.mark.parametrize("text", ["", "   ", "not-a-jwt", "a.b.c"])
def test_garbage_is_refused_as_unauthorized(issuer, text):
    with pytest.raises(InvalidToken):
        issuer.verifier().verify(text, now=NOW)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer  abc.def.ghi ", "abc.def.ghi"),
        ("abc.def.ghi", "abc.def.ghi"),
    ],
)
def test_the_authorization_header_gives_the_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz x"])
def test_a_missing_or_malformed_authorization_header_is_unauthorized(header):
    with pytest.raises(InvalidToken):
        bearer_token(header)


def test_the_published_key_set_holds_no_private_parts(issuer):
    # When the issuer publishes its JWKS
    keys = issuer.jwks()["keys"]
    # Then it is the public RSA key only, with the kid tokens name
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["kid"] == issuer.kid
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])


def test_serve_and_token_share_one_issuer_through_the_out_dir(tmp_path: Path):
    # Given a token command that runs first and creates the issuer
    out = tmp_path / "serve-output"
    first = LocalIssuer.load_or_create(out)
    token = first.issue("alice", now=NOW)
    # When the server (another process) loads the issuer of the same folder
    second = LocalIssuer.load_or_create(out)
    # Then it is the same issuer, and it accepts the token with the public key set alone
    assert second == first
    verifier = TokenVerifier(issuer=second.issuer, client_id=second.client_id, jwks=second.jwks())
    assert verifier.verify(token, now=NOW)["cognito:username"] == "alice"
    # And the signing key is readable by its owner only, and no temporary file is left behind
    assert stat.S_IMODE(os.stat(out / ISSUER_FILE).st_mode) == 0o600
    assert [p.name for p in out.iterdir()] == [ISSUER_FILE]


def test_another_folder_has_another_issuer_whose_tokens_are_refused(tmp_path: Path):
    a = LocalIssuer.load_or_create(tmp_path / "a")
    b = LocalIssuer.load_or_create(tmp_path / "b")
    assert a.user_pool_id != b.user_pool_id and a.kid != b.kid
    with pytest.raises(InvalidToken):
        a.verifier().verify(b.issue("alice", now=NOW), now=NOW)


def test_the_verifier_accepts_tokens_of_motos_cognito_user_pool():
    # Given a user pool, an app client and a user in moto's Cognito, and the pool's published JWKS
    import requests
    from moto import mock_aws

    from clickstream.adapters.aws import client, reset_clients

    with mock_aws():
        reset_clients()
        idp = client("cognito-idp")
        pool = idp.create_user_pool(PoolName="shoppers")["UserPool"]["Id"]
        app = idp.create_user_pool_client(
            UserPoolId=pool, ClientName="web", ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"]
        )["UserPoolClient"]["ClientId"]
        idp.admin_create_user(UserPoolId=pool, Username="alice", TemporaryPassword="Temp-pass-1!")
        idp.admin_set_user_password(
            UserPoolId=pool, Username="alice", Password="Pass-word-1!", Permanent=True
        )
        auth = idp.admin_initiate_auth(
            UserPoolId=pool,
            ClientId=app,
            AuthFlow="ADMIN_NO_SRP_AUTH",
            AuthParameters={"USERNAME": "alice", "PASSWORD": "Pass-word-1!"},
        )["AuthenticationResult"]
        url = issuer_url("us-east-1", pool)
        jwks = requests.get(f"{url}/.well-known/jwks.json", timeout=5).json()
        reset_clients()
    verifier = TokenVerifier(issuer=url, client_id=app, jwks=jwks)
    # When its id and access tokens are verified
    id_claims = verifier.verify(auth["IdToken"])
    access_claims = verifier.verify(auth["AccessToken"])
    # Then both pass, for the same user
    assert id_claims["token_use"] == "id" and access_claims["token_use"] == "access"
    assert id_claims["sub"] == access_claims["sub"]
    # And a verifier for another app client of the pool refuses them
    with pytest.raises(InvalidToken):
        TokenVerifier(issuer=url, client_id="another", jwks=jwks).verify(auth["IdToken"])
