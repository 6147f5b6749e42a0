"""The local identity pool (GetId, GetCredentialsForIdentity) and the guest routes' SigV4 check: a request signed
by botocore passes, any tampering is refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream_local.identity import AMZ_JSON, GuestCredentials, IdentityPool, SignatureRefused

HOST = "127.0.0.1:3000"
PATH = "/v1/guest/events"
BODY = b'{"app_id":"shop-web","events":[]}'


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pool(clock: Clock) -> IdentityPool:
    return IdentityPool("us-east-1", clock=clock)


def call(pool: IdentityPool, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = pool.call(f"AWSCognitoIdentityService.{operation}", AMZ_JSON, json.dumps(body).encode())
    return answer.status, json.loads(answer.body)


def credentials(pool: IdentityPool) -> GuestCredentials:
    status, got = call(pool, "GetId", {"IdentityPoolId": pool.pool_id})
    assert status == 200
    status, creds = call(pool, "GetCredentialsForIdentity", {"IdentityId": got["IdentityId"]})
    assert status == 200 and creds["IdentityId"] == got["IdentityId"]
    c = creds["Credentials"]
    return GuestCredentials(
        got["IdentityId"], c["AccessKeyId"], c["SecretKey"], c["SessionToken"], c["Expiration"]
    )


def signed(
    creds: GuestCredentials,
    body: bytes = BODY,
    *,
    at: float | None = None,
    region: str = "us-east-1",
    path: str = PATH,
) -> dict[str, str]:
    """The headers botocore's SigV4 signer sends for a guest POST."""
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}{path}",
        data=body,
        headers={"Content-Type": "application/json", "Host": HOST},
    )
    signer = SigV4Auth(
        Credentials(creds.access_key_id, creds.secret_key, creds.session_token), "execute-api", region
    )
    if at is None:
        signer.add_auth(request)
    else:
        request.context["timestamp"] = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        request.headers["X-Amz-Security-Token"] = creds.session_token
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        headers_to_sign = signer.headers_to_sign(request)
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
            f"SignedHeaders={signer.signed_headers(headers_to_sign)}, Signature={signature}"
        )
    return dict(request.headers.items())


def verify(pool: IdentityPool, headers: dict[str, str], body: bytes = BODY, path: str = PATH):
    return pool.verify(method="POST", raw_path=path, query="", headers=headers, body=body)


def test_get_id_then_credentials_with_an_expiry(pool, clock):
    creds = credentials(pool)
    assert creds.identity_id.startswith("us-east-1:") and creds.access_key_id.startswith("ASIA")
    assert clock.now + 3000 < creds.expiration <= clock.now + 3600


@pytest.mark.parametrize(
    ("operation", "body", "kind"),
    [
        ("GetId", {"IdentityPoolId": "us-east-1:someone-elses"}, "ResourceNotFoundException"),
        ("GetCredentialsForIdentity", {"IdentityId": "us-east-1:never-issued"}, "ResourceNotFoundException"),
        ("GetCredentialsForIdentity", {"IdentityId": ["a list"]}, "ResourceNotFoundException"),
        ("DeleteIdentityPool", {}, "UnknownOperationException"),
    ],
)
def test_unknown_pools_identities_and_operations_are_400s(pool, operation, body, kind):
    status, answer = call(pool, operation, body)
    assert status == 400 and answer["__type"] == kind


def test_the_identity_service_wants_json_1_1(pool):
    assert json.loads(pool.call("AWSCognitoIdentityService.GetId", "application/json", b"{}").body)[
        "__type"
    ] == ("SerializationException")
    assert pool.call("AWSCognitoIdentityService.GetId", AMZ_JSON, b"[1]").status == 400
    assert pool.call("AWSCognitoIdentityService.GetId", AMZ_JSON, b"{nope").status == 400


def test_a_request_signed_by_botocore_passes_and_carries_the_identity(pool):
    creds = credentials(pool)
    guest = verify(pool, signed(creds))
    assert guest.identity_id == creds.identity_id and guest.pool_id == pool.pool_id
    context = guest.request_context()
    assert context["cognitoIdentityId"] == creds.identity_id
    assert context["cognitoAuthenticationType"] == "unauthenticated"


