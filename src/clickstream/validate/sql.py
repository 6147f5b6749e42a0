"""The SQL of the fast validation path (DuckDB): plain events are checked, enriched and hashed in one set-based pass.

"Plain" is a conservative subset of the per-event schema (``models``): every field of a known type and shape, no
unknown fields, no escapes DuckDB and Python would print differently, no token DuckDB's JSON reader accepts and
pydantic's strict reader does not (``NaN``, ``Infinity``, trailing commas, huge exponents), and nothing the judge
might cap (a page URL or referrer over ``text.URL_UNCUT`` characters, a User-Agent over ``text.USER_AGENT_CAP``
bytes). A plain
event is valid by construction; any other event is judged by the Python path (``judge``), which gives the exact
reason and detail (and does the truncating). Free-text columns get the judge's control-character rule
(``clean_text``, the same replacement) before anything is derived from them. The payload hash of a plain event is the same sha256 over the same canonical JSON text as
``enrich.payload_hash`` (sorted keys, compact, money as Python floats print): a property test holds them equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from clickstream.core.schema import MAX_APP_ID, MAX_IDENTIFIER, PRINTABLE, RAW_RECORD_FIELDS, re2_class
from clickstream.core.sql import literal as _lit
from clickstream.validate.enrich import KNOWN_EVENT_FIELDS
from clickstream.validate.models import (
    CURRENCY_PATTERN,
    EVENT_TYPE_PATTERN,
    ITEMS_REQUIRED,
    MAX_ID,
    MAX_ITEMS,
    MAX_TEXT,
    MONEY_REQUIRED,
    PAGE_REQUIRED,
    UUID_PATTERN,
)
from clickstream.validate.text import CLEAN_TEXT_MACRO, URL_UNCUT, USER_AGENT_CAP

# A plain event's serialized size stays far below the judge's MAX_EVENT_BYTES however Python re-prints its
# numbers: at most half of it (``plain_event_bytes``), and never over this.
PLAIN_EVENT_BYTES = 16_000


def plain_event_bytes(max_event_bytes: int) -> int:
    return min(PLAIN_EVENT_BYTES, max_event_bytes // 2)


ISO_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
# The same URL rule as models.HTTP_URL_PATTERN, on printable ASCII only (so RE2 and Rust regex agree on \s).
ASCII_URL_PATTERN = r'^[hH][tT][tT][pP][sS]?://[!"$-.0->@-~]+([/?#][!-~]*)?$'
# Tokens DuckDB's JSON reader accepts and the strict reader does not (a record holding one is judged by Python
# whole). Numbers out of a double's range are caught where they matter, value by value (``is_num``, ``prop_ok``).
SUSPECT_TOKENS = (b"NaN", b"Infinity")
TRAILING_COMMA_PATTERN = rb",[ \t\r]*[\]}]"
# The payload's fields in the canonical text (sorted; event_id and client_session_id are not payload).
CANONICAL_FIELDS = (
    "currency",
    "event_type",
    "items",
    "occurred_at",
    "page",
    "properties",
    "transaction_id",
    "value",
)
ITEM_FIELDS = ("brand", "category", "name", "price", "product_id", "quantity")
PAGE_FIELDS = ("referrer", "title", "url")


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_lit(v) for v in sorted(values)) + "]"


def _keys_pattern(fields: Iterable[str]) -> str:
    """A regex literal for ``keys_ok``: the sorted keys joined by U+0001 match it when each is one of ``fields``
    and none repeats (one parse-free string match instead of a distinct count and a subset test). U+0001 never
    occurs in a plain event's keys: a raw control character is not JSON, and an escaped one (``\\u``) is never
    plain."""
    return _lit("".join(f"(?:{re.escape(name)}\\x01)?" for name in sorted(fields)))


# Created once per DuckDB database (not per cursor): every cursor of the process sees them.
MACROS = f"""
CREATE OR REPLACE MACRO jt(x) AS json_type(x);
CREATE OR REPLACE MACRO is_str(x) AS starts_with(x::VARCHAR, '"');
CREATE OR REPLACE MACRO is_obj(x) AS starts_with(x::VARCHAR, '{{');
CREATE OR REPLACE MACRO is_arr(x) AS starts_with(x::VARCHAR, '[');
CREATE OR REPLACE MACRO is_bool(x) AS (x::VARCHAR IN ('true', 'false'));
CREATE OR REPLACE MACRO is_null(x) AS (x IS NULL OR x::VARCHAR = 'null');
CREATE OR REPLACE MACRO sval(x) AS (CASE WHEN NOT is_str(x) THEN NULL WHEN contains(x::VARCHAR, '\\') THEN json_extract_string(x, '$')
    ELSE (x::VARCHAR)[2:-2] END);
