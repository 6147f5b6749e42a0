"""The local endpoint's token issuer and the check the Cognito User Pool authorizer makes.

``clickstream serve`` and ``clickstream token`` usually run in different processes, and moto's Cognito lives in
one process only. So the issuer is a file: ``DIR/issuer.json`` holds a Cognito-shaped user pool id and app client
id and an RSA signing key of its own (mode 0600), created by whichever command runs first and read by the other.
``token`` signs with the private key; ``serve`` verifies with the public half only (:meth:`LocalIssuer.jwks`), as
API Gateway verifies against the pool's ``/.well-known/jwks.json``. moto's own pools are not used for this: moto
signs every pool's tokens with one key published inside its package, so anyone could mint tokens for them, and a
pool would not outlive the process that made it.

:class:`TokenVerifier` checks what the authorizer checks: an RS256 signature by a key of the issuer's JWKS (by
``kid``), ``iss``, the audience (``aud`` of an id token, ``client_id`` of an access token), ``exp`` (and ``iat``/
``nbf`` not in the future), and ``token_use`` ``id`` or ``access``. It works on any Cognito JWKS, moto's included.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from clickstream.core import clock
from clickstream.core.errors import Unauthorized

ISSUER_FILE = "issuer.json"
DEFAULT_REGION = "us-east-1"
TOKEN_USES = frozenset({"id", "access"})
DEFAULT_EXPIRES_IN = 3600  # Cognito's default id/access token validity
ALGORITHM = "RS256"
LEEWAY_SECONDS = 0
_POOL_ALPHABET = string.ascii_letters + string.digits
_CLIENT_ALPHABET = string.ascii_lowercase + string.digits


class InvalidToken(Unauthorized):
    """A bearer token the authorizer would refuse (HTTP 401)."""

    code = "unauthorized"


def issuer_url(region: str, user_pool_id: str) -> str:
    """``https://cognito-idp.<region>.amazonaws.com/<pool id>``: the ``iss`` of the pool's tokens."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization`` header: ``Bearer <jwt>`` or, as API Gateway also accepts, the bare JWT."""
    value = (authorization or "").strip()
    if not value:
        raise InvalidToken("an Authorization header with a Cognito token is required")
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    if not value or " " in value or value.lower() == "bearer":
        raise InvalidToken("the Authorization header must be 'Bearer <token>'")
    return value


