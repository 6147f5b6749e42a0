"""Configuration as one pydantic model, parsed once at a handler's entry.

Defaults match ``template.yaml``'s parameters. Environment variable names are the field names upper-cased
(``RAW_BUCKET``, ``SESSION_TIMEOUT_MINUTES`` …). Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = "dev"
    raw_bucket: str = "clickstream-raw"
    lake_bucket: str = "clickstream-lake"
    state_table: str = "clickstream-state"
    delivery_stream: str = "clickstream-events"
    failure_topic_arn: str = ""
    # Warehouse: a URL (duckdb:///path/to/file.duckdb or postgresql://…), or a Secrets Manager secret holding one.
    warehouse_url: str = ""
    warehouse_secret_arn: str = ""
    report_key: str = "reports/index.html"

    session_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_session_hours: int = Field(default=24, ge=1, le=7 * 24)
    lookback_hours: int = Field(default=72, ge=1, le=30 * 24)
    max_clock_skew_future_minutes: int = Field(default=0, ge=0)
    split_at_midnight: bool = False
    split_on_campaign: bool = False
    n_buckets: int = Field(default=4, ge=1, le=4096)
    # The Plan step only takes objects validated at least this long ago, so a validation still running while
    # Plan reads the ledger is picked up by the next run instead of slipping under the watermark.
    arrival_settle_seconds: int = Field(default=300, ge=0)

    store_currency: str = Field(default="USD", min_length=3, max_length=3)
    site_timezone: str = "UTC"
    internal_ip_ranges: str = ""  # comma-separated CIDRs
    allowed_origins: str = "*"  # comma-separated

    max_body_bytes: int = 1_048_576
    max_events_per_request: int = 500

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values = {}
        for name in cls.model_fields:
            key = name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        return cls(**values)

    @property
    def internal_networks(self) -> list[str]:
        return [c.strip() for c in self.internal_ip_ranges.split(",") if c.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, parsed once per process (tests call ``get_settings.cache_clear()``)."""
    return Settings.from_env()