CREATE OR REPLACE MACRO str_le(x, n) AS coalesce(is_str(x) AND (strlen(x::VARCHAR) - 2 <= n OR strlen(json_extract_string(x, '$')) <= n),
    false);
CREATE OR REPLACE MACRO opt_str_le(x, n) AS (is_null(x) OR str_le(x, n));
CREATE OR REPLACE MACRO id_ok(x) AS coalesce(str_le(x, {MAX_ID}) AND strlen(x::VARCHAR) > 2, false);
CREATE OR REPLACE MACRO ident_ok(x, n) AS coalesce(str_le(x, n) AND strlen(x::VARCHAR) > 2
    AND regexp_full_match(sval(x), {_lit(re2_class(PRINTABLE))}), false);
CREATE OR REPLACE MACRO opt_id_ok(x) AS (is_null(x) OR id_ok(x));
CREATE OR REPLACE MACRO is_num(x) AS coalesce(json_type(x) IN ('UBIGINT', 'BIGINT')
    OR (json_type(x) = 'DOUBLE' AND isfinite(try_cast(x AS DOUBLE)) AND regexp_matches(x::VARCHAR, '[.eE]')),
    false);
CREATE OR REPLACE MACRO ts_ok(x) AS coalesce(is_str(x)
    AND regexp_full_match(sval(x), {_lit(ISO_PATTERN)}) AND try_cast(sval(x) AS TIMESTAMPTZ) IS NOT NULL, false);
CREATE OR REPLACE MACRO distinct_keys(k) AS (len(k) = len(list_distinct(k)));
CREATE OR REPLACE MACRO keys_ok(k, pattern) AS (len(k) = 0
    OR regexp_full_match(array_to_string(list_sort(k), chr(1)) || chr(1), pattern));
CREATE OR REPLACE MACRO num_text(x) AS (CASE WHEN is_null(x) THEN 'null' ELSE try_cast(x AS DOUBLE)::VARCHAR END);
CREATE OR REPLACE MACRO scalar_text(x) AS (CASE json_type(x) WHEN 'DOUBLE' THEN try_cast(x AS DOUBLE)::VARCHAR
    ELSE x::VARCHAR END);
CREATE OR REPLACE MACRO part(keys, name, text) AS (CASE WHEN list_contains(keys, name)
    THEN '"' || name || '":' || text END);
CREATE OR REPLACE MACRO part_if(present, name, text) AS (CASE WHEN present THEN '"' || name || '":' || text END);
CREATE OR REPLACE MACRO utc_iso(ts) AS (CASE WHEN epoch_us(ts) % 1000000 = 0
    THEN strftime(make_timestamp(epoch_us(ts)), '%Y-%m-%dT%H:%M:%S+00:00')
    ELSE strftime(make_timestamp(epoch_us(ts)), '%Y-%m-%dT%H:%M:%S.%f+00:00') END);
CREATE OR REPLACE MACRO nonempty(x) AS (CASE WHEN is_str(x) AND x::VARCHAR <> '""' THEN sval(x) END);
{CLEAN_TEXT_MACRO}
"""

ENVELOPE_FIELDS = tuple(name for name in RAW_RECORD_FIELDS if name != "events")
# Every envelope field as JSON (its text, so a number is never mistaken for a string) and the events as a list of
# JSON texts: DuckDB parses each line once, and fails the whole read on anything that is not one JSON object per
# line with an events list (the caller then judges the object in Python).
READ_COLUMNS = "{" + ", ".join(f"{_lit(name)}: 'JSON'" for name in ENVELOPE_FIELDS) + ", 'events': 'JSON[]'}"


def records_sql(path: str) -> str:
    """lines file -> rec: the records whose envelope is plain, with their events (a list of JSON texts).

    Records are numbered in file order (``idx``, 1-based): the engine runs DuckDB on one thread, so the scan order
    is the file's. A line the caller keeps for Python is written as ``{}`` and is never plain. Each record also
    carries what its events take from its context (``CONTEXT_COLUMNS``), derived once per record."""
    return f"""
