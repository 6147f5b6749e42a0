"""The validation engine: one raw object judged set-wise in DuckDB, with Python for the rare and the distinct.

1. The decoded object's records are read by DuckDB's JSON reader in one pass (``sql.records_sql``): every envelope
   field as JSON text, the events as a list of JSON texts. An object that is not one JSON object per line (a line
   that is not JSON, records glued together, invalid UTF-8, a duplicated envelope field) fails that read and is
   judged whole by the Python judge, the specification (``judge.judge_object``).
2. Records whose envelope is plain are unnested into events; each event is checked against the plain subset of
   the schema and, when plain, enriched and hashed in SQL (``sql.events_sql``). Everything else goes to the Python
   judge: records with an odd envelope or a token DuckDB reads differently (``NaN``, a trailing comma) whole, and a
   plain record's non-plain events one by one. It quarantines with the exact reason and detail, and returns its
   valid events as rows.
3. Derivations that need Python libraries (user agent, IP prefix, URL parsing, e-mail scrubbing, context UTM,
   channel) run once per *distinct* value and are joined back.
4. In-object dedupe over both kinds of rows is one window in SQL (first receipt wins; same payload hash =
   duplicate, else ``duplicate_conflict``); the winners are fetched as rows or copied straight to Parquet.

Per event, Python does nothing on the plain path, which is what makes the step fast. Each object gets its own
cursor of the process's one DuckDB database (``writer.duckdb_cursor``), so there is no start-up cost per object,
and its temp tables vanish with the cursor.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from clickstream.core.schema import VALIDATED_COLUMNS
from clickstream.validate import judge as judge_module
from clickstream.validate.channel import default_channel
from clickstream.validate.judge import (
    Judgement,
    JudgeOptions,
    _Judge,
    conflict_detail,
    judge_payload,
)
from clickstream.validate.reader import RawLine, decode_object, read_records
from clickstream.validate.sql import (
    SUSPECT_TOKENS,
    TRAILING_COMMA_PATTERN,
    events_sql,
    records_sql,
)
from clickstream.validate.useragent import classify
from clickstream.validate.web import (
    context_utm,
    ip_in_networks,
    ip_prefix,
    parse_page_url,
    parse_referrer,
    scrub_emails,
)
from clickstream.validate.writer import copy_parquet, duckdb_cursor, load_rows

_TRAILING_COMMA = re.compile(TRAILING_COMMA_PATTERN)
# one compiled literal per token: a regex search of a large object is about twice as fast as ``bytes in``
_SUSPECT = tuple(re.compile(re.escape(token)) for token in SUSPECT_TOKENS)
# Content DuckDB's reader refuses or would read as a control character or a lone surrogate in a record's envelope:
# raw control bytes (never valid inside a JSON string; the newline between records aside) and \u escapes of a
# control character or a surrogate. A line holding one is judged by Python whole, so one such record never sends a
# large object down the slow path.
_CONTROL_BYTES = bytes(b for b in range(0x20) if b != 0x0A)
_HOSTILE_ESCAPE = re.compile(rb"\\u(?:00[0189]|007|[dD][89a-fA-F])")


def _hostile(data: bytes) -> bool:
    # bytes.translate finds a control byte about ten times faster than a regex character class
    return len(data.translate(None, _CONTROL_BYTES)) != len(data) or _HOSTILE_ESCAPE.search(data) is not None


# Below this decoded size the Python judge is as fast or faster: the engine's fixed cost (planning its statements,
# about 150 ms of CPU per object here) against its ~40 µs per event and the judge's ~75 µs breaks even near
# 4,000 events, about 2 MiB of raw records (docs/decisions.md). Real Firehose objects are far larger.
ENGINE_MIN_BYTES = 2 << 20
PLACEHOLDER = b"{}"  # what DuckDB reads in place of a line Python judges whole: never a plain record


class NotPlainObject(Exception):
    """DuckDB's JSON reader refused the object (it is not one JSON object per line): Python judges it whole."""


