"""What ingest needs from an API Gateway REST proxy event, read once into a plain value.

The event's shape is API Gateway's, not the client's, but every field is read defensively: a missing or odd
field falls back or becomes a typed refusal, never an exception.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.core import clock
from clickstream.core.errors import Unauthorized
from clickstream.ingest.body import normalise_headers

INTERNAL_TRAFFIC_HEADER = "x-clickstream-internal"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class HttpRequest:
    """An ingest request: headers with lower-case names, the body as API Gateway delivered it, the caller."""

    request_id: str
    headers: Mapping[str, str]
    body: str | None
    is_base64: bool
    claims: Mapping[str, Any] = field(default_factory=dict)
    request_time_epoch_ms: int | None = None
    source_ip: str | None = None
    # SigV4-signed calls through an IAM-authorized route: the Cognito identity pool's identity, as API Gateway
    # verified it (``requestContext.identity``).
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None
    cognito_authentication_type: str | None = None

    @classmethod
    def from_api_gateway(cls, event: Mapping[str, Any]) -> HttpRequest:
        ctx = _mapping(event.get("requestContext"))
        authorizer = _mapping(ctx.get("authorizer"))
        identity = _mapping(ctx.get("identity"))
        epoch = ctx.get("requestTimeEpoch")
        body = event.get("body")
        request_id = ctx.get("requestId")
        source_ip = identity.get("sourceIp")
        identity_id = identity.get("cognitoIdentityId")
        pool_id = identity.get("cognitoIdentityPoolId")
        auth_type = identity.get("cognitoAuthenticationType")
        return cls(
            request_id=request_id if isinstance(request_id, str) and request_id else str(uuid.uuid4()),
            headers=normalise_headers(event),
            body=body if isinstance(body, str) else None,
            is_base64=event.get("isBase64Encoded") is True,
            claims=_mapping(authorizer.get("claims")),
            request_time_epoch_ms=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
            source_ip=source_ip if isinstance(source_ip, str) and source_ip else None,
            cognito_identity_id=identity_id if isinstance(identity_id, str) and identity_id else None,
            cognito_identity_pool_id=pool_id if isinstance(pool_id, str) and pool_id else None,
            cognito_authentication_type=auth_type if isinstance(auth_type, str) and auth_type else None,
        )

    @staticmethod
    def origin_of(event: Mapping[str, Any]) -> str | None:
        """The ``Origin`` header of an API Gateway event, if any."""
        return normalise_headers(event).get("origin")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def internal(self) -> bool:
        """True when the request carries the internal/test-traffic header (``X-Clickstream-Internal: 1``)."""
        return (self.header(INTERNAL_TRAFFIC_HEADER) or "").strip().lower() in {"1", "true"}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a signed-in user (the token's ``sub``) or a guest (a Cognito identity pool id)."""

    user_id: str | None = None
    guest_id: str | None = None


def token_caller(request: HttpRequest) -> Caller:
    """The caller of a route behind the Cognito User Pool authorizer: the verified token's user."""
    return Caller(user_id=verified_user_id(request))


def guest_caller(request: HttpRequest) -> Caller:
    """The caller of an IAM-authorized guest route: the identity pool identity API Gateway verified (SigV4).

    ``user_id`` stays null whatever the body or a token claim says: a guest is known by its identity id only.
    """
    identity_id = request.cognito_identity_id
    if identity_id is None or not identity_id.strip() or len(identity_id) > 128:
        raise Unauthorized("a SigV4-signed request from a Cognito identity pool identity is required")
    return Caller(guest_id=identity_id)


def verified_user_id(request: HttpRequest) -> str:
    """The Cognito User Pool authorizer's ``sub`` claim: the only source of ``user_id``. No claim is a 401."""
    sub = request.claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized("a verified identity (Cognito token) is required")
    return sub


def received_at(request: HttpRequest) -> str:
    """API Gateway's request time (ms since the epoch) as ISO-8601 UTC with milliseconds; the clock if absent."""
    if request.request_time_epoch_ms is not None:
        try:
            when = _EPOCH + timedelta(milliseconds=request.request_time_epoch_ms)
        except OverflowError:
            when = clock.now()
    else:
        when = clock.now()
    return format_timestamp(when)


def format_timestamp(when: datetime) -> str:
    """``2026-03-01T10:00:00.123Z``: UTC, millisecond precision."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