CREATE TEMP TABLE rec AS
WITH parsed AS (
    SELECT row_number() OVER () AS idx, *
    FROM read_json({_lit(path)}, format = 'newline_delimited', records = true, columns = {READ_COLUMNS},
                   maximum_object_size = 33554432)
),
kept AS (
SELECT idx, events, context, context->'$.page' AS cp, json_keys(context) AS ckeys,
       sval(app_id) AS app_id, sval(anonymous_id) AS anonymous_id, nonempty(user_id) AS user_id,
       clean_text(nonempty(user_agent)) AS user_agent, sval(ip) AS ip,
       coalesce(internal::VARCHAR = 'true', false) AS internal,
       try_cast(sval(received_at) AS TIMESTAMPTZ) AS received_at, try_cast(sval(sent_at) AS TIMESTAMPTZ) AS sent_at,
       idx AS ordinal
FROM parsed
WHERE events IS NOT NULL
  AND opt_str_le("schema", 1000000000) AND opt_str_le(request_id, 1000000000)
  AND opt_str_le("source", 1000000000) AND opt_str_le(user_id, 1000000000)
  AND opt_str_le(ip, 1000000000) AND opt_str_le(user_agent, 1000000000)
  AND (is_null(internal) OR is_bool(internal))
  AND (is_null(context) OR is_obj(context))
  AND ident_ok(app_id, {MAX_APP_ID}) AND ident_ok(anonymous_id, {MAX_IDENTIFIER})
  AND ts_ok(received_at) AND ts_ok(sent_at)
  AND coalesce(strlen(clean_text(nonempty(user_agent))) <= {USER_AGENT_CAP}, true)
),
ctx AS (
    SELECT * EXCLUDE (cp, ckeys), {CONTEXT_COLUMNS} FROM kept
)
SELECT * EXCLUDE (cp_url, cp_referrer, cp_title),
    is_null(cp_url) AS ctx_no_url,
    CASE WHEN is_str(cp_url) THEN sval(cp_url) END AS ctx_url,
    is_str(cp_url) AND regexp_matches(lower(sval(cp_url)), '^https?://') AS ctx_http,
    nonempty(cp_referrer) AS ctx_referrer, nonempty(cp_title) AS ctx_title
FROM ctx
"""


EVENT_SHAPE = (
    '{"event_id":"JSON","event_type":"JSON","occurred_at":"JSON","page":"JSON","properties":"JSON",'
    '"items":"JSON","value":"JSON","currency":"JSON","transaction_id":"JSON","client_session_id":"JSON"}'
)


# Per-record context: page (object or URL string, plus context.referrer), client session id, UTM key; over the
# record's ``context``, its page ``cp`` and its keys ``ckeys``.
CONTEXT_COLUMNS = """
    CASE jt(cp) WHEN 'OBJECT' THEN cp->'$.url' WHEN 'VARCHAR' THEN cp END AS cp_url,
    CASE WHEN jt(cp) = 'OBJECT' AND list_contains(json_keys(cp), 'referrer') THEN cp->'$.referrer'
         ELSE context->'$.referrer' END AS cp_referrer,
    CASE WHEN jt(cp) = 'OBJECT' THEN cp->'$.title' END AS cp_title,
    (jt(cp) = 'OBJECT' AND len(json_keys(cp)) > 0) OR jt(cp) = 'VARCHAR'
        OR (jt(context->'$.referrer') = 'VARCHAR') AS cp_nonempty,
    clean_text(nonempty(CASE WHEN list_contains(ckeys, 'client_session_id') THEN context->'$.client_session_id'
                  ELSE context->'$.session_id' END)) AS ctx_session,
    CASE WHEN context IS NOT NULL THEN json_object(
        'utm', context->'$.utm', 'campaign', context->'$.campaign', 'utm_source', context->'$.utm_source',
        'utm_medium', context->'$.utm_medium', 'utm_campaign', context->'$.utm_campaign',
        'utm_term', context->'$.utm_term', 'utm_content', context->'$.utm_content')::VARCHAR END AS utm_key