def split_lines(payload: bytes) -> list[bytes]:
    """The object's records as the reader numbers them: non-blank lines, stripped (``source_line`` = index + 1)."""
    return [line for line in (chunk.strip() for chunk in payload.split(b"\n")) if line]


def suspect_lines(payload: bytes, lines: list[bytes]) -> set[int]:
    """1-based numbers of the lines holding a token DuckDB's reader accepts and Python's strict one does not, or
    hostile content (``_hostile``)."""
    if (
        not any(token.search(payload) for token in _SUSPECT)
        and not _TRAILING_COMMA.search(payload)
        and not _hostile(payload)
    ):
        return set()
    return {
        i
        for i, line in enumerate(lines, start=1)
        if any(token in line for token in SUSPECT_TOKENS) or _TRAILING_COMMA.search(line) or _hostile(line)
    }


class Engine:
    """Judges one object; ``out_sql`` is the query of the validated rows (VALIDATED_COLUMNS, in record order)."""

    judgement: Judgement  # set by judge_engine once the object is deduplicated

    def __init__(self, source_key: str, options: JudgeOptions, workdir: Path) -> None:
        self.source_key = source_key
        self.options = options
        self.workdir = workdir
        self.con = duckdb_cursor()
        self.py = _Judge(source_key, options)
        self.py_lines: dict[int, RawLine] = {}
        self.lines: list[bytes] = []

    # -- 1. records ----------------------------------------------------------------------------------------
    def load(self, payload: bytes) -> None:
        """Read the records into ``rec``; raises NotPlainObject when DuckDB's reader refuses the object."""
        import duckdb

        self.lines = split_lines(payload)
        whole = suspect_lines(payload, self.lines)
        path = self.workdir / "records.jsonl"
        with open(path, "wb") as fh:
            if whole:
                fh.write(
                    b"\n".join(PLACEHOLDER if i in whole else line for i, line in enumerate(self.lines, 1))
                )
            else:
                fh.write(b"\n".join(self.lines))
        try:
            self.con.execute(records_sql(str(path)))
        except duckdb.InvalidInputException as exc:
            raise NotPlainObject(str(exc)) from exc
        finally:
            path.unlink(missing_ok=True)

    # -- 2. plain records and events, and the Python judge for the rest -----------------------------------
    def judge(self) -> None:
        con = self.con
        if self.options.tombstones:
            con.execute("CREATE TEMP TABLE tomb AS SELECT unnest($1) AS h", [sorted(self.options.tombstones)])
            con.execute(
                "DELETE FROM rec WHERE sha256(anonymous_id) IN (SELECT h FROM tomb) "
                "OR (user_id IS NOT NULL AND sha256(user_id) IN (SELECT h FROM tomb))"
            )
        # Lines the Python judge takes whole, in order, and how many records each holds (glued records).
        plain = {row[0] for row in con.execute("SELECT idx FROM rec").fetchall()}
        shift = 0
        shifts: list[tuple[int, int]] = []
        for idx in range(1, len(self.lines) + 1):
            if idx in plain:
                continue
            count = 0
            for line in read_records(self.lines[idx - 1], start=idx - 1 + shift):
                self.py.add_line(line)
                self.py_lines[line.ordinal] = line
                count += 1
            if count != 1:
                shift += count - 1
                shifts.append((idx, shift))
        if shifts:
            con.execute(
                "CREATE TEMP TABLE shifts AS SELECT unnest($1) AS idx, unnest($2) AS shift",
                [[i for i, _ in shifts], [s for _, s in shifts]],
            )
            con.execute(
                "UPDATE rec SET ordinal = rec.idx + s.shift FROM (SELECT r.idx, max(shifts.shift) AS shift "
                "FROM rec r JOIN shifts ON shifts.idx < r.idx GROUP BY r.idx) s WHERE rec.idx = s.idx"
            )
        # the judge's size limit read now, not at import, so the two paths always share it
        lookback_us = int(self.options.lookback.total_seconds() * 1_000_000)
        con.execute(events_sql(lookback_us, judge_module.MAX_EVENT_BYTES))
        partial = con.execute(
            "SELECT rec.idx, rec.ordinal, list(ev.position ORDER BY ev.position) FROM ev "
            "JOIN rec USING (idx) WHERE NOT ev.plain GROUP BY rec.idx, rec.ordinal ORDER BY rec.ordinal"
        ).fetchall()
        for idx, ordinal, positions in partial:
            text = self.lines[idx - 1]
            line = RawLine(ordinal, text, loose=json.loads(text))
            self.py_lines[ordinal] = line
            self.py.add_positions(line, positions)

    # -- 3. per distinct value -----------------------------------------------------------------------------
    def _table(self, name: str, columns: dict[str, list[Any]], types: dict[str, str]) -> None:
        select = ", ".join(f"unnest(${i + 1})::{types[c]} AS {c}" for i, c in enumerate(columns))
        if next(iter(columns.values())):
            self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT {select}", list(columns.values()))
        else:
            cols = ", ".join(f"{c} {types[c]}" for c in columns)
            self.con.execute(f"CREATE TEMP TABLE {name} ({cols})")

    def enrich(self) -> None:
        """The derivations, once per distinct value: user agents, addresses, pages and referrers, the context's
        campaign; then the plain rows and their channels."""
        self._user_agents()
        self._addresses()
        self._pages()
        self._context_utm()
        self.con.execute(PLAIN_ROWS, {"source": self.source_key})
        self._channels()

    def _user_agents(self) -> None:
        con = self.con
        uas = [r[0] for r in con.execute("SELECT DISTINCT user_agent FROM rec").fetchall()]
        infos = [classify(ua) for ua in uas]
        self._table(
            "ua",
            {
                "user_agent": uas,
                "device_type": [i.device_type for i in infos],
                "browser": [i.browser for i in infos],
                "os": [i.os for i in infos],
                "is_bot": [i.is_bot for i in infos],
            },
            {
                "user_agent": "VARCHAR",
                "device_type": "VARCHAR",
                "browser": "VARCHAR",
                "os": "VARCHAR",
                "is_bot": "BOOLEAN",
            },
        )

    def _addresses(self) -> None:
        con = self.con
        nets = self.options.internal_networks
        ips = [r[0] for r in con.execute("SELECT DISTINCT ip FROM rec WHERE ip IS NOT NULL").fetchall()]
        self._table(
            "ips",
            {
                "ip": ips,
                "prefix": [ip_prefix(i) for i in ips],
                "internal": [ip_in_networks(i, nets) for i in ips],
            },
            {"ip": "VARCHAR", "prefix": "VARCHAR", "internal": "BOOLEAN"},
        )

    def _pages(self) -> None:
        con = self.con
        sensitive = self.options.sensitive
        urls = [r[0] for r in con.execute("SELECT DISTINCT url FROM ev WHERE plain AND url <> ''").fetchall()]
        pages = [parse_page_url(u, sensitive) for u in urls]
        utm = [p.utm or (None,) * 5 for p in pages]
        self._table(
            "urls",
            {
                "url": urls,
                "clean": [p.url for p in pages],
                "path": [p.path for p in pages],
                "host": [p.host for p in pages],
                "has_utm": [p.utm is not None for p in pages],
                **{f"u{i}": [u[i] for u in utm] for i in range(5)},
            },
            {
                "url": "VARCHAR",
                "clean": "VARCHAR",
                "path": "VARCHAR",
                "host": "VARCHAR",
                "has_utm": "BOOLEAN",
                **{f"u{i}": "VARCHAR" for i in range(5)},
            },
        )
        refs = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT referrer FROM ev WHERE plain AND referrer IS NOT NULL"
            ).fetchall()
        ]
        referrers = [parse_referrer(r, sensitive) for r in refs]
        self._table(
            "refs",
            {"referrer": refs, "clean": [r.url for r in referrers], "host": [r.host for r in referrers]},
            {"referrer": "VARCHAR", "clean": "VARCHAR", "host": "VARCHAR"},
        )
        titles = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT title FROM ev WHERE plain AND (contains(title, '@') OR contains(title, '%40'))"
            ).fetchall()
        ]
        self._table(
            "titles",
            {"title": titles, "clean": [scrub_emails(t) for t in titles]},
            {"title": "VARCHAR", "clean": "VARCHAR"},
        )

    def _context_utm(self) -> None:
        con = self.con
        keys = [
            r[0] for r in con.execute("SELECT DISTINCT utm_key FROM rec WHERE utm_key IS NOT NULL").fetchall()
        ]
        ctx_utm = [context_utm(json.loads(k)) for k in keys]
        self._table(
            "cutm",
            {"utm_key": keys, **{f"c{i}": [u[i] for u in ctx_utm] for i in range(5)}},
            {"utm_key": "VARCHAR", **{f"c{i}": "VARCHAR" for i in range(5)}},
        )

    def _channels(self) -> None:
        con = self.con
        combos = con.execute(
            "SELECT DISTINCT utm_source, utm_medium, utm_campaign, ref_host, page_host FROM plain_rows"
        ).fetchall()
        self._table(
            "channels",
            {
                **{f"k{i}": [c[i] for c in combos] for i in range(5)},
                "channel": [default_channel(*c) for c in combos],
            },
            {**{f"k{i}": "VARCHAR" for i in range(5)}, "channel": "VARCHAR"},
        )

    # -- 4. dedupe -----------------------------------------------------------------------------------------
    def dedupe(self) -> Judgement:
        con = self.con
        names = [n for n, _ in VALIDATED_COLUMNS]
        self._python_rows()
        con.execute(
            # a view: the window below reads its few narrow columns, the output all of them, once
            "CREATE TEMP VIEW cand AS "
            f"SELECT {', '.join(names)}, position FROM plain_rows p LEFT JOIN channels c "
            "ON p.utm_source IS NOT DISTINCT FROM c.k0 AND p.utm_medium IS NOT DISTINCT FROM c.k1 "
            "AND p.utm_campaign IS NOT DISTINCT FROM c.k2 AND p.ref_host IS NOT DISTINCT FROM c.k3 "
            "AND p.page_host IS NOT DISTINCT FROM c.k4 "
            f"UNION ALL SELECT {', '.join(names)}, position FROM py_rows"
        )
        con.execute(
            # narrow: the window sorts ids, times and places only; the rows stay in cand
            "CREATE TEMP TABLE ranked AS SELECT source_line, position, event_id, payload_hash, "
            "row_number() OVER w AS rn, first_value(payload_hash) OVER w AS win_hash, "
            "first_value(source_line) OVER w AS win_line, first_value(position) OVER w AS win_pos FROM cand "
            "WINDOW w AS (PARTITION BY event_id ORDER BY received_at, event_ts, source_line, position)"
        )
        py_out = self.py.out
        duplicates = con.execute(
            "SELECT count(*) FROM ranked WHERE rn > 1 AND payload_hash = win_hash"
        ).fetchone()
        conflicts = con.execute(
            "SELECT r.event_id, r.source_line, r.position, r.win_line, r.win_pos, rec.idx FROM ranked r "
            "LEFT JOIN rec ON rec.ordinal = r.source_line "
            "WHERE r.rn > 1 AND r.payload_hash <> r.win_hash ORDER BY r.source_line, r.position"
        ).fetchall()
        for event_id, line_no, position, win_line, win_pos, idx in conflicts:
            line = self.py_lines.get(line_no)
            if line is None:
                text = self.lines[idx - 1]
                line = RawLine(line_no, text, loose=json.loads(text))
            self.py.quarantine_conflict(line, position, conflict_detail(event_id, win_line, win_pos))
        counts = con.execute(
            "SELECT (SELECT count(*) FROM ev WHERE plain), (SELECT count(*) FROM rec), "
            "(SELECT max(received_at) FROM rec), (SELECT count(*) FROM ranked WHERE rn = 1)"
        ).fetchone()
        assert duplicates is not None and counts is not None
        max_received = max((t for t in (counts[2], py_out.max_received_at) if t is not None), default=None)
        out = Judgement(
            self.source_key,
            records=py_out.records + counts[1],
            # every plain event, plus what the Python judge judged: an event neither took breaks the balance
            events_in=py_out.events_in + counts[0],
            duplicates=duplicates[0],
            quarantine=sorted(
                py_out.quarantine,
                key=lambda q: (q["source_line"], -1 if q["position"] is None else q["position"]),
            ),
            max_received_at=max_received,
            validated_count=counts[3],
        )
        return out

    def _python_rows(self) -> None:
        rows = [(*row, position) for row, position in self.py.candidate_rows()]
        load_rows(self.con, "py_rows", rows, (*VALIDATED_COLUMNS, ("position", "INTEGER")))

    @property
    def out_sql(self) -> str:
        names = ", ".join(n for n, _ in VALIDATED_COLUMNS)
        # the later copies of an event are few: leave them out (anti join on a small table), keep record order
        return (
            f"SELECT {names} FROM cand ANTI JOIN (SELECT source_line, position FROM ranked WHERE rn > 1) d "
            "USING (source_line, position) ORDER BY source_line, position"
        )

    def close(self) -> None:
        self.con.close()


