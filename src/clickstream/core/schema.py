"""The contracts between stages: the raw record ingest writes and the validated-event columns.

Every stage reads these names from here, so a column added once reaches the validator's Parquet, the
sessionizer, the warehouse and the Glue tables together.
"""

from __future__ import annotations

import re

RAW_SCHEMA_VERSION = "clickstream/raw/1"

# One raw record (a JSON line in a Firehose record) is one accepted request, or one chunk of it when the request
# is too large for a single Firehose record. Fields:
#   schema            RAW_SCHEMA_VERSION
#   request_id        API Gateway request id (+ "#<chunk>" when split)
#   source            "native" | "snowplow"
#   received_at       ISO-8601 UTC from requestContext.requestTimeEpoch (ms)
#   user_id           the verified token's ``sub`` claim, or null (guest route)
#   guest_id          optional, guest routes only: the caller's Cognito identity-pool identity id (not in the tuple)
#   ip                the caller's source IP (full; truncated by validation before anything leaves the raw zone)
#   user_agent        the User-Agent header
#   internal          true when the request carried the internal/test-traffic header
#   app_id, sent_at, anonymous_id, context   from the envelope
#   events            list of event objects, passed on untouched (judged one by one downstream)
RAW_RECORD_FIELDS = (
    "schema",
    "request_id",
    "source",
    "received_at",
    "user_id",
    "ip",
    "user_agent",
    "internal",
    "app_id",
    "sent_at",
    "anonymous_id",
    "context",
    "events",
)

# Identifiers (``app_id``, ``anonymous_id``; the Snowplow fields they come from, ``aid``, ``duid``/``nuid``, and the
# tracker version ``tv``) obey one rule on every route, at ingest and in validation: 1 to MAX_APP_ID (app) or
# MAX_IDENTIFIER (the others) characters, none of them a control character (C0, DEL, C1), a line or paragraph
# separator, or an invisible format character that makes two ids look alike (zero-width characters, bidirectional
# controls, the byte-order mark). The pattern is written with escapes every engine that checks it reads the same
# way: the ingest function's JSON Schema (Python ``re``), pydantic (Rust ``regex``) and, rewritten by
# ``re2_class``, the validation engine (DuckDB's RE2).
IDENTIFIER_EXCLUDED = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
PRINTABLE = rf"^[^{IDENTIFIER_EXCLUDED}]*$"
MAX_APP_ID = 64
MAX_IDENTIFIER = 128
IDENTIFIER_MESSAGE = "must be printable text (no control characters)"


