"""The sessionization engine: DuckDB SQL over validated events, plus a small Python step for over-long chains.

The rule (DESIGN.md "Duplicates", "Sessionization rule", "Session fields"):

1. **Dedupe by event_id.** Copies of one event_id are ranked by (received_at, event_ts, source_object,
   source_line), nulls last (a column the input lacks is null); the first copy is kept. A later copy with the same
   payload_hash (or without one to compare) is a ``duplicate``; with a different payload_hash it is a
   ``duplicate_conflict``. Only event_ids that occur more than once are ranked, so the common case costs one hash
   aggregation.
2. **Activity chains.** Per anonymous_id, the kept events ordered by (event_ts, event_id); a chain starts at the
   visitor's first event and wherever ``event_ts - previous event_ts > timeout`` (strict). One window pass gives each
   event its chain's start (a running max of the chain-start flags).
3. **The 24 h cap.** A chain whose span (last - first event) is at most the cap is one session. Longer chains are
   cut greedily from the start: a new session begins at the first event with ``event_ts - session start > cap``
   (strict), and so on. This is sequential, so it is done in Python over the timestamps of just those chains
   (a bisection per session), and the cuts are joined back with an ASOF join.
4. **session_id** = ``md5("<anonymous_id>|<session start as integer microseconds since the Unix epoch>")`` as
   lowercase hex, so re-runs and incremental runs give the same ids.
5. **Session fields** (``core.schema.SESSION_COLUMNS``) by one aggregation per session; fields whose input columns
   are absent are null.

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

import duckdb

from clickstream.core.schema import SESSION_COLUMNS, VALIDATED_COLUMNS

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
    """The session timeout and the maximum session length (both strict: equal stays in the session)."""

    timeout_minutes: float = 30
    max_session_hours: float = 24

    def __post_init__(self) -> None:
        if self.timeout_minutes <= 0 or self.max_session_hours <= 0:
            raise ValueError("timeout and maximum session length must be positive")

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
    """An in-memory DuckDB connection in UTC (naive timestamps mean UTC) that does not keep input order."""
    options = options or DuckDBOptions()
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    if options.memory_limit:
        con.execute("SET memory_limit = ?", [options.memory_limit])
    if options.threads:
        con.execute(f"SET threads = {int(options.threads)}")
    if options.temp_directory:
        con.execute("SET temp_directory = ?", [options.temp_directory])
    return con


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL string literal (paths, names)."""
    return "'" + str(value).replace("'", "''") + "'"


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