"""


PAGE_SHAPE = '{"url":"JSON","referrer":"JSON","title":"JSON"}'
ITEM_SHAPE = (
    '{"product_id":"JSON","name":"JSON","category":"JSON","brand":"JSON","price":"JSON","quantity":"JSON"}'
)


def events_sql(lookback_us: int, max_event_bytes: int) -> str:
    """rec -> ev: every event of a plain record, with its plain flag and (when plain) its derived fields.

    Each event, its page and each item are parsed once (``json_transform`` to JSON-typed fields, plus their keys
    for presence, unknown and duplicate fields); the checks and the canonical text work on those parts.

    Length: one SQL statement, built in the order it reads; its parts share the parsed fields, so splitting it would
    only pass them around."""
    items_required = _list(ITEMS_REQUIRED)
    money_required = _list(MONEY_REQUIRED)
    page_required = _list(PAGE_REQUIRED)
    item_ok = (
        f"lambda x: coalesce(is_obj(x.j) AND keys_ok(x.k, {_keys_pattern(ITEM_FIELDS)}) "
        "AND id_ok(x.t.product_id) "
        f"AND opt_str_le(x.t.name, {MAX_TEXT}) AND opt_str_le(x.t.category, {MAX_TEXT}) "
        f"AND opt_str_le(x.t.brand, {MAX_TEXT}) "
        "AND (is_null(x.t.price) OR (is_num(x.t.price) AND try_cast(x.t.price AS DOUBLE) >= 0)) "
        "AND (NOT list_contains(x.k, 'quantity') OR (jt(x.t.quantity) IN ('UBIGINT', 'BIGINT') "
        "AND try_cast(x.t.quantity AS BIGINT) BETWEEN 1 AND 1000000)), false)"
    )
    item_text = (
        "lambda x: '{' || concat_ws(',', "
        + ", ".join(
            f"part(x.k, '{name}', "
            + ("num_text(x.t.price)" if name == "price" else f"coalesce((x.t.{name})::VARCHAR, 'null')")
            + ")"
            for name in ITEM_FIELDS
        )
        + ") || '}'"
    )
    prop_ok = (
        "lambda kv: coalesce(jt(kv[2]) IN ('VARCHAR', 'UBIGINT', 'BIGINT', 'BOOLEAN', 'NULL') "
        "OR (jt(kv[2]) = 'DOUBLE' AND isfinite(try_cast(kv[2] AS DOUBLE)) "
        "AND regexp_matches(kv[2]::VARCHAR, '[.eE]')), false)"
    )
    return f"""
