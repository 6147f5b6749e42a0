"""The Snowplow tracker protocol (tp2): ``payload_data`` batches mapped to the native raw record.

The JavaScript tracker v4 posts ``{"schema": "iglu:…/payload_data/jsonschema/1-0-4", "data": [{…}, …]}``, one
object of string fields per event. Only that wrapper is judged here (the tp2 "envelope"), with the identifiers
that become a record's envelope (``aid``, ``duid``, ``nuid``, and the tracker version ``tv``), which obey the
native route's identifier rule (``clickstream.core.schema.PRINTABLE``): each event is mapped to a native event
object as well as its fields allow and travels on to validation, which judges it alone, so one odd event never
costs the others. Mapping:

=====================  =======================================================================================
tp2 field              native
=====================  =======================================================================================
``aid``                ``app_id`` (record)
``duid`` (else nuid)   ``anonymous_id`` (record)
``stm`` (else newest   ``sent_at`` (record), ms since the epoch → ISO-8601 UTC
``dtm`` of the group)
``eid``                ``event_id``
``dtm`` (else ttm)     ``occurred_at``
``sid``                ``client_session_id`` (kept for comparison, never used to split sessions)
``url, refr, page``    ``page.url, page.referrer, page.title``
``uid``                dropped: the user id only ever comes from the verified token
``e``                  ``event_type``: pv → page_view, pp → page_ping, se → the GA4 name when the action is one
                       else ``custom:<category>.<action>``, ue → the GA4 name of a Snowplow e-commerce action
                       else ``custom:<schema name>``, anything else → ``custom:snowplow.<e>``
``co | cx``            entities: e-commerce ``product`` → ``items``; ``transaction`` / ``refund`` → ``value``,
                       ``currency``, ``transaction_id``; all entities kept in ``properties.contexts``
``ue_pr | ue_px``      the self-describing event; its data kept in ``properties``
=====================  =======================================================================================

A batch whose events differ in app, visitor or send time becomes one raw record per (aid, duid, stm) group, in the
order the groups first appear; a single-group batch keeps the request id, groups are numbered ``<id>.<n>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.core.errors import BadRequest
from clickstream.core.schema import GA4_EVENT_TYPES
from clickstream.ingest.contract import SchemaError, check_payload_data, schema_error
from clickstream.ingest.rules import too_many_events

ECOMMERCE_VENDOR = "com.snowplowanalytics.snowplow.ecommerce"
ECOMMERCE_ACTION = "snowplow_ecommerce_action"

# GA4 names an event may carry as it is (native event types without the custom: prefix).
GA4_NAMES = frozenset(GA4_EVENT_TYPES)
# Snowplow e-commerce plugin action types → GA4 names.
ECOMMERCE_ACTIONS = {
    "product_view": "view_item",
    "list_view": "view_item_list",
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "checkout_step": "begin_checkout",
    "transaction": "purchase",
    "refund": "refund",
}
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.:/\-]+")
_MAX_CUSTOM = 120
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch milliseconds a browser can plausibly report: 2000-01-01 .. 2100-01-01.
_MIN_MS, _MAX_MS = 946_684_800_000, 4_102_444_800_000
# Fields that describe the client rather than one event: they go to the record's context.
_CONTEXT_FIELDS = {"lang": "locale", "tz": "timezone"}
_SCREEN_FIELDS = {"res": "resolution", "vp": "viewport", "ds": "document_size", "cd": "color_depth"}


class InvalidPayload(BadRequest):
    """The tp2 body is not a ``payload_data`` batch; ``field`` names the failing path (HTTP 400)."""

    code = "invalid_payload"


def parse_payload(document: Any, *, max_events: int) -> list[dict[str, Any]]:
    """The events of a tp2 body, or a 400 naming the first problem of its wrapper."""
    message: str | None
    events: list[dict[str, Any]]
    if not isinstance(document, dict):
        raise InvalidPayload("the body must be a JSON object (Snowplow payload_data)")
    try:
        check_payload_data(document)
    except SchemaError as exc:
        message, field = schema_error(exc)
        raise InvalidPayload(message, field=field) from None
    if (message := too_many_events(len(document["data"]), max_events)) is not None:
        raise InvalidPayload(message, field="data")
    events = document["data"]
    return events


@dataclass
class Group:
    """Events that share one raw record's envelope."""

    app_id: str | None
    anonymous_id: str | None
    sent_at: str | None
    context: dict[str, Any] | None
    events: list[dict[str, Any]]


