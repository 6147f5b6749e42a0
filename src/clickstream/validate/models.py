"""The raw record and the per-event schema (pydantic v2), one schema per GA4 e-commerce event type.

The schemas are ``TypedDict``s validated by pydantic-core in strict JSON mode: a whole raw record is parsed and
checked in one pass (``RECORD_ADAPTER.validate_json``), which is as fast as ``json.loads`` alone. When a record
fails, its envelope and each of its events are judged apart (``ENVELOPE_ADAPTER``, ``EVENT_ADAPTER``), so one bad
event never costs the good ones. Unknown fields are kept (``extra="allow"``).

Type rules: items on view_item / add_to_cart / remove_from_cart / begin_checkout / purchase; value +
currency on purchase / refund (currency whenever a value is given); transaction_id on purchase / refund.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from clickstream.core.schema import (
    GA4_EVENT_TYPES,
    IDENTIFIER_MESSAGE,
    MAX_APP_ID,
    MAX_IDENTIFIER,
    PRINTABLE,
)

ITEMS_REQUIRED = frozenset({"view_item", "add_to_cart", "remove_from_cart", "begin_checkout", "purchase"})
MONEY_REQUIRED = frozenset({"purchase", "refund"})
PAGE_REQUIRED = frozenset({"page_view", "page_ping"})

# Size limits: a longer string or list is a ``size_violation``, and so is an event over MAX_EVENT_BYTES. A page URL
# or referrer has no limit of its own (the event's bounds it): one longer than ``text.URL_CAP`` is truncated and
# flagged by enrichment, not refused.
MAX_EVENT_BYTES = 32 * 1024
MAX_TEXT = 1024
MAX_ID = 128
MAX_ITEMS = 200

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
EVENT_TYPE_PATTERN = r"^(?:" + "|".join(GA4_EVENT_TYPES) + r"|custom:[A-Za-z0-9_][A-Za-z0-9_.:/\-]{0,119})$"
HTTP_URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://[^\s/?#]+(?:[/?#]\S*)?$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"

_STRICT = ConfigDict(strict=True, extra="allow")

EventId = Annotated[str, Field(max_length=36, pattern=UUID_PATTERN)]
EventType = Annotated[str, Field(max_length=MAX_ID, pattern=EVENT_TYPE_PATTERN)]
Url = Annotated[str, Field(pattern=HTTP_URL_PATTERN)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Money = Annotated[float, Field(allow_inf_nan=False)]
Currency = Annotated[str, Field(max_length=3, pattern=CURRENCY_PATTERN)]


class Page(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]

    url: Url
    referrer: NotRequired[str | None]
    title: NotRequired[Text | None]


class Item(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]

    product_id: Identifier
    name: NotRequired[Text | None]
    category: NotRequired[Text | None]
    brand: NotRequired[Text | None]
    price: NotRequired[Annotated[Money, Field(ge=0)] | None]
    quantity: NotRequired[Annotated[int, Field(ge=1, le=1_000_000)]]


class BaseEvent(TypedDict):
    """Fields any event may carry. Anything else is kept and lands in the ``properties`` column."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]

    event_id: EventId
    event_type: EventType
    occurred_at: AwareDatetime
    page: NotRequired[Page | None]
    properties: NotRequired[dict[str, Any] | None]
    items: NotRequired[Annotated[list[Item], Field(max_length=MAX_ITEMS)] | None]
    value: NotRequired[Money | None]
    currency: NotRequired[Currency | None]
    transaction_id: NotRequired[Identifier | None]
    client_session_id: NotRequired[Identifier | None]


class ItemsEvent(BaseEvent):
    """view_item, add_to_cart, remove_from_cart, begin_checkout: at least one item."""

    items: Annotated[list[Item], Field(min_length=1, max_length=MAX_ITEMS)]  # type: ignore[misc]


class PurchaseEvent(ItemsEvent):
    value: Money  # type: ignore[misc]
    currency: Currency  # type: ignore[misc]
    transaction_id: Identifier  # type: ignore[misc]