# The plain events as rows (channel joined later): VALIDATED_COLUMNS plus the channel's inputs. What comes from
# the record (user agent, address, context UTM) is joined once per record, the rest once per event.
PLAIN_ROWS = """
CREATE TEMP TABLE plain_rows AS
WITH rec AS (
    SELECT rec.idx, rec.app_id, rec.anonymous_id, rec.user_id, rec.user_agent, rec.ordinal,
        coalesce(ua.device_type, 'other') AS device_type, coalesce(ua.browser, 'Other') AS browser,
        coalesce(ua.os, 'Other') AS os, coalesce(ua.is_bot, false) AS is_bot,
        rec.internal OR coalesce(ips.internal, false) AS is_internal, ips.prefix AS ip_prefix,
        cutm.c0, cutm.c1, cutm.c2, cutm.c3, cutm.c4
    FROM rec
    LEFT JOIN ua ON ua.user_agent IS NOT DISTINCT FROM rec.user_agent
    LEFT JOIN ips ON ips.ip = rec.ip
    LEFT JOIN cutm ON cutm.utm_key = rec.utm_key
)
SELECT
    rec.app_id, ev.event_id, rec.anonymous_id, clean_text(rec.user_id) AS user_id,
    coalesce(ev.event_session, ev.ctx_session) AS client_session_id,
    ev.event_type, ev.event_ts, ev.received_at, ev.occurred_at,
    urls.clean AS page_url, urls.path AS page_path,
    refs.clean AS page_referrer, coalesce(titles.clean, ev.title) AS page_title,
    CASE WHEN urls.has_utm THEN urls.u0 ELSE rec.c0 END AS utm_source,
    CASE WHEN urls.has_utm THEN urls.u1 ELSE rec.c1 END AS utm_medium,
    CASE WHEN urls.has_utm THEN urls.u2 ELSE rec.c2 END AS utm_campaign,
    CASE WHEN urls.has_utm THEN urls.u3 ELSE rec.c3 END AS utm_term,
    CASE WHEN urls.has_utm THEN urls.u4 ELSE rec.c4 END AS utm_content,
    ev.product_id, ev.product_name, ev.category, ev.price, ev.quantity,
    ev.value, ev.currency, ev.transaction_id,
    ev.items_text AS items,
    CASE WHEN ev.props_text <> '{}' THEN ev.props_text END AS properties,
    rec.user_agent, rec.device_type, rec.browser, rec.os, rec.is_bot, rec.is_internal, rec.ip_prefix,
    ev.ts_clamped, sha256(ev.canonical) AS payload_hash,
    $source AS source_object, rec.ordinal::INTEGER AS source_line, ev.position::INTEGER AS position,
    refs.host AS ref_host, urls.host AS page_host
FROM ev
JOIN rec USING (idx)
LEFT JOIN urls ON urls.url = ev.url
LEFT JOIN refs ON refs.referrer = ev.referrer
LEFT JOIN titles ON titles.title = ev.title
WHERE ev.plain
"""


