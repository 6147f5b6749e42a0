"""The identity pool's unauthenticated access as ``clickstream serve`` plays it, and the SigV4 check API Gateway's
IAM authorization makes on the guest routes.

:class:`IdentityPool` answers the two JSON 1.1 calls the tracker makes (``X-Amz-Target:
AWSCognitoIdentityService.GetId`` / ``GetCredentialsForIdentity``): an identity id per browser, then temporary
credentials (access key, secret, session token, ``Expiration`` in epoch seconds) for it. An identity or pool it does
not know is a 400 ``ResourceNotFoundException``, as Cognito answers. Identities and keys live in memory: after a
restart the tracker is told its identity is unknown and asks for a new one.

:meth:`IdentityPool.verify` checks a guest request as API Gateway does before the integration runs: the
``Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/execute-api/aws4_request,
SignedHeaders=…, Signature=…`` header, ``X-Amz-Date`` within 15 minutes of now and on the scope's day, the session
token signed and equal to the one issued with the key, the credentials not expired, and the signature recomputed by
botocore's :class:`~botocore.auth.SigV4Auth` over the canonical request: the method, the path as sent URI-encoded
once more (the non-S3 form), the query, the signed headers only, and the SHA-256 of the body bytes as sent (never a
client's ``X-Amz-Content-SHA256``). The answer is the identity, which the guest route's proxy event carries as
``requestContext.identity.cognitoIdentityId`` (and pool id, authentication type, access key, caller).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from clickstream_local.answers import HttpAnswer

SERVICE = "execute-api"
TARGET_PREFIX = "AWSCognitoIdentityService."
CREDENTIALS_TTL_SECONDS = 3600  # Cognito's unauthenticated credentials last an hour
MAX_SKEW_SECONDS = 15 * 60  # API Gateway refuses a signature dated more than 15 minutes away
AMZ_JSON = "application/x-amz-json-1.1"
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")


class SignatureRefused(Exception):
    """A guest request API Gateway would refuse: 403 (``INVALID_SIGNATURE``, ``EXPIRED_TOKEN``, ``ACCESS_DENIED``
    all reach the stack's JSON shape), or 404 when it carries no signature at all (``MISSING_AUTHENTICATION_TOKEN``)."""

    def __init__(self, message: str, *, status: int = 403, code: str = "client_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class GuestCredentials:
    identity_id: str
    access_key_id: str
    secret_key: str
    session_token: str
    expiration: float  # epoch seconds


@dataclass(frozen=True)
class GuestIdentity:
    """What API Gateway puts in ``requestContext.identity`` for a request signed with these credentials."""

    identity_id: str
    pool_id: str
    access_key_id: str

    def request_context(self) -> dict[str, Any]:
        return {
            "cognitoIdentityId": self.identity_id,
            "cognitoIdentityPoolId": self.pool_id,
            "cognitoAuthenticationType": "unauthenticated",
            "cognitoAuthenticationProvider": None,
            "accessKey": self.access_key_id,
            "caller": "AROALOCALGUEST:CognitoIdentityCredentials",
            "user": "AROALOCALGUEST:CognitoIdentityCredentials",
            "userArn": "arn:aws:sts::123456789012:assumed-role/guest/CognitoIdentityCredentials",
        }


def _refusal(type_: str, message: str) -> HttpAnswer:
    return HttpAnswer.json(400, {"__type": type_, "message": message}, {"Content-Type": AMZ_JSON})


class IdentityPool:
    """One identity pool with unauthenticated identities; ``verify`` is the guest routes' authorizer."""

    def __init__(self, region: str, pool_id: str | None = None, *, clock: Callable[[], float] = time.time):
        self.region = region
        self.pool_id = pool_id or f"{region}:{uuid.uuid4()}"
        self.clock = clock
        self._identities: set[str] = set()
        self._keys: dict[str, GuestCredentials] = {}
        self._lock = threading.Lock()

    # -- the identity service (JSON 1.1) ---------------------------------------------------------------------
    def call(self, target: str | None, content_type: str | None, body: bytes) -> HttpAnswer:
        """``POST`` to the identity endpoint: the operation named by ``X-Amz-Target``."""
        if (content_type or "").split(";")[0].strip().lower() != AMZ_JSON:
            return _refusal("SerializationException", f"Content-Type must be {AMZ_JSON}")
        try:
            import json

            request = json.loads(body or b"{}")
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond the parser's depth
            return _refusal("SerializationException", "the body is not JSON")
        if not isinstance(request, dict):
            return _refusal("SerializationException", "the body must be a JSON object")
        operation = (
            (target or "").removeprefix(TARGET_PREFIX) if (target or "").startswith(TARGET_PREFIX) else ""
        )
        if operation == "GetId":
            return self._get_id(request)
        if operation == "GetCredentialsForIdentity":
            return self._credentials_for(request)
        return _refusal("UnknownOperationException", "the operation is not one this identity service has")

    def _get_id(self, request: Mapping[str, Any]) -> HttpAnswer:
        if request.get("IdentityPoolId") != self.pool_id:
            return _refusal("ResourceNotFoundException", "IdentityPool not found")
        identity = f"{self.region}:{uuid.uuid4()}"
        with self._lock:
            self._identities.add(identity)
        return HttpAnswer.json(200, {"IdentityId": identity}, {"Content-Type": AMZ_JSON})

    def _credentials_for(self, request: Mapping[str, Any]) -> HttpAnswer:
        identity = request.get("IdentityId")
        with self._lock:
            known = isinstance(identity, str) and identity in self._identities
        if not known:
            return _refusal("ResourceNotFoundException", "Identity not found")
        assert isinstance(identity, str)
        credentials = self.issue(identity)
        return HttpAnswer.json(
            200,
            {
                "IdentityId": identity,
                "Credentials": {
                    "AccessKeyId": credentials.access_key_id,
                    "SecretKey": credentials.secret_key,
                    "SessionToken": credentials.session_token,
                    "Expiration": credentials.expiration,
                },
            },
            {"Content-Type": AMZ_JSON},
        )

    def issue(self, identity_id: str, *, ttl: float = CREDENTIALS_TTL_SECONDS) -> GuestCredentials:
        """Fresh temporary credentials for a known identity."""
        credentials = GuestCredentials(
            identity_id=identity_id,
            access_key_id="ASIA" + secrets.token_hex(8).upper(),
            secret_key=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(96),
            expiration=float(int(self.clock() + ttl)),
        )
        with self._lock:
            self._identities.add(identity_id)
            self._keys[credentials.access_key_id] = credentials
        return credentials

    # -- the guest routes' authorizer ------------------------------------------------------------------------
    def verify(
        self, *, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> GuestIdentity:
        """The identity that signed this request; :class:`SignatureRefused` otherwise. ``headers`` are the
        request's, names in any case (a repeated header's values joined by commas)."""
        lower = {k.lower(): v for k, v in headers.items()}
        authorization = lower.get("authorization", "").strip()
        if not authorization:
            raise SignatureRefused(
                "No such route, or a guest route called without a SigV4 signature.",
                status=404,
                code="not_found",
            )
        match = _AUTHORIZATION.match(authorization)
        if match is None:
            raise SignatureRefused("Authorization header is not an AWS4-HMAC-SHA256 signature")
        parts = match["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise SignatureRefused("Credential must be <key>/<date>/<region>/<service>/aws4_request")
        key_id, day, region, service = parts[:4]
        if region != self.region or service != SERVICE:
            raise SignatureRefused(f"Credential should be scoped to {self.region}/{SERVICE}")
        signed = match["signed"].split(";")
        if signed != sorted(set(signed)) or not {"host", "x-amz-date"} <= set(signed):
            raise SignatureRefused("SignedHeaders must be sorted and include host and x-amz-date")
        missing = [name for name in signed if name not in lower]
        if missing:
            raise SignatureRefused(f"signed header(s) missing from the request: {', '.join(missing[:5])}")
        amz_date = lower.get("x-amz-date", "")
        if not _AMZ_DATE.match(amz_date) or amz_date[:8] != day:
            raise SignatureRefused("X-Amz-Date must be yyyymmddThhmmssZ on the Credential's day")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise SignatureRefused("X-Amz-Date is not a date") from None
        now = self.clock()
        if abs(now - signed_at) > MAX_SKEW_SECONDS:
            raise SignatureRefused("Signature expired: X-Amz-Date is more than 15 minutes from now")
        with self._lock:
            credentials = self._keys.get(key_id)
        if credentials is None:
            raise SignatureRefused("The security token included in the request is invalid.")
        token = lower.get("x-amz-security-token")
        if "x-amz-security-token" not in signed or token is None:
            raise SignatureRefused("X-Amz-Security-Token must be sent and signed")
        if not hmac.compare_digest(token.encode(), credentials.session_token.encode()):
            raise SignatureRefused("The security token included in the request is invalid.")
        if credentials.expiration <= now:
            raise SignatureRefused("The security token included in the request is expired")
        expected = expected_signature(
            credentials,
            region=self.region,
            method=method,
            raw_path=raw_path,
            query=query,
            headers={name: lower[name] for name in signed},
            body=body,
            amz_date=amz_date,
        )
        if not hmac.compare_digest(expected.encode(), match["signature"].encode()):
            raise SignatureRefused(
                "The request signature we calculated does not match the signature you provided."
            )
        return GuestIdentity(credentials.identity_id, self.pool_id, key_id)


def expected_signature(
    credentials: GuestCredentials,
    *,
    region: str,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    amz_date: str,
) -> str:
    """The signature botocore's SigV4 computes for this request over exactly ``headers``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class _Verifier(SigV4Auth):
        def headers_to_sign(self, request: AWSRequest) -> Any:
            from botocore.awsrequest import HTTPHeaders

            chosen = HTTPHeaders()
            for name, value in headers.items():
                chosen[name] = value
            return chosen

        def canonical_request(self, request: AWSRequest) -> str:
            # botocore's, except the payload hash is always the body's own (a client's X-Amz-Content-SHA256
            # never stands in for it).
            from urllib.parse import urlsplit

            chosen = self.headers_to_sign(request)
            return "\n".join(
                [
                    request.method.upper(),
                    self._normalize_url_path(urlsplit(request.url).path),
                    self.canonical_query_string(request),
                    self.canonical_headers(chosen) + "\n",
                    self.signed_headers(chosen),
                    sha256(body).hexdigest(),
                ]
            )

    host = headers.get("host", "localhost")
    url = f"http://{host}{raw_path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    request.context["timestamp"] = amz_date
    signer = _Verifier(
        Credentials(credentials.access_key_id, credentials.secret_key, credentials.session_token),
        SERVICE,
        region,
    )
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