class RefundEvent(BaseEvent):
    value: Money  # type: ignore[misc]
    currency: Currency  # type: ignore[misc]
    transaction_id: Identifier  # type: ignore[misc]


def _currency_with_value(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("value") is not None and event.get("currency") is None:
        raise PydanticCustomError("currency_required", "required when value is set", {"field": "currency"})
    return event


_TAG_OF_TYPE = {
    "view_item": "items",
    "add_to_cart": "items",
    "remove_from_cart": "items",
    "begin_checkout": "items",
    "purchase": "purchase",
    "refund": "refund",
}


def _tag(value: Any) -> str:
    event_type = value.get("event_type") if isinstance(value, dict) else None
    return _TAG_OF_TYPE.get(event_type, "any") if isinstance(event_type, str) else "any"


ClientEvent = Annotated[
    Annotated[ItemsEvent, Tag("items")]
    | Annotated[PurchaseEvent, Tag("purchase")]
    | Annotated[RefundEvent, Tag("refund")]
    | Annotated[BaseEvent, Tag("any")],
    Discriminator(_tag),
    AfterValidator(_currency_with_value),
]


class Envelope(TypedDict):
    """A raw record minus its events (clickstream.core.schema.RAW_RECORD_FIELDS), as ingest wrote it."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]

    schema: NotRequired[str | None]
    request_id: NotRequired[str | None]
    source: NotRequired[str | None]
    received_at: AwareDatetime
    user_id: NotRequired[str | None]
    ip: NotRequired[str | None]
    user_agent: NotRequired[str | None]
    internal: NotRequired[bool | None]
    app_id: Annotated[str, Field(min_length=1, max_length=MAX_APP_ID, pattern=PRINTABLE)]
    sent_at: AwareDatetime
    anonymous_id: Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER, pattern=PRINTABLE)]
    context: NotRequired[dict[str, Any] | None]


class EnvelopeOnly(Envelope):
    events: list[Any]


class RawRecord(Envelope):
    events: list[ClientEvent]


# Each validates to a plain dict (TypedDicts), unknown fields included.
RECORD_ADAPTER: TypeAdapter[Any] = TypeAdapter(RawRecord)
ENVELOPE_ADAPTER: TypeAdapter[Any] = TypeAdapter(EnvelopeOnly)
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(ClientEvent)

_TAGS = frozenset({"items", "purchase", "refund", "any"})
# Pydantic error types that mean "too big" rather than "wrong shape".
SIZE_ERROR_TYPES = frozenset({"string_too_long", "too_long", "bytes_too_long"})
_FRIENDLY = {
    ("string_pattern_mismatch", "event_id"): "must be a UUID (8-4-4-4-12 hex digits)",
    ("string_pattern_mismatch", "event_type"): "must be a GA4 e-commerce event name or custom:<name>",
    ("string_pattern_mismatch", "page.url"): "must be an absolute http(s) URL",
    ("string_pattern_mismatch", "currency"): "must be an ISO 4217 code (3 capital letters)",
    ("string_pattern_mismatch", "app_id"): IDENTIFIER_MESSAGE,
    ("string_pattern_mismatch", "anonymous_id"): IDENTIFIER_MESSAGE,
}


def first_error(exc: ValidationError) -> tuple[str, str, str]:
    """``(kind, path, message)`` of a validation error's first problem; kind is ``size`` or ``schema``."""
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = list(err.get("loc", ()))
    if loc and loc[0] in _TAGS:  # the discriminator's tag, not a field
        loc = loc[1:]
    path = ".".join(str(p) for p in loc)
    ctx = err.get("ctx") or {}
    if not path and ctx.get("field"):
        path = str(ctx["field"])
    kind = "size" if err.get("type") in SIZE_ERROR_TYPES else "schema"
    message = _FRIENDLY.get((err.get("type", ""), path), err.get("msg", "invalid"))
    return kind, path, message