@dataclass(frozen=True)
class TokenVerifier:
    """Verify a token as a Cognito User Pool authorizer configured for one pool and app client."""

    issuer: str
    client_id: str
    jwks: Mapping[str, Any]

    def verify(self, token: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The token's claims when it passes every check; else :class:`InvalidToken`."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet
        from joserfc.jwt import JWTClaimsRegistry

        try:
            keys = KeySet.import_key_set(dict(self.jwks))  # type: ignore[arg-type]
            decoded = jwt.decode(token, keys, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"the token is not signed by the issuer ({type(exc).__name__})") from exc
        claims = dict(decoded.claims)
        token_use = claims.get("token_use")
        if token_use not in TOKEN_USES:
            raise InvalidToken("token_use must be 'id' or 'access'")
        audience = "aud" if token_use == "id" else "client_id"
        at = int((now or clock.now()).timestamp())
        registry = JWTClaimsRegistry(
            now=at,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.issuer},
            exp={"essential": True},
            sub={"essential": True},
            **{audience: {"essential": True, "value": self.client_id}},  # type: ignore[arg-type]
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(f"the token was refused: {exc.description or exc.error}") from exc
        return claims


@dataclass(frozen=True)
class LocalIssuer:
    """A Cognito-shaped user pool for local use: its ids and its signing key (a private JWK)."""

    user_pool_id: str
    client_id: str
    private_jwk: Mapping[str, Any]
    region: str = DEFAULT_REGION

    @property
    def issuer(self) -> str:
        return issuer_url(self.region, self.user_pool_id)

    @property
    def kid(self) -> str:
        return str(self.private_jwk["kid"])

    def jwks(self) -> dict[str, Any]:
        """The public key set, as the pool's ``/.well-known/jwks.json`` publishes it."""
        from joserfc.jwk import RSAKey

        public = RSAKey.import_key(dict(self.private_jwk)).as_dict(private=False)  # type: ignore[arg-type]
        public.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": [public]}

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(issuer=self.issuer, client_id=self.client_id, jwks=self.jwks())

    def subject(self, username: str) -> str:
        """A stable ``sub`` per user name and pool, so one shopper keeps one ``user_id`` across tokens."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}/users/{username}"))

    def issue(
        self,
        username: str = "shopper",
        *,
        token_use: str = "id",
        expires_in: int = DEFAULT_EXPIRES_IN,
        now: datetime | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A token shaped as Cognito's for ``username``: ``sub``, ``iss``, ``aud``/``client_id``, ``token_use``,
        ``auth_time``/``iat``/``exp``, ``jti`` and ``cognito:username`` (id) or ``username`` (access)."""
        from joserfc import jwt
        from joserfc.jwk import RSAKey

        if token_use not in TOKEN_USES:
            raise ValueError(f"token_use must be one of {sorted(TOKEN_USES)}")
        if not username or not username.strip():
            raise ValueError("a user name is required")
        at = int((now or clock.now()).timestamp())
        claims: dict[str, Any] = {
            "sub": self.subject(username),
            "iss": self.issuer,
            "token_use": token_use,
            "auth_time": at,
            "iat": at,
            "exp": at + expires_in,
            "jti": str(uuid.uuid4()),
        }
        if token_use == "id":
            claims.update({"aud": self.client_id, "cognito:username": username, "email_verified": True})
        else:
            claims.update(
                {"client_id": self.client_id, "username": username, "scope": "aws.cognito.signin.user.admin"}
            )
        claims.update(extra_claims or {})
        key = RSAKey.import_key(dict(self.private_jwk))  # type: ignore[arg-type]
        return jwt.encode(
            {"kid": self.kid, "alg": ALGORITHM, "typ": "JWT"}, claims, key, algorithms=[ALGORITHM]
        )

    # -- the shared file -------------------------------------------------------------------------------------
    @classmethod
    def generate(cls, region: str = DEFAULT_REGION) -> LocalIssuer:
        """A new pool id (``<region>_<9 chars>``), app client id (26 chars) and 2048-bit RSA key."""
        from joserfc.jwk import RSAKey

        kid = secrets.token_urlsafe(16)
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True)
        return cls(
            user_pool_id=f"{region}_" + "".join(secrets.choice(_POOL_ALPHABET) for _ in range(9)),
            client_id="".join(secrets.choice(_CLIENT_ALPHABET) for _ in range(26)),
            private_jwk=key.as_dict(private=True),
            region=region,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "region": self.region,
            "user_pool_id": self.user_pool_id,
            "client_id": self.client_id,
            "signing_key": dict(self.private_jwk),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocalIssuer:
        return cls(
            user_pool_id=str(data["user_pool_id"]),
            client_id=str(data["client_id"]),
            private_jwk=dict(data["signing_key"]),
            region=str(data.get("region") or DEFAULT_REGION),
        )

    @classmethod
    def load(cls, directory: Path) -> LocalIssuer:
        return cls.from_json(json.loads((directory / ISSUER_FILE).read_text(encoding="utf-8")))

    @classmethod
    def load_or_create(cls, directory: Path, region: str = DEFAULT_REGION) -> LocalIssuer:
        """The issuer of ``directory``; created (atomically, owner-only) when there is none yet.

        Two commands starting at once agree on one issuer: the file is published with a hard link, which fails
        when another process published first, and then that process's issuer is read.
        """
        path = directory / ISSUER_FILE
        if path.is_file():
            return cls.load(directory)
        directory.mkdir(parents=True, exist_ok=True)
        issuer = cls.generate(region)
        tmp = directory / f".{ISSUER_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(issuer.to_json(), fh, indent=2)
                fh.write("\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                return cls.load(directory)
        finally:
            tmp.unlink(missing_ok=True)
        return issuer
