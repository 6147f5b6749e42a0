"""Configuration as one frozen dataclass, parsed once at a handler's entry.

Defaults match ``template.yaml``'s parameters. Environment variable names are the field names upper-cased
(``RAW_BUCKET``, ``SESSION_TIMEOUT_MINUTES`` …). Nothing here reads the environment at import time.

A dataclass rather than a pydantic model: every function imports this module at cold start, and the ingest
function must not pay pydantic's import (about 100 ms on python3.12) for two dozen scalars; see docs/decisions.md.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Query parameters the validate step removes from page URLs and referrers (names case-insensitive; a trailing *
# matches every name it starts; "none" removes nothing): OAuth / OpenID Connect tokens and codes, passwords, API
# keys, signatures (S3 presigned URLs' X-Amz-*) and e-mail addresses. See clickstream.validate.web.
SENSITIVE_URL_PARAMS = (
    "token,access_token,id_token,refresh_token,auth_token,code,state,password,passwd,pwd,secret,"
    "client_secret,api_key,apikey,key,jwt,email,sig,signature,X-Amz-*"
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A setting has a value of the wrong type or outside its range; the message names the variable."""


def _bounded(lo: int, hi: int | None = None) -> dict[str, Any]:
    return {"bounds": (lo, hi)}


@dataclasses.dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    raw_bucket: str = "clickstream-raw"
    lake_bucket: str = "clickstream-lake"
    state_table: str = "clickstream-state"
    delivery_stream: str = "clickstream-events"
    # Warehouse: a URL (duckdb:///path/to/file.duckdb or postgresql://…), or a Secrets Manager secret holding one.
    warehouse_url: str = ""
    warehouse_secret_arn: str = ""
    # TLS to the secret's PostgreSQL: libpq sslmode (never weaker than the secret's own) and a root CA bundle path.
    warehouse_sslmode: str = "require"
    warehouse_sslrootcert: str = ""
    report_key: str = "reports/index.html"

    session_timeout_minutes: int = dataclasses.field(default=30, metadata=_bounded(1, 24 * 60))
    max_session_hours: int = dataclasses.field(default=24, metadata=_bounded(1, 7 * 24))
    lookback_hours: int = dataclasses.field(default=72, metadata=_bounded(1, 30 * 24))
    split_at_midnight: bool = False
    split_on_campaign: bool = False
    n_buckets: int = dataclasses.field(default=4, metadata=_bounded(1, 4096))
    # The Plan step only takes objects validated at least this long ago, so a validation still running while
    # Plan reads the ledger is picked up by the next run instead of slipping under the watermark.
    arrival_settle_seconds: int = dataclasses.field(default=300, metadata=_bounded(0))
    # How long an execution holds the pipeline lease Plan takes (Commit or the failure path give it back sooner);
    # longer than any run may take, so only an execution that died without releasing lets the next one wait.
    pipeline_lease_minutes: int = dataclasses.field(default=120, metadata=_bounded(1, 7 * 24 * 60))

    store_currency: str = "USD"
    site_timezone: str = "UTC"
    internal_ip_ranges: str = ""  # comma-separated CIDRs
    sensitive_url_params: str = SENSITIVE_URL_PARAMS  # comma-separated; removed from page URLs and referrers
    allowed_origins: str = "*"  # comma-separated

    max_body_bytes: int = 1_048_576
    max_events_per_request: int = 500

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            object.__setattr__(self, field.name, _coerce(field, value))
        if len(self.store_currency) != 3:
            raise ConfigError(f"STORE_CURRENCY must be a 3-letter ISO 4217 code, got {self.store_currency!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default ``os.environ``); empty variables mean the default."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            key = field.name.upper()
            if key in env and env[key] != "":
                values[field.name] = env[key]
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def as_env(self) -> dict[str, str]:
        """The environment that gives these settings back through :meth:`from_env`."""
        return {name.upper(): _env_text(value) for name, value in self.as_dict().items()}

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def internal_networks(self) -> list[str]:
        return [c.strip() for c in self.internal_ip_ranges.split(",") if c.strip()]


def _env_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _coerce(field: dataclasses.Field[Any], value: Any) -> Any:
    """``value`` (as given, or as read from the environment) as the field's type, within its bounds."""
    name, kind = field.name.upper(), field.type
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        lo, hi = field.metadata.get("bounds", (None, None))
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            upper = "" if hi is None else f" and <= {hi}"
            raise ConfigError(f"{name} must be >= {lo}{upper}, got {number}")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be text, got {value!r}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, parsed once per process (tests call ``get_settings.cache_clear()``)."""
    return Settings.from_env()
