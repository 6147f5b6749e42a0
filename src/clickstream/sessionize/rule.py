"""The sessionization rule: DuckDB SQL over validated events, plus a small Python step for over-long chains.

The rule (duplicates, sessions, session fields):

1. **Dedupe by event_id.** Copies of one event_id are ranked by (received_at, event_ts, source_object,
   source_line), nulls last (a column the input lacks is null); the first copy is kept. A later copy with the same
   payload_hash (or without one to compare) is a ``duplicate``; with a different payload_hash it is a
   ``duplicate_conflict``. Only event_ids whose 64-bit hash occurs more than once are ranked (a superset of the
   repeated ids: a collision only adds copies that rank first alone), so the common case costs one hash aggregation
   over integers instead of strings.
2. **Activity chains.** Per anonymous_id, the kept events ordered by (event_ts, event_id); a chain starts at the
   visitor's first event and wherever ``event_ts - previous event_ts > timeout`` (strict). Two window passes over
   narrow rows give each event its chain's start (the latest chain-start flag at or before it) and the row id of
   the chain's first event (the integer key of its session).
3. **The 24 h cap.** A chain whose span (last - first event) is at most the cap is one session. Longer chains are
   cut greedily from the start: a new session begins at the first event with ``event_ts - session start > cap``
   (strict), and so on. This is sequential, so it is done in Python over the timestamps of just those chains
   (a bisection per session), and the cuts are joined back with an ASOF join.
4. **session_id** = ``md5("<anonymous_id>|<session start as integer microseconds since the Unix epoch>")`` as
   lowercase hex, so re-runs and incremental runs give the same ids.
5. **Session fields** (``core.schema.SESSION_COLUMNS``) by one aggregation per session, keyed by the session's first
   row; fields whose input columns are absent are null.

Engaged time follows Snowplow's web data model (dbt-snowplow-web, ``snowplow_web_pv_engaged_time``): per page view
that has page pings, ``engaged = H * (count(distinct floor(ping_time / H)) - 1) + M`` with heartbeat H = 10 s and
minimum visit length M = 5 s (the first ping fires after M, then one every H; duplicate pings in one heartbeat slot
count once); a page view without pings contributes 0. ping_time is the device time (``occurred_at``, Snowplow's
``dvce_created_tstamp``) when present, else ``event_ts``. Pings belong to the latest page view before them in the
session (pings before any page view form a group of their own). The session's engaged time is the sum over its
page views, capped at its duration.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from clickstream.core import sql
from clickstream.core.schema import SESSION_COLUMNS, VALIDATED_COLUMNS
from clickstream.core.sql import identifier

HEARTBEAT_S = 10
MIN_VISIT_LENGTH_S = 5
ENGAGED_MIN_DURATION_S = 10  # GA4: a session is engaged when it lasts longer than 10 s …
ENGAGED_MIN_PAGE_VIEWS = 2  # … or has at least 2 page views, or a purchase

DUPLICATE = "duplicate"
DUPLICATE_CONFLICT = "duplicate_conflict"

_TYPES = dict(VALIDATED_COLUMNS)
_US_PER_S = 1_000_000


@dataclass(frozen=True)
class SessionRules:
    """The session timeout and the maximum session length (both strict: equal stays in the session), and the
    optional splits: at local midnight in ``split_at_midnight`` (an IANA time zone), and on a campaign change."""

    timeout_minutes: float = 30
    max_session_hours: float = 24
    split_at_midnight: str | None = None
    split_on_campaign: bool = False

    def __post_init__(self) -> None:
        if self.timeout_minutes <= 0 or self.max_session_hours <= 0:
            raise ValueError("timeout and maximum session length must be positive")
        if self.split_at_midnight is not None:
            try:
                ZoneInfo(self.split_at_midnight)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone: {self.split_at_midnight!r}") from exc

    @property
    def timeout_us(self) -> int:
        return round(self.timeout_minutes * 60 * _US_PER_S)

    @property
    def max_length_us(self) -> int:
        return round(self.max_session_hours * 3600 * _US_PER_S)


@dataclass(frozen=True)
class DuckDBOptions:
    """Resource settings, so large inputs spill to ``temp_directory`` instead of failing."""

    memory_limit: str | None = None  # e.g. "2GB"
    threads: int | None = None
    temp_directory: str | None = None


def connect(options: DuckDBOptions | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC (naive timestamps mean UTC) that does not keep input order and
    prints no progress bar."""
    options = options or DuckDBOptions()
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")  # no terminal in a Lambda; stderr noise in the CLI
    if options.memory_limit:
        con.execute("SET memory_limit = ?", [options.memory_limit])
    if options.threads:
        con.execute(f"SET threads = {int(options.threads)}")
    if options.temp_directory:
        con.execute("SET temp_directory = ?", [options.temp_directory])
    return con