def run_engine(payload: bytes, *, source_key: str, options: JudgeOptions, workdir: Path) -> Engine:
    """Judge a decoded object; the returned engine holds the validated rows (``engine.out_sql``) and its
    Judgement. Raises NotPlainObject (nothing kept) when DuckDB's reader refuses the object."""
    engine = Engine(source_key, options, workdir)
    try:
        engine.load(payload)
        engine.judge()
        engine.enrich()
        engine.judgement = engine.dedupe()
        engine.judgement.check_balance()
    except BaseException:
        engine.close()
        raise
    return engine


def judge_with_engine(data: bytes, *, source_key: str, options: JudgeOptions) -> Judgement:
    """The judgement with its validated rows as tuples (VALIDATED_COLUMNS order, timestamps as UTC ISO)."""
    payload = decode_object(data)
    with tempfile.TemporaryDirectory(prefix="clickstream-judge-") as tmp:
        try:
            engine = run_engine(payload, source_key=source_key, options=options, workdir=Path(tmp))
        except NotPlainObject:
            return judge_payload(payload, source_key=source_key, options=options)
        try:
            rows = engine.con.execute(engine.out_sql).fetchall()
        finally:
            engine.close()
    judgement = engine.judgement
    ts = [i for i, (_, t) in enumerate(VALIDATED_COLUMNS) if t == "TIMESTAMPTZ"]
    judgement.rows = [
        tuple(v.isoformat() if i in ts and v is not None else v for i, v in enumerate(row)) for row in rows
    ]
    judgement.validated_count = None
    judgement.engine = "duckdb"
    return judgement


