"""Enrichment: a validated event and its record's envelope → one row of the validated-events Parquet.

Columns and order are ``clickstream.core.schema.VALIDATED_COLUMNS``. Event time is skew-corrected (received time
minus the device's own send-to-occur offset); user agent, IP, page URL, UTM fields and channel are derived here;
free text has its control characters replaced (``text.clean_text``), page URL, referrer and user agent are capped
before anything parses them (``text``: truncated and flagged, never refused); secrets are removed from URLs
(``web.strip_sensitive``) and e-mail addresses from URLs, titles and query strings; the full IP never leaves the
raw zone (only its /24 or /48 prefix does).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickstream.core.schema import VALIDATED_COLUMN_NAMES
from clickstream.validate.channel import default_channel
from clickstream.validate.text import TRUNCATED_KEY, cap_utf8, clean_text
from clickstream.validate.useragent import UserAgentInfo, classify
from clickstream.validate.web import (
    DEFAULT_SENSITIVE,
    NO_UTM,
    SensitiveParams,
    Utm,
    context_utm,
    ip_in_networks,
    ip_prefix,
    parse_page_url,
    parse_referrer,
    scrub_emails,
)

# Event fields with a column of their own; any other field of an event is kept in ``properties``.
KNOWN_EVENT_FIELDS = frozenset(
    {
        "event_id",
        "event_type",
        "occurred_at",
        "page",
        "properties",
        "items",
        "value",
        "currency",
        "transaction_id",
        "client_session_id",
    }
)
# Fields that are not part of the client payload: a retry may differ in them and still be the same event.
NON_PAYLOAD_FIELDS = frozenset({"event_id", "client_session_id"})
UNKNOWN_FIELD_PREFIX = "_event."


# Events come from JSON, so their values are JSON values (occurred_at aside, which is handled apart).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def dumps(value: Any) -> str:
    """Compact JSON of JSON values (items, properties)."""
    return _COMPACT.encode(value)


def utc_iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def payload_hash(event: dict[str, Any], occurred_at_iso: str) -> str:
    """sha256 of the canonical JSON (sorted keys, occurred_at in UTC) of the client payload: every field but
    the event id and the client session id."""
    payload = {k: v for k, v in event.items() if k not in NON_PAYLOAD_FIELDS}
    payload["occurred_at"] = occurred_at_iso
    return hashlib.sha256(_CANONICAL.encode(payload).encode("utf-8")).hexdigest()


@dataclass(slots=True)
class RecordContext:
    """What every event of one raw record shares: identity, times, client, network, page and UTM context."""

    app_id: str
    anonymous_id: str
    user_id: str | None
    received_at: datetime
    sent_at: datetime
    received_at_iso: str
    user_agent: str | None  # control characters replaced, capped (text.USER_AGENT_CAP bytes)
    user_agent_bytes: int | None  # the User-Agent's length before the cap, when it was cut
    agent: UserAgentInfo
    ip_prefix: str | None
    is_internal: bool
    context: dict[str, Any]
    context_page: dict[str, Any]
    context_utm: Utm
    client_session_id: str | None


def record_context(envelope: dict[str, Any], internal_networks: tuple[str, ...]) -> RecordContext:
    """The shared context of a validated envelope (``user_id`` from the record only, never from an event)."""
    context = envelope.get("context") or {}
    page = context.get("page")
    if isinstance(page, str):
        page = {"url": page}
    elif not isinstance(page, dict):
        page = {}
    if "referrer" not in page and isinstance(context.get("referrer"), str):
        page = {**page, "referrer": context["referrer"]}
    ip = envelope.get("ip")
    user_agent, user_agent_bytes = cap_utf8(clean_text(envelope.get("user_agent") or None) or "")
    session = context.get("client_session_id", context.get("session_id"))
    received_at = envelope["received_at"].astimezone(UTC)
    return RecordContext(
        app_id=envelope["app_id"],
        anonymous_id=envelope["anonymous_id"],
        user_id=clean_text(envelope.get("user_id") or None),
        received_at=received_at,
        received_at_iso=received_at.isoformat(),
        sent_at=envelope["sent_at"],
        user_agent=user_agent or None,
        user_agent_bytes=user_agent_bytes,
        agent=classify(user_agent or None),
        ip_prefix=ip_prefix(ip),
        is_internal=bool(envelope.get("internal")) or ip_in_networks(ip, internal_networks),
        context=context,
        context_page=page,
        context_utm=context_utm(context),
        client_session_id=clean_text(session) if isinstance(session, str) and session else None,
    )


def corrected_time(ctx: RecordContext, occurred_at: datetime) -> tuple[datetime, bool, float]:
    """``(event_ts, clamped, lateness_seconds)``: event_ts = received_at - (sent_at - occurred_at), clamped."""
    offset = ctx.sent_at - occurred_at
    event_ts = ctx.received_at - offset
    if event_ts > ctx.received_at:
        return ctx.received_at, True, 0.0
    return event_ts, False, offset.total_seconds()


def event_page(event: dict[str, Any], ctx: RecordContext) -> dict[str, Any]:
    """The event's page, falling back to the envelope context's page field by field."""
    page: dict[str, Any] | None = event.get("page")
    if not page:
        return ctx.context_page
    if ctx.context_page and (page.get("referrer") is None or page.get("title") is None):
        merged = dict(page)
        for key in ("referrer", "title"):
            if merged.get(key) is None and isinstance(ctx.context_page.get(key), str):
                merged[key] = ctx.context_page[key]
        return merged
    return page


def properties_json(event: dict[str, Any], truncated: dict[str, int] | None = None) -> str | None:
    """The event's properties plus every unknown field (an unknown field never overwrites a property), plus
    ``_truncated`` (column → length before the cap) when a value was cut; a client's own ``_truncated`` then
    moves to ``_event._truncated``."""
    props = event.get("properties") or {}
    extras = [k for k in event if k not in KNOWN_EVENT_FIELDS]
    if extras or truncated:
        props = dict(props)
        for key in extras:
            props[key if key not in props else UNKNOWN_FIELD_PREFIX + key] = event[key]
        if truncated:
            if TRUNCATED_KEY in props:
                props[UNKNOWN_FIELD_PREFIX + TRUNCATED_KEY] = props[TRUNCATED_KEY]
            props[TRUNCATED_KEY] = truncated
    return dumps(props) if props else None


def _text(value: Any) -> str | None:
    """A non-empty string as a free-text column holds it (control characters replaced), else None."""
    return clean_text(value) if isinstance(value, str) and value else None


def _page_url(
    url: Any, sensitive: SensitiveParams, truncated: dict[str, int]
) -> tuple[str | None, str | None, str | None, Utm | None]:
    """The page URL's stored form, path, host and UTM fields (None for no URL); a cut is noted in ``truncated``."""
    if not isinstance(url, str) or not url:
        return None, None, None, None
    parsed = parse_page_url(url, sensitive)
    if parsed.truncated is not None:
        truncated["page_url"] = parsed.truncated
    return parsed.url, parsed.path, parsed.host, parsed.utm