def one_row(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> tuple[Any, ...]:
    """The single row a query answers (an aggregate without GROUP BY always answers one)."""
    row = con.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from: {query[:80]}")
    return row


def cut_chain(timestamps: list[int], max_length_us: int) -> list[int]:
    """Greedy session starts of one sorted activity chain: each start is the first event more than the cap after
    the previous start."""
    starts: list[int] = []
    i, n = 0, len(timestamps)
    while i < n:
        start = timestamps[i]
        starts.append(start)
        i = bisect.bisect_right(timestamps, start + max_length_us, lo=i)
    return starts


def session_id_sql(anonymous_id: str, start_us: str) -> str:
    """The deterministic session id as SQL: md5 of ``<anonymous_id>|<start in epoch microseconds>``."""
    return f"md5({anonymous_id} || '|' || {start_us}::VARCHAR)"


class Sessionizer:
    """Runs the rule over a DuckDB relation of validated events (``source``), creating temp tables ``<prefix>_*``.

    ``columns`` are the names the source has; a column the rule reads but the source lacks is treated as null.
    ``rid`` is the source's row identity between the stages: ``rowid`` of a table, or a column of a view (for
    example a Parquet file's row number), so a Parquet input is scanned column by column instead of copied.
    ``held`` and ``seed`` continue a visitor's history whose earlier part is not in the source (see ``__init__``).
    """

    VISITOR_HASH = "hash({})"  # a visitor's 64-bit window partition key (checked for collisions per run)

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        columns: Collection[str],
        rules: SessionRules | None = None,
        prefix: str = "_cs",
        rid: str = "rowid",
        held: str | None = None,
        seed: str | None = None,
    ) -> None:
        self.con = con
        self.source = source
        self.columns = set(columns)
        self.rules = rules or SessionRules()
        self.prefix = prefix
        self.rid = rid
        # ``held``: a boolean column of rows that take part in the dedupe ranking only (copies whose session is
        # decided elsewhere, e.g. frozen history); ``seed``: a table (anonymous_id, _campaign) of each visitor's
        # latest campaign before the source's first event, for the campaign split.
        self.held = held
        self.seed = seed
        self.drops = f"{prefix}_drops"  # (_rid, drop_reason) of the copies that are not kept
        # _rid, anonymous_id, _t, _ord, _start, _srid (the session's first row), _pvc, _slot of the kept rows
        self.assign = f"{prefix}_assign"
        self.events = f"{prefix}_events"  # source columns + _t, _ord, _start, session_id of sessionized rows
        self.sessions = f"{prefix}_sessions"  # SESSION_COLUMNS

    # -- helpers -------------------------------------------------------------------------------------------
    def has(self, column: str) -> bool:
        return column in self.columns

    def col(self, column: str, alias: str = "") -> str:
        """The column, or a typed NULL when the source lacks it."""
        ref = f"{alias}.{identifier(column)}" if alias else identifier(column)
        return ref if self.has(column) else f"NULL::{_TYPES.get(column, 'VARCHAR')}"

    def _rid(self, alias: str) -> str:
        return f"{alias}.{self.rid}"

    # -- 1. dedupe -----------------------------------------------------------------------------------------
    def mark_duplicates(self) -> None:
        """``<prefix>_drops``: every copy of an event_id that is not the first received, with its reason."""
        c = self.col
        order = ", ".join(
            f"{c(name, 's')} ASC NULLS LAST"
            for name in (
                "received_at",
                "event_ts",
                "source_object",
                "source_line",
                "payload_hash",
                "anonymous_id",
                "event_type",
                "page_url",
                "user_id",
            )
        )
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {self.drops} AS
            WITH repeated AS (
                SELECT hash(event_id) AS _h FROM {self.source} WHERE event_id IS NOT NULL
                GROUP BY _h HAVING count(*) > 1
            ),
            ranked AS (
                SELECT {self._rid("s")} AS _rid,
                       {c("payload_hash", "s")} AS _hash,
                       row_number() OVER w AS _copy,
                       first_value({c("payload_hash", "s")}) OVER w AS _first_hash
                FROM {self.source} s SEMI JOIN repeated r ON hash(s.event_id) = r._h
                WINDOW w AS (PARTITION BY s.event_id ORDER BY {order}, {self._rid("s")})
            )
            SELECT _rid,
                   CASE WHEN _hash IS NOT NULL AND _first_hash IS NOT NULL AND _hash <> _first_hash
                        THEN '{DUPLICATE_CONFLICT}' ELSE '{DUPLICATE}' END AS drop_reason
            FROM ranked WHERE _copy > 1
            """
        )

    # -- 2-4. chains, splits, cap ----------------------------------------------------------------------------
    def _break_flag(self) -> tuple[str, str]:
        """(inner columns, new-segment flag) of the first window pass, whose partitions are single visitors.

        An event starts a new segment when it is the visitor's first, after a gap > timeout, and with the
        optional splits on another local day than the previous event, or carrying a campaign (utm source, medium,
        campaign) other than the visitor's latest campaign before it (events without one never split: a direct
        visit never overrides a campaign). A split needs a strictly later time than the previous event, so two
        sessions never share a start (nor an id), and segment starts increase along a visitor's events.
        """
        rules = self.rules
        extra: list[str] = []
        flags = [f"_t - lag(_t) OVER w > {rules.timeout_us}"]
        if rules.split_at_midnight:
            extra.append(f"timezone({sql.literal(rules.split_at_midnight)}, s.event_ts)::DATE AS _day")
            flags.append("(_t > lag(_t) OVER w AND _day <> lag(_day) OVER w)")
        if rules.split_on_campaign:
            utm = ", ".join(self.col(n, "s") for n in ("utm_source", "utm_medium", "utm_campaign"))
            extra.append(f"CASE WHEN coalesce({utm}) IS NOT NULL THEN [{utm}] END AS _campaign")
            before = (
                "last_value(_campaign IGNORE NULLS) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
            )
            if self.seed is not None:
                extra.append(
                    f"(SELECT sd._campaign FROM {self.seed} sd WHERE sd.anonymous_id = s.anonymous_id) AS _seed"
                )
                before = f"coalesce({before}, _seed)"
            flags.append(
                f"(_t > lag(_t) OVER w AND _campaign IS NOT NULL AND _campaign IS DISTINCT FROM {before})"
            )
        columns = "".join(f", {e}" for e in extra)
        flag = f"coalesce({' OR '.join(flags)}, true)"
        return columns, flag

    def visitor_key(self, kept: str) -> str:
        """The window partition key of a visitor, as SQL over ``s.anonymous_id``: its 64-bit hash when no two
        visitors of ``kept`` (a relation with ``anonymous_id``) share one (an integer key sorts far faster than a
        string; a collision is all but impossible, and checked), else the string itself."""
        hashed = self.VISITOR_HASH.format("anonymous_id")
        (collisions,) = one_row(
            self.con,
            f"SELECT count(*) FROM (SELECT {hashed} AS _h FROM (SELECT DISTINCT anonymous_id FROM {kept})"
            " GROUP BY _h HAVING count(*) > 1)",
        )
        return "s.anonymous_id" if collisions else self.VISITOR_HASH.format("s.anonymous_id")

    def _ping_slot(self, alias: str) -> str:
        """The heartbeat slot of a page ping (null for other events): device time when present, else event_ts."""
        ping_time = (
            f"coalesce({alias}.occurred_at, {alias}.event_ts)"
            if self.has("occurred_at")
            else f"{alias}.event_ts"
        )
        heartbeat_us = HEARTBEAT_S * _US_PER_S
        return f"CASE WHEN {alias}.event_type = 'page_ping' THEN epoch_us({ping_time}) // {heartbeat_us} END"

    def assign_sessions(self, visitors: str | None = None) -> None:
        """``<prefix>_assign`` for the kept rows (of the visitors in table ``visitors`` when given).

        Two window passes over the narrow rows (row, visitor, time, event_id, page-view flag, ping slot),
        partitioned by visitor (``visitor_key``) and ordered by (event_ts, event_id). The first numbers the
        visitor's events in that order (``_ord``), flags segment starts (lag) and counts the page views so far
        (``_pvc``: with the session it names the page view a ping belongs to), all over one sort; the second gives
        every event the latest segment start at or before it (a running ``max``: starts increase along a visitor's
        events) and that start's row (``_srid``, the session's integer key). A segment no longer than the cap is
        one session; longer ones are cut greedily in Python (few, sequential by nature).
        """
        rules = self.rules
        overcap = f"{self.prefix}_overcap"
        cuts = f"{self.prefix}_cuts"
        only = f"SEMI JOIN {visitors} v ON s.anonymous_id = v.anonymous_id" if visitors is not None else ""
        kept = f"(SELECT s.anonymous_id FROM {self.source} s {only})"
        key = self.visitor_key(kept)
        columns, flag = self._break_flag()
        held = f"WHERE NOT s.{identifier(self.held)}" if self.held is not None else ""
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {self.assign} AS
            SELECT _rid, anonymous_id, _t, _ord,
                   max(CASE WHEN _new THEN _t END) OVER latest AS _start,
                   last_value(CASE WHEN _new THEN _rid END IGNORE NULLS) OVER latest AS _srid,
                   _pvc, _slot
            FROM (
                SELECT _rid, _key, anonymous_id, _t, _slot, row_number() OVER w AS _ord, {flag} AS _new,
                       sum(_pv) OVER (w ROWS UNBOUNDED PRECEDING) AS _pvc
                FROM (
                    SELECT {self._rid("s")} AS _rid, {key} AS _key, s.anonymous_id, s.event_id,
                           epoch_us(s.event_ts) AS _t, (s.event_type = 'page_view')::INTEGER AS _pv,
                           {self._ping_slot("s")} AS _slot{columns}
                    FROM {self.source} s ANTI JOIN {self.drops} d ON {self._rid("s")} = d._rid
                    {only}
                    {held}
                )
                WINDOW w AS (PARTITION BY _key ORDER BY _t, event_id)
            )
            WINDOW latest AS (PARTITION BY _key ORDER BY _ord ROWS UNBOUNDED PRECEDING)
            """
        )
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {overcap} AS
            SELECT anonymous_id, _start FROM {self.assign} GROUP BY anonymous_id, _start
            HAVING max(_t) - _start > {rules.max_length_us}
            """
        )
        (n_overcap,) = one_row(self.con, f"SELECT count(*) FROM {overcap}")
        if n_overcap == 0:
            return
        seq = f"{self.prefix}_seq"
        self.con.execute(f"ALTER TABLE {self.assign} RENAME TO {seq}")
        self._cut_overcap_segments(seq, overcap, cuts)
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {self.assign} AS
            SELECT s._rid, s.anonymous_id, s._t, s._ord, s._start, s._srid, s._pvc, s._slot
            FROM {seq} s ANTI JOIN {overcap} o ON s.anonymous_id = o.anonymous_id AND s._start = o._start
            UNION ALL
            SELECT s._rid, s.anonymous_id, s._t, s._ord, c._start,
                   first_value(s._rid) OVER (PARTITION BY s.anonymous_id, c._start ORDER BY s._ord) AS _srid,
                   s._pvc, s._slot
            FROM (SELECT * FROM {seq} s
                  SEMI JOIN {overcap} o ON s.anonymous_id = o.anonymous_id AND s._start = o._start) s
            ASOF JOIN {cuts} c ON s.anonymous_id = c.anonymous_id AND s._t >= c._start
            """
        )
        self.con.execute(f"DROP TABLE {seq}")

    def _cut_overcap_segments(self, seq: str, overcap: str, cuts: str) -> None:
        segments = self.con.execute(
            f"""
            SELECT s.anonymous_id, list(s._t ORDER BY s._t) AS ts
            FROM {seq} s SEMI JOIN {overcap} o ON s.anonymous_id = o.anonymous_id AND s._start = o._start
            GROUP BY s.anonymous_id, s._start
            """
        ).fetchall()
        visitors: list[str] = []
        starts: list[int] = []
        for anonymous_id, timestamps in segments:
            for start in cut_chain(timestamps, self.rules.max_length_us):
                visitors.append(anonymous_id)
                starts.append(start)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {cuts} AS "
            "SELECT unnest($1::VARCHAR[]) AS anonymous_id, unnest($2::BIGINT[]) AS _start",
            [visitors, starts],
        )

    def build_events(self, exclude: Iterable[str] = ()) -> None:
        """``<prefix>_events``: a view of the sessionized rows with all source columns (minus ``exclude`` and
        the row identity), ``_t``, ``_ord``, ``_start`` and session_id. A view, not a table: the session aggregate reads only
        the columns it needs, and the events file streams straight from the join."""
        drop = {"session_id", *exclude} & self.columns
        if self.rid != "rowid":
            drop.add(self.rid)
        star = f"s.* EXCLUDE ({', '.join(identifier(c) for c in sorted(drop))})" if drop else "s.*"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP VIEW {self.events} AS
            SELECT {star}, a._t, a._ord, a._start, {session_id_sql("s.anonymous_id", "a._start")} AS session_id
            FROM {self.source} s JOIN (SELECT _rid, _t, _ord, _start FROM {self.assign}) a ON {self._rid("s")} = a._rid
            """
        )

    # -- 5. session fields ---------------------------------------------------------------------------------
    def build_sessions(self) -> None:
        """``<prefix>_sessions``: one row per session of ``<prefix>_events``, SESSION_COLUMNS in order.

        One aggregation grouped by the session's first row (``_srid``, an integer key: a smaller and faster hash
        table than (visitor, start)); "first" and "last" follow the rule's order (event_ts, event_id), and the first
        event's visitor and attributes are read by joining that row. Engaged time and orders are aggregated apart
        (:meth:`_engaged_time`, :meth:`_orders`)."""
        engaged = self._engaged_time()
        orders = self._orders()
        aggregated = self._session_aggregates()
        derived = self._session_fields()
        orders_join = f"LEFT JOIN {orders} o ON a._srid = o._srid" if orders else ""
        inner = ",\n".join(f"{expr} AS {identifier(name)}" for name, expr in aggregated.items())
        outer = []
        for name, typ in SESSION_COLUMNS:
            expr = derived.get(name, f"a.{identifier(name)}")
            outer.append(f"({expr})::{typ} AS {identifier(name)}")
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {self.sessions} AS
            SELECT {", ".join(outer)}
            FROM (
                SELECT x._srid, {inner}
                FROM {self.source} s JOIN (SELECT _rid, _t, _ord, _start, _srid FROM {self.assign}) x
                    ON {self._rid("s")} = x._rid
                GROUP BY x._srid
            ) a
            JOIN {self.source} f ON {self._rid("f")} = a._srid
            LEFT JOIN {engaged} e ON a._srid = e._srid
            {orders_join}
            """
        )

    def _engaged_time(self) -> str:
        """Temp table ``<prefix>_engaged`` (``_srid``, ``engaged_s``): pings grouped by (session, visitor's page
        views so far) = by the session's latest page view before them (pings before any page view of the session
        form a group of their own); read from the narrow assignment."""
        engaged = f"{self.prefix}_engaged"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {engaged} AS
            SELECT _srid, sum({HEARTBEAT_S} * (_slots - 1) + {MIN_VISIT_LENGTH_S})::DOUBLE AS engaged_s
            FROM (
                SELECT _srid, count(DISTINCT _slot) AS _slots
                FROM {self.assign} WHERE _slot IS NOT NULL GROUP BY _srid, _pvc
            )
            GROUP BY _srid
            """
        )
        return engaged

    def _orders(self) -> str | None:
        """Temp table ``<prefix>_orders`` (``_srid``, ``orders``: distinct transaction ids of purchases), apart from
        the main aggregation (a DISTINCT there makes DuckDB aggregate every row twice); None without
        ``transaction_id``."""
        if not self.has("transaction_id"):
            return None
        orders = f"{self.prefix}_orders"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {orders} AS
            SELECT x._srid, count(DISTINCT s.transaction_id) AS orders
            FROM {self.source} s JOIN {self.assign} x ON {self._rid("s")} = x._rid
            WHERE s.event_type = 'purchase' GROUP BY x._srid
            """
        )
        return orders

    def _session_aggregates(self) -> dict[str, str]:
        """The per-session aggregates, name → SQL over the session's rows (``_ord``: the rule's order)."""
        page = "coalesce(page_path, page_url)" if self.has("page_path") else "page_url"
        is_pv = "event_type = 'page_view'"
        money = "event_type IN ('purchase', 'refund')"
        order_key = "_ord"  # the visitor's events numbered in the rule's order (event_ts, event_id)

        def any_flag(column: str) -> str:
            return f"coalesce(bool_or({identifier(column)}), false)" if self.has(column) else "NULL::BOOLEAN"

        def did(event_type: str) -> str:
            return f"coalesce(bool_or(event_type = '{event_type}'), false)"

        revenue = (
            "coalesce(sum(value) FILTER (WHERE event_type = 'purchase'), 0)"
            " - coalesce(sum(value) FILTER (WHERE event_type = 'refund'), 0)"
            if self.has("value")
            else "NULL"
        )
        currency = (
            f"arg_min(currency, {order_key}) FILTER (WHERE {money} AND currency IS NOT NULL)"
            if self.has("currency")
            else "NULL"
        )
        return {
            "_start": "any_value(_start)",
            "user_id": f"arg_max(user_id, {order_key}) FILTER (WHERE user_id IS NOT NULL)",
            "_end": "max(_t)",
            "session_end": "max(event_ts)",
            "n_events": "count(*)",
            "n_page_views": f"count(*) FILTER (WHERE {is_pv})",
            "landing_page": f"coalesce(arg_min_null({page}, {order_key}) FILTER (WHERE {is_pv}), "
            f"arg_min_null({page}, {order_key}))",
            "exit_page": f"coalesce(arg_max_null({page}, {order_key}) FILTER (WHERE {is_pv}), "
            f"arg_max_null({page}, {order_key}))",
            "is_bot": any_flag("is_bot"),
            "is_internal": any_flag("is_internal"),
            "viewed_item": did("view_item"),
            "added_to_cart": did("add_to_cart"),
            "began_checkout": did("begin_checkout"),
            "purchased": did("purchase"),
            "revenue": revenue,
            "currency": currency,
        }

    def _session_fields(self) -> dict[str, str]:
        """The fields derived from the aggregates (``a``), the session's first row (``f``), its engaged time
        (``e``) and orders (``o``), name → SQL."""
        first_attrs = [
            name
            for name in (
                "app_id",
                "page_referrer",
                "channel",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "utm_term",
                "utm_content",
                "device_type",
                "browser",
                "os",
            )
            if self.has(name)
        ]

        def first_of(column: str) -> str:
            return f"f.{identifier(column)}" if column in first_attrs else f"NULL::{_TYPES[column]}"

        duration = f"((a._end - a._start) / {_US_PER_S})"
        engaged_rule = f"({duration} > {ENGAGED_MIN_DURATION_S} OR a.n_page_views >= {ENGAGED_MIN_PAGE_VIEWS} OR a.purchased)"
        return {
            "session_id": session_id_sql("f.anonymous_id", "a._start"),
            "anonymous_id": "f.anonymous_id",
            "app_id": first_of("app_id"),
            "session_start": "make_timestamp(a._start)::TIMESTAMPTZ",
            "duration_s": duration,
            "referrer": first_of("page_referrer"),
            "channel": first_of("channel"),
            **{
                utm: first_of(utm)
                for utm in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
            },
            "device_type": first_of("device_type"),
            "browser": first_of("browser"),
            "os": first_of("os"),
            "engaged_time_s": f"least(coalesce(e.engaged_s, 0), {duration})",
            "orders": "coalesce(o.orders, 0)" if self.has("transaction_id") else "NULL",
            "engaged": engaged_rule,
            "bounce": f"NOT {engaged_rule}",
        }

    def run(self, visitors: str | None = None, exclude: Iterable[str] = ()) -> None:
        """All stages: dedupe, sessions of the kept rows (of ``visitors`` when given), events and sessions."""
        self.mark_duplicates()
        self.assign_sessions(visitors)
        self.build_events(exclude)
        self.build_sessions()