def re2_class(pattern: str) -> str:
    """``pattern`` with each ``\\uXXXX`` escape written as RE2 reads it (``\\x{XXXX}``)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", r"\\x{\1}", pattern)


# Validated events: one Parquet row per event. (name, DuckDB type). Timestamps are UTC, microseconds.
VALIDATED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("app_id", "VARCHAR"),
    ("event_id", "VARCHAR"),
    ("anonymous_id", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("client_session_id", "VARCHAR"),
    ("event_type", "VARCHAR"),
    ("event_ts", "TIMESTAMPTZ"),
    ("received_at", "TIMESTAMPTZ"),
    ("occurred_at", "TIMESTAMPTZ"),
    ("page_url", "VARCHAR"),
    ("page_path", "VARCHAR"),
    ("page_referrer", "VARCHAR"),
    ("page_title", "VARCHAR"),
    ("utm_source", "VARCHAR"),
    ("utm_medium", "VARCHAR"),
    ("utm_campaign", "VARCHAR"),
    ("utm_term", "VARCHAR"),
    ("utm_content", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("product_id", "VARCHAR"),
    ("product_name", "VARCHAR"),
    ("category", "VARCHAR"),
    ("price", "DOUBLE"),
    ("quantity", "INTEGER"),
    ("value", "DOUBLE"),
    ("currency", "VARCHAR"),
    ("transaction_id", "VARCHAR"),
    ("items", "VARCHAR"),  # JSON array of the event's items
    ("properties", "VARCHAR"),  # JSON object: event properties and any unknown fields, kept not dropped
    ("user_agent", "VARCHAR"),
    ("device_type", "VARCHAR"),
    ("browser", "VARCHAR"),
    ("os", "VARCHAR"),
    ("is_bot", "BOOLEAN"),
    ("is_internal", "BOOLEAN"),
    ("ip_prefix", "VARCHAR"),
    ("ts_clamped", "BOOLEAN"),
    ("payload_hash", "VARCHAR"),  # hash of the client payload: tells a retry from a reused event_id
    ("source_object", "VARCHAR"),
    ("source_line", "INTEGER"),
)

VALIDATED_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in VALIDATED_COLUMNS)

# Columns the sessionizer needs at the least (the `clickstream sessionize` CLI contract).
SESSIONIZE_REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_id",
    "anonymous_id",
    "user_id",
    "event_type",
    "event_ts",
    "received_at",
    "page_url",
)

# Event types of the native API: GA4's e-commerce names (plus ``custom:<name>`` for anything else).
GA4_EVENT_TYPES: tuple[str, ...] = (
    "page_view",
    "page_ping",
    "view_item_list",
    "select_item",
    "view_item",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "view_cart",
    "begin_checkout",
    "add_payment_info",
    "purchase",
    "refund",
    "login",
    "sign_up",
)


def validated_columns_sql() -> str:
    """``name TYPE, …`` for CREATE TABLE / read_parquet(columns=…) in DuckDB."""
    return ", ".join(f"{name} {typ}" for name, typ in VALIDATED_COLUMNS)


# Sessions: one row per session (the sessionizer's sessions.parquet and the warehouse's ``sessions`` table).
SESSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("session_id", "VARCHAR"),  # deterministic: hash of (anonymous_id, session_start)
    ("anonymous_id", "VARCHAR"),
    ("user_id", "VARCHAR"),  # latest non-null user_id within the session
    ("app_id", "VARCHAR"),
    ("session_start", "TIMESTAMPTZ"),
    ("session_end", "TIMESTAMPTZ"),
    ("duration_s", "DOUBLE"),
    ("engaged_time_s", "DOUBLE"),  # from page pings (Snowplow's heartbeat formula)
    ("n_events", "INTEGER"),  # after dedupe
    ("n_page_views", "INTEGER"),
    ("landing_page", "VARCHAR"),  # page_path of the first page view (else first event)
    ("exit_page", "VARCHAR"),  # page_path of the last page view (else last event)
    ("referrer", "VARCHAR"),  # page_referrer of the first event
    ("channel", "VARCHAR"),  # of the first event
    ("utm_source", "VARCHAR"),
    ("utm_medium", "VARCHAR"),
    ("utm_campaign", "VARCHAR"),
    ("utm_term", "VARCHAR"),
    ("utm_content", "VARCHAR"),
    ("device_type", "VARCHAR"),
    ("browser", "VARCHAR"),
    ("os", "VARCHAR"),
    ("is_bot", "BOOLEAN"),  # any event flagged
    ("is_internal", "BOOLEAN"),
    ("engaged", "BOOLEAN"),  # GA4: duration > 10 s, or >= 2 page views, or a purchase
    ("bounce", "BOOLEAN"),  # not engaged
    ("viewed_item", "BOOLEAN"),
    ("added_to_cart", "BOOLEAN"),
    ("began_checkout", "BOOLEAN"),
    ("purchased", "BOOLEAN"),
    ("orders", "INTEGER"),  # distinct transaction_id of purchases
    ("revenue", "DOUBLE"),  # purchases minus refunds
    ("currency", "VARCHAR"),
)

SESSION_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in SESSION_COLUMNS)

# Sessionized events (the sessionizer's events.parquet) = every validated column plus the session it belongs to.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (*VALIDATED_COLUMNS, ("session_id", "VARCHAR"))
EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in EVENT_COLUMNS)

# Columns of sessionized events that stay in the lake and not in the warehouse's ``events``: request metadata and
# lineage (nothing in the warehouse reads them), and the attributes every ``sessions`` row already carries.
LAKE_ONLY_EVENT_COLUMNS: frozenset[str] = frozenset(
    {
        "client_session_id",
        "received_at",
        "occurred_at",
        "page_referrer",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "channel",
        "user_agent",
        "device_type",
        "browser",
        "os",
        "is_bot",
        "is_internal",
        "ip_prefix",
        "ts_clamped",
        "payload_hash",
        "source_object",
        "source_line",
    }
)
# Warehouse ``events``: what each event says the shopper did (identity, time, page, product and order, properties)
# and its session, in EVENT_COLUMNS order.
WAREHOUSE_EVENT_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    c for c in EVENT_COLUMNS if c[0] not in LAKE_ONLY_EVENT_COLUMNS
)

# ``users``: anonymous_id -> user_id with first/last seen, for counting people across devices.
USER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("anonymous_id", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("first_seen", "TIMESTAMPTZ"),
    ("last_seen", "TIMESTAMPTZ"),
)