def build_row(
    event: dict[str, Any],
    ctx: RecordContext,
    *,
    event_ts: datetime,
    occurred_at_iso: str,
    clamped: bool,
    hash_: str,
    source_object: str,
    source_line: int,
    sensitive: SensitiveParams = DEFAULT_SENSITIVE,
) -> tuple[Any, ...]:
    """One validated row, in ``VALIDATED_COLUMNS`` order (timestamps as UTC ISO-8601 strings).

    A row never holds an empty string: absent text is None. Free text is cleaned (``text.clean_text``) before
    anything is derived from it; the page URL and referrer lose their sensitive parameters (``sensitive``)."""
    page = event_page(event, ctx)
    truncated: dict[str, int] = {}
    page_url, page_path, page_host, url_utm = _page_url(page.get("url"), sensitive, truncated)
    referrer = parse_referrer(_text(page.get("referrer")), sensitive)
    if referrer.truncated is not None:
        truncated["page_referrer"] = referrer.truncated
    if ctx.user_agent_bytes is not None:
        truncated["user_agent"] = ctx.user_agent_bytes
    utm = url_utm or ctx.context_utm or NO_UTM
    items = event.get("items") or None
    first = items[0] if items else {}
    return (
        ctx.app_id,
        event["event_id"].lower(),
        ctx.anonymous_id,
        ctx.user_id,
        _text(event.get("client_session_id")) or ctx.client_session_id,
        event["event_type"],
        ctx.received_at_iso if event_ts is ctx.received_at else utc_iso(event_ts),
        ctx.received_at_iso,
        occurred_at_iso,
        page_url,
        page_path,
        referrer.url,
        scrub_emails(_text(page.get("title"))),
        utm[0],
        utm[1],
        utm[2],
        utm[3],
        utm[4],
        default_channel(utm[0], utm[1], utm[2], referrer.host, page_host),
        _text(first.get("product_id")),
        _text(first.get("name")),
        _text(first.get("category")),
        first.get("price"),
        first.get("quantity", 1) if first else None,
        event.get("value"),
        event.get("currency"),
        _text(event.get("transaction_id")),
        dumps(items) if items else None,
        properties_json(event, truncated),
        ctx.user_agent,
        ctx.agent.device_type,
        ctx.agent.browser,
        ctx.agent.os,
        ctx.agent.is_bot,
        ctx.is_internal,
        ctx.ip_prefix,
        clamped,
        hash_,
        source_object,
        source_line,
    )


def row_as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row keyed by column name (tests and debugging)."""
    return dict(zip(VALIDATED_COLUMN_NAMES, row, strict=True))