class Sessionizer:
    """Runs the rule over a DuckDB table of validated events (``source``), creating temp tables ``<prefix>_*``.

    ``columns`` are the names the source has; a column the rule reads but the source lacks is treated as null.
    The source must be a table (its ``rowid`` identifies rows between the stages).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        columns: Collection[str],
        rules: SessionRules | None = None,
        prefix: str = "_cs",
    ) -> None:
        self.con = con
        self.source = source
        self.columns = set(columns)
        self.rules = rules or SessionRules()
        self.prefix = prefix
        self.drops = f"{prefix}_drops"  # (_rid, drop_reason) of the copies that are not kept
        self.assign = f"{prefix}_assign"  # (_rid, _ord, session_start_us, session_id) of sessionized rows
        self.events = f"{prefix}_events"  # source columns + _cs_ord + session_id of sessionized rows
        self.sessions = f"{prefix}_sessions"  # SESSION_COLUMNS

    # -- helpers -------------------------------------------------------------------------------------------
    def has(self, column: str) -> bool:
        return column in self.columns

    def col(self, column: str, alias: str = "") -> str:
        """The column, or a typed NULL when the source lacks it."""
        ref = f"{alias}.{quote(column)}" if alias else quote(column)
        return ref if self.has(column) else f"NULL::{_TYPES.get(column, 'VARCHAR')}"

    # -- 1. dedupe -----------------------------------------------------------------------------------------
    def mark_duplicates(self) -> None:
        """``<prefix>_drops``: every copy of an event_id that is not the first received, with its reason."""
        c = self.col
        order = ", ".join(
            f"{c(name)} ASC NULLS LAST"
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
                SELECT event_id FROM {self.source} WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1
            ),
            ranked AS (
                SELECT s.rowid AS _rid,
                       {c("payload_hash", "s")} AS _hash,
                       row_number() OVER w AS _copy,
                       first_value({c("payload_hash", "s")}) OVER w AS _first_hash
                FROM {self.source} s SEMI JOIN repeated r ON s.event_id = r.event_id
                WINDOW w AS (PARTITION BY s.event_id ORDER BY {order}, s.rowid)
            )
            SELECT _rid,
                   CASE WHEN _hash IS NOT NULL AND _first_hash IS NOT NULL AND _hash <> _first_hash
                        THEN '{DUPLICATE_CONFLICT}' ELSE '{DUPLICATE}' END AS drop_reason
            FROM ranked WHERE _copy > 1
            """
        )

    # -- 2-4. chains, cap, ids -----------------------------------------------------------------------------
    def assign_sessions(self, visitors: str | None = None) -> None:
        """``<prefix>_assign`` for the kept rows (of the visitors in table ``visitors`` when given)."""
        rules = self.rules
        seq = f"{self.prefix}_seq"
        overcap = f"{self.prefix}_overcap"
        cuts = f"{self.prefix}_cuts"
        only = f"SEMI JOIN {visitors} v ON s.anonymous_id = v.anonymous_id" if visitors is not None else ""
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {seq} AS
            SELECT _rid, anonymous_id, _t, _ord,
                   max(CASE WHEN _new THEN _t END) OVER (
                       PARTITION BY anonymous_id ORDER BY _ord ROWS UNBOUNDED PRECEDING) AS _chain
            FROM (
                SELECT _rid, anonymous_id, _t,
                       row_number() OVER w AS _ord,
                       coalesce(_t - lag(_t) OVER w > {rules.timeout_us}, true) AS _new
                FROM (
                    SELECT s.rowid AS _rid, s.anonymous_id, s.event_id, epoch_us(s.event_ts) AS _t
                    FROM {self.source} s ANTI JOIN {self.drops} d ON s.rowid = d._rid
                    {only}
                )
                WINDOW w AS (PARTITION BY anonymous_id ORDER BY _t, event_id)
            )
            """
        )
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {overcap} AS
            SELECT anonymous_id, _chain FROM {seq} GROUP BY anonymous_id, _chain
            HAVING max(_t) - _chain > {rules.max_length_us}
            """
        )
        session_id = "md5(anonymous_id || '|' || _start::VARCHAR)"
        n_overcap = self.con.execute(f"SELECT count(*) FROM {overcap}").fetchone()[0]
        if n_overcap == 0:
            self.con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {self.assign} AS
                SELECT _rid, _ord, _start, {session_id} AS session_id
                FROM (SELECT _rid, anonymous_id, _ord, _chain AS _start FROM {seq})
                """
            )
            return
        self._cut_overcap_chains(seq, overcap, cuts)
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {self.assign} AS
            SELECT _rid, _ord, _start, {session_id} AS session_id
            FROM (
                SELECT s._rid, s.anonymous_id, s._ord, s._chain AS _start
                FROM {seq} s ANTI JOIN {overcap} o ON s.anonymous_id = o.anonymous_id AND s._chain = o._chain
                UNION ALL
                SELECT s._rid, s.anonymous_id, s._ord, c._start
                FROM (SELECT * FROM {seq} s
                      SEMI JOIN {overcap} o ON s.anonymous_id = o.anonymous_id AND s._chain = o._chain) s
                ASOF JOIN {cuts} c ON s.anonymous_id = c.anonymous_id AND s._t >= c._start
            )
            """
        )

    def _cut_overcap_chains(self, seq: str, overcap: str, cuts: str) -> None:
        chains = self.con.execute(
            f"""
            SELECT s.anonymous_id, list(s._t ORDER BY s._t) AS ts
            FROM {seq} s SEMI JOIN {overcap} o ON s.anonymous_id = o.anonymous_id AND s._chain = o._chain
            GROUP BY s.anonymous_id, s._chain
            """
        ).fetchall()
        visitors: list[str] = []
        starts: list[int] = []
        for anonymous_id, timestamps in chains:
            for start in cut_chain(timestamps, self.rules.max_length_us):
                visitors.append(anonymous_id)
                starts.append(start)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {cuts} AS "
            "SELECT unnest($1::VARCHAR[]) AS anonymous_id, unnest($2::BIGINT[]) AS _start",
            [visitors, starts],
        )

    def build_events(self, exclude: Iterable[str] = ()) -> None:
        """``<prefix>_events``: a view of the sessionized rows with all source columns (minus ``exclude``),
        _cs_ord and session_id. A view, not a table: the session aggregate reads only the columns it needs, and
        the events file streams straight from the join."""
        drop = {"session_id", *exclude} & self.columns
        star = f"s.* EXCLUDE ({', '.join(quote(c) for c in sorted(drop))})" if drop else "s.*"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP VIEW {self.events} AS
            SELECT {star}, a._ord AS _cs_ord, a.session_id
            FROM {self.source} s JOIN {self.assign} a ON s.rowid = a._rid
            """
        )

    # -- 5. session fields ---------------------------------------------------------------------------------
    def build_sessions(self) -> None:
        """``<prefix>_sessions``: one row per session of ``<prefix>_events``, SESSION_COLUMNS in order."""
        ev = self.events
        engaged = f"{self.prefix}_engaged"
        ping_time = "coalesce(occurred_at, event_ts)" if self.has("occurred_at") else "event_ts"
        heartbeat_us = HEARTBEAT_S * _US_PER_S
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {engaged} AS
            WITH marked AS (
                SELECT session_id, event_type, {ping_time} AS _ping_time,
                       sum(CASE WHEN event_type = 'page_view' THEN 1 ELSE 0 END) OVER (
                           PARTITION BY session_id ORDER BY _cs_ord ROWS UNBOUNDED PRECEDING) AS _view
                FROM {ev} WHERE event_type IN ('page_view', 'page_ping')
            ),
            per_view AS (
                SELECT session_id, _view, count(DISTINCT epoch_us(_ping_time) // {heartbeat_us}) AS _slots
                FROM marked WHERE event_type = 'page_ping' GROUP BY session_id, _view
            )
            SELECT session_id, sum({HEARTBEAT_S} * (_slots - 1) + {MIN_VISIT_LENGTH_S})::DOUBLE AS engaged_s
            FROM per_view GROUP BY session_id
            """
        )
        page = "coalesce(page_path, page_url)" if self.has("page_path") else "page_url"
        is_pv = "event_type = 'page_view'"
        money = "event_type IN ('purchase', 'refund')"

        def first(expr: str) -> str:
            return f"arg_min_null({expr}, _cs_ord)"

        def first_of(column: str) -> str:
            return first(quote(column)) if self.has(column) else f"NULL::{_TYPES[column]}"

        def any_flag(column: str) -> str:
            return f"coalesce(bool_or({quote(column)}), false)" if self.has(column) else "NULL::BOOLEAN"

        def did(event_type: str) -> str:
            return f"coalesce(bool_or(event_type = '{event_type}'), false)"

        orders = (
            "count(DISTINCT transaction_id) FILTER (WHERE event_type = 'purchase')"
            if self.has("transaction_id")
            else "NULL"
        )
        revenue = (
            "coalesce(sum(value) FILTER (WHERE event_type = 'purchase'), 0)"
            " - coalesce(sum(value) FILTER (WHERE event_type = 'refund'), 0)"
            if self.has("value")
            else "NULL"
        )
        currency = (
            f"arg_min(currency, _cs_ord) FILTER (WHERE {money} AND currency IS NOT NULL)"
            if self.has("currency")
            else "NULL"
        )
        aggregated = {
            "anonymous_id": "any_value(anonymous_id)",
            "user_id": "arg_max(user_id, _cs_ord) FILTER (WHERE user_id IS NOT NULL)",
            "app_id": first_of("app_id"),
            "session_start": "min(event_ts)",
            "session_end": "max(event_ts)",
            "duration_s": f"(epoch_us(max(event_ts)) - epoch_us(min(event_ts))) / {_US_PER_S}",
            "n_events": "count(*)",
            "n_page_views": f"count(*) FILTER (WHERE {is_pv})",
            "landing_page": f"coalesce({first(page)} FILTER (WHERE {is_pv}), {first(page)})",
            "exit_page": f"coalesce(arg_max_null({page}, _cs_ord) FILTER (WHERE {is_pv}), "
            f"arg_max_null({page}, _cs_ord))",
            "referrer": first_of("page_referrer"),
            "channel": first_of("channel"),
            **{
                utm: first_of(utm)
                for utm in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
            },
            "device_type": first_of("device_type"),
            "browser": first_of("browser"),
            "os": first_of("os"),
            "is_bot": any_flag("is_bot"),
            "is_internal": any_flag("is_internal"),
            "viewed_item": did("view_item"),
            "added_to_cart": did("add_to_cart"),
            "began_checkout": did("begin_checkout"),
            "purchased": did("purchase"),
            "orders": orders,
            "revenue": revenue,
            "currency": currency,
        }
        derived = {
            "engaged_time_s": "least(coalesce(e.engaged_s, 0), a.duration_s)",
            "engaged": f"(a.duration_s > {ENGAGED_MIN_DURATION_S} OR a.n_page_views >= {ENGAGED_MIN_PAGE_VIEWS}"
            " OR a.purchased)",
            "bounce": f"NOT (a.duration_s > {ENGAGED_MIN_DURATION_S} OR a.n_page_views >= {ENGAGED_MIN_PAGE_VIEWS}"
            " OR a.purchased)",
        }
        inner = ",\n".join(f"{expr} AS {quote(name)}" for name, expr in aggregated.items())
        outer = []
        for name, typ in SESSION_COLUMNS:
            if name == "session_id":
                outer.append("a.session_id")
            elif name in derived:
                outer.append(f"({derived[name]})::{typ} AS {quote(name)}")
            else:
                outer.append(f"a.{quote(name)}::{typ} AS {quote(name)}")
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {self.sessions} AS
            SELECT {", ".join(outer)}
            FROM (SELECT session_id, {inner} FROM {ev} GROUP BY session_id) a
            LEFT JOIN {engaged} e ON a.session_id = e.session_id
            """
        )

    def run(self, visitors: str | None = None, exclude: Iterable[str] = ()) -> None:
        """All stages: dedupe, sessions of the kept rows (of ``visitors`` when given), events and sessions."""
        self.mark_duplicates()
        self.assign_sessions(visitors)
        self.build_events(exclude)
        self.build_sessions()