def map_batch(events: list[dict[str, Any]]) -> list[Group]:
    """tp2 events → native events, grouped by (aid, duid, stm) in order of first appearance."""
    groups: dict[tuple[Any, Any, Any], Group] = {}
    for tp in events:
        key = (_text(tp.get("aid")), _text(tp.get("duid")) or _text(tp.get("nuid")), _text(tp.get("stm")))
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(
                app_id=key[0],
                anonymous_id=key[1],
                sent_at=_iso_ms(key[2]),
                context=_client_context(tp),
                events=[],
            )
        group.events.append(map_event(tp))
    for group in groups.values():
        if group.sent_at is None:  # no stm (useStm: false): the newest device time is the closest to the send
            times = [e["occurred_at"] for e in group.events if isinstance(e.get("occurred_at"), str)]
            group.sent_at = max(times) if times else None
    return list(groups.values())


def map_event(tp: dict[str, Any]) -> dict[str, Any]:
    """One tp2 event as a native event object (fields it lacks are left out, for validation to judge)."""
    event: dict[str, Any] = {}
    errors: list[str] = []
    if (eid := _text(tp.get("eid"))) is not None:
        event["event_id"] = eid
    e = _text(tp.get("e")) or ""
    contexts = _entities(tp, "co", "cx", errors)
    unstruct = _unstruct(tp, errors) if e == "ue" else None
    event["event_type"] = _event_type(e, tp, unstruct)
    occurred = _iso_ms(_text(tp.get("dtm"))) or _iso_ms(_text(tp.get("ttm")))
    if occurred is not None:
        event["occurred_at"] = occurred
    if (url := _text(tp.get("url"))) is not None:
        page: dict[str, Any] = {"url": url}
        if (refr := _text(tp.get("refr"))) is not None:
            page["referrer"] = refr
        if (title := _text(tp.get("page"))) is not None:
            page["title"] = title
        event["page"] = page
    if (sid := _text(tp.get("sid"))) is not None:
        event["client_session_id"] = sid

    properties: dict[str, Any] = {}
    if e == "se":
        properties.update(_struct_properties(tp, event["event_type"]))
    elif e == "pp":
        for name in ("pp_mix", "pp_max", "pp_miy", "pp_may"):
            if (offset := _number(tp.get(name))) is not None:
                properties[name] = int(offset)
    elif unstruct is not None:
        properties["schema"] = unstruct.get("schema")
        data = unstruct.get("data")
        if isinstance(data, dict):
            properties.update(data)
        elif data is not None:
            properties["data"] = data
    _commerce(event, contexts)
    if contexts:
        properties["contexts"] = contexts
    if errors:
        properties["snowplow_errors"] = errors
    if properties:
        event["properties"] = properties
    return event


# -- event types ---------------------------------------------------------------------------------------------
def _event_type(e: str, tp: dict[str, Any], unstruct: dict[str, Any] | None) -> str:
    action: object
    if e == "pv":
        return "page_view"
    if e == "pp":
        return "page_ping"
    if e == "se":
        category = _text(tp.get("se_ca")) or ""
        action = _text(tp.get("se_ac")) or ""
        if action.lower() in GA4_NAMES:
            return action.lower()
        return custom_type(f"{category}.{action}")
    if e == "ue":
        schema = unstruct.get("schema") if unstruct else None
        vendor, name = _schema_vendor_name(schema)
        if vendor == ECOMMERCE_VENDOR and name == ECOMMERCE_ACTION:
            data = unstruct.get("data") if unstruct else None
            action = data.get("type") if isinstance(data, dict) else None
            if isinstance(action, str) and action in ECOMMERCE_ACTIONS:
                return ECOMMERCE_ACTIONS[action]
            return custom_type(f"{name}.{action}" if isinstance(action, str) else name)
        return custom_type(name or "unstruct")
    return custom_type(f"snowplow.{e or 'unknown'}")


def custom_type(name: str) -> str:
    """``custom:<name>`` with every run of characters outside ``[A-Za-z0-9_.:/-]`` replaced by ``_`` and no
    separator at either end (the validator's pattern for custom event types)."""
    cleaned = _NOT_NAME.sub("_", name).strip("_.:/-")[:_MAX_CUSTOM].rstrip("_.:/-")
    return "custom:" + (cleaned or "unnamed")


def _schema_vendor_name(schema: Any) -> tuple[str | None, str | None]:
    """``iglu:vendor/name/format/version`` → (vendor, name)."""
    if not isinstance(schema, str) or not schema.startswith("iglu:"):
        return None, None
    parts = schema[5:].split("/")
    return (parts[0], parts[1]) if len(parts) >= 2 else (parts[0], None)