def test_the_canonical_path_is_encoded_twice(pool):
    creds = credentials(pool)
    path = "/v1/guest/caf%C3%A9%20events"
    assert verify(pool, signed(creds, path=path), path=path).identity_id == creds.identity_id


def refused(pool: IdentityPool, headers: dict[str, str], body: bytes = BODY) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as caught:
        verify(pool, headers, body)
    assert caught.value.status == 403
    return caught.value


def test_a_tampered_body_is_refused(pool):
    headers = signed(credentials(pool))
    assert "does not match" in refused(pool, headers, BODY + b" ").message


def test_a_clients_payload_hash_never_stands_in_for_the_body(pool):
    # a client that signs a declared payload hash (X-Amz-Content-SHA256, signed), then sends other bytes
    creds = credentials(pool)
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}{PATH}",
        data=BODY,
        headers={"Host": HOST, "X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()},
    )
    SigV4Auth(
        Credentials(creds.access_key_id, creds.secret_key, creds.session_token), "execute-api", "us-east-1"
    ).add_auth(request)
    headers = dict(request.headers.items())
    assert "x-amz-content-sha256" in headers["Authorization"]
    assert verify(pool, headers).identity_id == creds.identity_id
    refused(pool, headers, b"other bytes")


def test_a_tampered_signed_header_is_refused(pool):
    headers = signed(credentials(pool))
    headers["Content-Type"] = "application/gzip"
    refused(pool, headers)


def test_a_tampered_date_is_refused(pool):
    headers = signed(credentials(pool))
    date = headers["X-Amz-Date"]
    headers["X-Amz-Date"] = date[:-3] + ("00Z" if date[-3:] != "00Z" else "01Z")
    refused(pool, headers)


def test_a_date_more_than_15_minutes_away_is_refused(pool, clock):
    creds = credentials(pool)
    assert verify(pool, signed(creds, at=clock.now - 14 * 60))  # within the window
    assert "15 minutes" in refused(pool, signed(creds, at=clock.now - 16 * 60)).message
    assert "15 minutes" in refused(pool, signed(creds, at=clock.now + 16 * 60)).message


def test_another_session_token_is_refused(pool):
    creds = credentials(pool)
    other = credentials(pool)
    headers = signed(
        GuestCredentials(creds.identity_id, creds.access_key_id, creds.secret_key, other.session_token, 0)
    )
    assert "security token" in refused(pool, headers).message


def test_expired_credentials_are_refused(pool, clock):
    creds = credentials(pool)
    clock.now = creds.expiration + 1
    assert "expired" in refused(pool, signed(creds, at=clock.now)).message


def test_an_unknown_key_a_wrong_secret_or_scope_is_refused(pool):
    creds = credentials(pool)
    stranger = GuestCredentials(
        creds.identity_id, "ASIAUNKNOWN0000000", creds.secret_key, creds.session_token, 0
    )
    refused(pool, signed(stranger))
    wrong_secret = GuestCredentials(creds.identity_id, creds.access_key_id, "x" * 40, creds.session_token, 0)
    refused(pool, signed(wrong_secret))
    refused(pool, signed(creds, region="eu-west-1"))


def test_no_signature_is_what_api_gateway_answers_for_a_missing_token(pool):
    with pytest.raises(SignatureRefused) as caught:
        verify(pool, {"Host": HOST})
    assert caught.value.status == 404 and caught.value.code == "not_found"


@settings(max_examples=80, deadline=None)
@given(
    st.text(max_size=300),
    st.dictionaries(st.sampled_from(["X-Amz-Date", "X-Amz-Security-Token", "Host"]), st.text(max_size=80)),
)
def test_any_authorization_header_is_refused_never_breaks(authorization, others):
    pool = IdentityPool("us-east-1")
    with pytest.raises(SignatureRefused):
        verify(pool, {**others, "Authorization": authorization})


@settings(max_examples=80, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=60), st.sampled_from(["AWSCognitoIdentityService.GetId"])),
    st.one_of(st.binary(max_size=300), st.just(b"[" * 50_000), st.text(max_size=200).map(str.encode)),
)
def test_any_identity_call_is_answered_never_breaks(target, body):
    pool = IdentityPool("us-east-1")
    answer = pool.call(target, AMZ_JSON, body)
    assert answer.status in (200, 400)
    assert "__type" in json.loads(answer.body) or answer.status == 200