def judge_to_parquet(
    data: bytes,
    *,
    source_key: str,
    options: JudgeOptions,
    path: Path,
    min_bytes: int | None = None,
) -> Judgement:
    """The judgement, its validated rows written as zstd Parquet to ``path`` (nothing written when none).

    Objects of at least ``min_bytes`` (decoded; default ``ENGINE_MIN_BYTES``) are judged set-wise; smaller ones,
    and objects DuckDB's reader refuses, by the event-by-event judge. The outcome is the same either way, both
    write their Parquet with ``writer.copy_parquet``, and ``judgement.engine`` tells which path ran
    (``"duckdb"`` or ``"python"``)."""
    from clickstream.validate.writer import write_parquet

    payload = decode_object(data)
    min_bytes = ENGINE_MIN_BYTES if min_bytes is None else min_bytes
    try:
        if len(payload) < min_bytes:
            raise NotPlainObject(f"{len(payload)} bytes: below the engine's {min_bytes}")
        engine = run_engine(payload, source_key=source_key, options=options, workdir=path.parent)
    except NotPlainObject:
        judgement = judge_payload(payload, source_key=source_key, options=options)
        if judgement.rows:
            write_parquet(judgement.rows, path)
        judgement.validated_count = len(judgement.rows)
        judgement.rows = []
        judgement.engine = "python"
        return judgement
    try:
        if engine.judgement.validated:
            copy_parquet(engine.con, engine.out_sql, path)
    finally:
        engine.close()
    engine.judgement.engine = "duckdb"
    return engine.judgement