def _struct_properties(tp: dict[str, Any], event_type: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    value: str | float | None
    for field, name in (
        ("se_ca", "category"),
        ("se_ac", "action"),
        ("se_la", "label"),
        ("se_pr", "property"),
    ):
        if (value := _text(tp.get(field))) is not None:
            props[name] = value
    if (value := _number(tp.get("se_va"))) is not None:
        props["value"] = value
    if event_type == "search" and "label" in props:
        props["search_term"] = props["label"]
    return props


# -- entities and e-commerce ---------------------------------------------------------------------------------
def _commerce(event: dict[str, Any], contexts: list[dict[str, Any]]) -> None:
    """items from product entities; value, currency and transaction_id from a transaction or refund entity."""
    items: list[dict[str, Any]] = []
    for entity in contexts:
        vendor, name = _schema_vendor_name(entity.get("schema"))
        data = entity.get("data")
        if vendor != ECOMMERCE_VENDOR or not isinstance(data, dict):
            continue
        if name == "product":
            items.append(_item(data))
        elif name == "transaction" and event.get("event_type") == "purchase":
            _money(event, data.get("transaction_id"), data.get("revenue"), data.get("currency"))
        elif name == "refund" and event.get("event_type") == "refund":
            _money(event, data.get("transaction_id"), data.get("refund_amount"), data.get("currency"))
    if items:
        event["items"] = items


def _item(product: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if "id" in product:
        item["product_id"] = product["id"]
    for key, value in product.items():
        if key != "id":
            item[key] = value
    return item


def _money(event: dict[str, Any], transaction_id: Any, value: Any, currency: Any) -> None:
    if transaction_id is not None:
        event["transaction_id"] = transaction_id if isinstance(transaction_id, str) else str(transaction_id)
    if value is not None:
        event["value"] = value
    if currency is not None:
        event["currency"] = currency


def _entities(tp: dict[str, Any], plain: str, encoded: str, errors: list[str]) -> list[dict[str, Any]]:
    """The entities of ``co`` (JSON) or ``cx`` (base64url JSON): ``[{"schema", "data"}, …]``."""
    doc = _self_describing(tp, plain, encoded, errors)
    data = doc.get("data") if isinstance(doc, dict) else None
    if doc is not None and not isinstance(data, list):
        errors.append(f"{plain if plain in tp else encoded}: not a contexts document")
        return []
    return [entity for entity in data or [] if isinstance(entity, dict)]


def _unstruct(tp: dict[str, Any], errors: list[str]) -> dict[str, Any] | None:
    """The inner self-describing event of ``ue_pr`` (JSON) or ``ue_px`` (base64url JSON)."""
    doc = _self_describing(tp, "ue_pr", "ue_px", errors)
    inner = doc.get("data") if isinstance(doc, dict) else None
    if doc is not None and not isinstance(inner, dict):
        errors.append("ue: not an unstruct_event document")
        return None
    return inner


def _self_describing(tp: dict[str, Any], plain: str, encoded: str, errors: list[str]) -> Any:
    if isinstance(tp.get(plain), str):
        text, name = tp[plain], plain
    elif isinstance(tp.get(encoded), str):
        name = encoded
        try:
            text = decode_base64url(tp[encoded])
        except ValueError as exc:
            errors.append(f"{encoded}: {exc}")
            return None
    else:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        errors.append(f"{name}: not valid JSON")
        return None


def decode_base64url(text: str) -> str:
    """Snowplow's base64 (URL-safe alphabet, padding optional; the standard alphabet is tolerated) → UTF-8 text."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4)).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64url JSON") from exc


# -- scalars -------------------------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None


def _iso_ms(ms: str | None) -> str | None:
    """Epoch milliseconds (as the tracker sends them, a decimal string) → ``2026-03-01T10:00:00.123Z``."""
    if ms is None or not ms.isascii() or not ms.isdigit() or len(ms) > 15:
        return None
    value = int(ms)
    if not _MIN_MS <= value <= _MAX_MS:
        return None
    when = _EPOCH + timedelta(milliseconds=value)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _client_context(tp: dict[str, Any]) -> dict[str, Any] | None:
    context: dict[str, Any] = {}
    for field, name in _CONTEXT_FIELDS.items():
        if (value := _text(tp.get(field))) is not None:
            context[name] = value[:64]
    screen = {name: tp[field] for field, name in _SCREEN_FIELDS.items() if isinstance(tp.get(field), str)}
    if screen:
        context["screen"] = screen
    tracker = {
        name: tp[field]
        for field, name in (("tv", "version"), ("tna", "namespace"), ("p", "platform"))
        if isinstance(tp.get(field), str)
    }
    if tracker:
        context["tracker"] = tracker
    return context or None