CREATE TEMP TABLE ev AS
WITH raw AS (
    SELECT idx, unnest(events) AS e, generate_subscripts(events, 1) - 1 AS position FROM rec
),
f AS MATERIALIZED (
    -- the event's text itself is not kept: only what the checks need from it
    SELECT idx, position, json_keys(e) AS keys, json_transform(e, {_lit(EVENT_SHAPE)}) AS ef,
           is_obj(e) AND strlen(e::VARCHAR) <= {plain_event_bytes(max_event_bytes)}
           AND NOT contains(e::VARCHAR, '\\u') AS text_ok
    FROM raw
),
-- A page, an items list or a properties object is parsed, checked and printed once per distinct text: events
-- of one object repeat them (a page's views and pings, a cart's items, ping properties).
page_d AS (
    SELECT text, pkeys, pg,
        coalesce(pkeys IS NOT NULL AND keys_ok(pkeys, {_keys_pattern(PAGE_FIELDS)})
             AND is_str(pg.url) AND regexp_full_match(sval(pg.url), {_lit(ASCII_URL_PATTERN)})
             AND (is_null(pg.referrer) OR is_str(pg.referrer)) AND opt_str_le(pg.title, {MAX_TEXT}), false)
             AS page_valid,
        '{{' || concat_ws(',',
             part(pkeys, 'referrer', coalesce((pg.referrer)::VARCHAR, 'null')),
             part(pkeys, 'title', coalesce((pg.title)::VARCHAR, 'null')),
             part(pkeys, 'url', coalesce((pg.url)::VARCHAR, 'null'))) || '}}' AS page_canon,
        sval(pg.url) AS page_url, nonempty(pg.referrer) AS page_referrer, nonempty(pg.title) AS page_title,
        is_null(pg.referrer) AS no_referrer, is_null(pg.title) AS no_title
    FROM (SELECT text, json_keys(text) AS pkeys, json_transform(text, {_lit(PAGE_SHAPE)}) AS pg
          FROM (SELECT DISTINCT (ef.page)::VARCHAR AS text FROM f WHERE is_obj(ef.page)))
),
items_d AS (
    SELECT text, its,
        coalesce(len(its) <= {MAX_ITEMS} AND list_bool_and(list_transform(its, {item_ok})) IS NOT false, false)
            AS items_valid,
        '[' || array_to_string(list_transform(its, {item_text}), ',') || ']' AS items_canon,
        len(its) AS n_items,
        its[1].t.product_id->>'$' AS product_id, nonempty(its[1].t.name) AS product_name,
        nonempty(its[1].t.category) AS category,
        CASE WHEN NOT is_null(its[1].t.price) THEN try_cast(its[1].t.price AS DOUBLE) END AS price,
        CASE WHEN len(its) = 0 THEN NULL
             WHEN list_contains(its[1].k, 'quantity') THEN try_cast(its[1].t.quantity AS INTEGER)
             ELSE 1 END AS quantity
    FROM (SELECT text, list_transform(json_extract(text, '$[*]'),
             lambda it: {{'j': it, 'k': json_keys(it),
                         't': CASE WHEN is_obj(it) THEN json_transform(it, {_lit(ITEM_SHAPE)}) END}}) AS its
          FROM (SELECT DISTINCT (ef.items)::VARCHAR AS text FROM f WHERE is_arr(ef.items)))
),
props_d AS (
    SELECT text,
        coalesce(distinct_keys(list_transform(pp, lambda kv: kv[1]))
             AND list_bool_and(list_transform(pp, {prop_ok})) IS NOT false, false) AS props_valid,
        '{{' || array_to_string(list_transform(pp,
             lambda kv: to_json(kv[1]) || ':' || scalar_text(kv[2])), ',') || '}}' AS props_canon
    FROM (SELECT text, list_sort(list_zip(json_keys(text), json_extract(text, '$.*'))) AS pp
          FROM (SELECT DISTINCT (ef.properties)::VARCHAR AS text FROM f WHERE is_obj(ef.properties)))
),
keys_d AS (
    SELECT keys, keys_ok(keys, {_keys_pattern(KNOWN_EVENT_FIELDS)}) AS keys_valid,
        {", ".join(f"list_contains(keys, '{name}') AS has_{name}" for name in CANONICAL_FIELDS)}
    FROM (SELECT DISTINCT keys FROM f)
),
type_d AS (
    SELECT text, sval(text) AS event_type,
        coalesce(str_le(text, {MAX_ID}) AND regexp_full_match(sval(text), {_lit(EVENT_TYPE_PATTERN)}), false)
            AS type_valid,
        list_contains({items_required}, sval(text)) AS needs_items,
        list_contains({money_required}, sval(text)) AS needs_money,
        list_contains({page_required}, sval(text)) AS needs_page
    FROM (SELECT DISTINCT (ef.event_type)::VARCHAR AS text FROM f)
),
g AS (
    SELECT f.*, keys_d.* EXCLUDE (keys), type_d.* EXCLUDE (text), page_d.* EXCLUDE (text),
        items_d.* EXCLUDE (text), props_d.* EXCLUDE (text)
    FROM f
    LEFT JOIN keys_d ON keys_d.keys = f.keys
    LEFT JOIN type_d ON type_d.text = (f.ef.event_type)::VARCHAR
    LEFT JOIN page_d ON page_d.text = (f.ef.page)::VARCHAR
    LEFT JOIN items_d ON items_d.text = (f.ef.items)::VARCHAR
    LEFT JOIN props_d ON props_d.text = (f.ef.properties)::VARCHAR
),
checked AS (
    SELECT g.*, rec.received_at, rec.sent_at, rec.ctx_no_url, rec.ctx_url, rec.ctx_http, rec.ctx_referrer,
        rec.ctx_title, rec.cp_nonempty, rec.ctx_session, rec.utm_key,
        CASE WHEN ts_ok(ef.occurred_at) THEN try_cast(sval(ef.occurred_at) AS TIMESTAMPTZ) END AS occurred_at,
        text_ok AND coalesce(keys_valid, false)
        AND str_le(ef.event_id, 36) AND regexp_full_match(sval(ef.event_id), {_lit(UUID_PATTERN)})
        AND coalesce(type_valid, false)
        AND ts_ok(ef.occurred_at)
        AND (is_null(ef.page) OR coalesce(page_valid, false))
        AND (is_null(ef.properties) OR coalesce(props_valid, false))
        AND (is_null(ef.items) OR coalesce(items_valid, false))
        AND (is_null(ef.value) OR is_num(ef.value))
        AND (is_null(ef.currency) OR (is_str(ef.currency)
             AND regexp_full_match(sval(ef.currency), {_lit(CURRENCY_PATTERN)})))
        AND opt_id_ok(ef.transaction_id) AND opt_id_ok(ef.client_session_id)
        AND (is_null(ef.value) OR NOT is_null(ef.currency))
        AND (NOT needs_items OR n_items >= 1)
        AND (NOT needs_money
             OR (NOT is_null(ef.value) AND NOT is_null(ef.currency) AND NOT is_null(ef.transaction_id)))
        AS schema_ok
    FROM g JOIN rec USING (idx)
),
timed AS (
    SELECT *,
        epoch_us(sent_at) - epoch_us(occurred_at) AS offset_us,
        -- a page view needs a page; without its own page an event takes the context's, whose URL must be http(s)
        NOT is_null(ef.page) OR (
            CASE WHEN ctx_no_url THEN NOT needs_page
                 ELSE ctx_http AND (NOT needs_page OR ctx_url <> '') END
        ) AS page_ok,
        -- the page fields the event ends up with: its own, else (field by field) its record's context
        CASE WHEN is_null(ef.page) THEN ctx_url ELSE page_url END AS eff_url,
        CASE WHEN is_null(ef.page) THEN ctx_referrer
             WHEN no_referrer AND cp_nonempty THEN ctx_referrer
             ELSE page_referrer END AS eff_referrer,
        CASE WHEN is_null(ef.page) THEN ctx_title
             WHEN no_title AND cp_nonempty THEN ctx_title
             ELSE page_title END AS eff_title
    FROM checked
)
SELECT idx, position,
    -- a URL or referrer the judge might truncate is left to it
    coalesce(schema_ok AND page_ok AND offset_us <= {int(lookback_us)}
        AND coalesce(length(eff_url) <= {URL_UNCUT}, true) AND coalesce(length(eff_referrer) <= {URL_UNCUT}, true),
        false) AS plain,
    lower(sval(ef.event_id)) AS event_id, event_type,
    occurred_at, received_at,
    CASE WHEN offset_us < 0 THEN received_at ELSE received_at - to_microseconds(offset_us) END AS event_ts,
    offset_us < 0 AS ts_clamped,
    clean_text(nonempty(ef.client_session_id)) AS event_session,
    clean_text(eff_url) AS url, clean_text(eff_referrer) AS referrer, clean_text(eff_title) AS title,
    clean_text(CASE WHEN n_items > 0 THEN product_id END) AS product_id,
    clean_text(CASE WHEN n_items > 0 THEN product_name END) AS product_name,
    clean_text(CASE WHEN n_items > 0 THEN category END) AS category,
    CASE WHEN n_items > 0 THEN price END AS price,
    CASE WHEN n_items > 0 THEN quantity END AS quantity,
    CASE WHEN n_items > 0 THEN items_canon END AS items_text,
    props_canon AS props_text,
    CASE WHEN is_num(ef.value) THEN try_cast(ef.value AS DOUBLE) END AS value,
    sval(ef.currency) AS currency, clean_text(sval(ef.transaction_id)) AS transaction_id,
    '{{' || concat_ws(',',
        part_if(has_currency, 'currency', coalesce((ef.currency)::VARCHAR, 'null')),
        part_if(has_event_type, 'event_type', coalesce((ef.event_type)::VARCHAR, 'null')),
        part_if(has_items, 'items', coalesce(items_canon, 'null')),
        part_if(has_occurred_at, 'occurred_at', '"' || utc_iso(occurred_at) || '"'),
        part_if(has_page, 'page', CASE WHEN pg IS NULL THEN 'null' ELSE page_canon END),
        part_if(has_properties, 'properties', coalesce(props_canon, 'null')),
        part_if(has_transaction_id, 'transaction_id', coalesce((ef.transaction_id)::VARCHAR, 'null')),
        part_if(has_value, 'value', num_text(ef.value))
    ) || '}}' AS canonical,
    ctx_session, utm_key
FROM timed
"""
