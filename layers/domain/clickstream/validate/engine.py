"""The validation engine: one raw object judged set-wise in DuckDB, with Python for the rare and the distinct.

1. The decoded object's lines go into DuckDB. Records whose envelope is plain (``sql.RECORDS``) are unnested into
   events; each event is checked against the plain subset of the schema and, when plain, enriched and hashed in
   SQL (``sql.events_sql``).
2. Everything else goes to the Python judge (``judge._Judge``), the specification: lines that are not one plain
   record (not JSON, glued records, odd envelopes, people under erasure) whole, and a plain record's non-plain
   events one by one. It quarantines with the exact reason and detail, and returns its valid events as rows.
3. Derivations that need Python libraries (user agent, IP prefix, URL parsing, e-mail scrubbing, context UTM,
   channel) run once per *distinct* value and are joined back.
4. In-object dedupe over both kinds of rows is one window in SQL (first receipt wins; same payload hash =
   duplicate, else ``duplicate_conflict``); the winners are fetched as rows or copied straight to Parquet.

Per event, Python does nothing on the plain path, which is what makes the step fast.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from clickstream.core.schema import VALIDATED_COLUMNS
from clickstream.validate.channel import default_channel
from clickstream.validate.judge import Judgement, JudgeOptions, RawLine, _Judge, conflict_detail
from clickstream.validate.reader import decode_object, read_records
from clickstream.validate.sql import CONTEXT, MACROS, RECORDS, events_sql
from clickstream.validate.useragent import classify
from clickstream.validate.web import (
    context_utm,
    ip_in_networks,
    ip_prefix,
    parse_page_url,
    scrub_emails,
    url_host,
)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _connect():
    import duckdb  # only the validate step pays for it

    con = duckdb.connect(config={"threads": max(1, len(os.sched_getaffinity(0)))})
    con.execute("SET TimeZone = 'UTC'; SET preserve_insertion_order = true;")
    con.execute(MACROS)
    return con


class Engine:
    """Judges one object; ``out_sql`` is the query of the validated rows (VALIDATED_COLUMNS, in record order)."""

    def __init__(self, source_key: str, options: JudgeOptions, workdir: Path) -> None:
        self.source_key = source_key
        self.options = options
        self.workdir = workdir
        self.con = _connect()
        self.py = _Judge(source_key, options)
        self.py_lines: dict[int, RawLine] = {}

    # -- 1. lines ------------------------------------------------------------------------------------------
    def load_lines(self, payload: bytes) -> None:
        lines = [chunk.strip() for chunk in payload.split(b"\n")]
        texts: list[str | None] = []
        self.undecodable: dict[int, bytes] = {}
        for line in lines:
            if not line:
                continue
            try:
                texts.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                self.undecodable[len(texts) + 1] = line
                texts.append(None)
        path = self.workdir / "lines.json"
        # One JSON array of strings: DuckDB reads it with its own parser, far faster than binding a Python list.
        path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        self.con.execute(
            "CREATE TEMP TABLE lines AS SELECT text, idx FROM ("
            "SELECT unnest(l) AS text, generate_subscripts(l, 1) AS idx FROM ("
            f"SELECT json_extract_string(content, '$[*]') AS l FROM read_text('{_quote(path)}')))"
        )

    # -- 2. plain records and events, and the Python judge for the rest -----------------------------------
    def judge(self) -> None:
        con = self.con
        con.execute(RECORDS)
        if self.options.tombstones:
            con.execute("CREATE TEMP TABLE tomb AS SELECT unnest($1) AS h", [sorted(self.options.tombstones)])
            con.execute(
                "DELETE FROM rec WHERE sha256(anonymous_id) IN (SELECT h FROM tomb) "
                "OR (user_id IS NOT NULL AND sha256(user_id) IN (SELECT h FROM tomb))"
            )
        # Lines the Python judge takes whole, in order, and how many records each holds (glued records).
        others = con.execute(
            "SELECT idx, text FROM lines WHERE idx NOT IN (SELECT idx FROM rec) ORDER BY idx"
        ).fetchall()
        shift = 0
        shifts: list[tuple[int, int]] = []
        for idx, text in others:
            raw = self.undecodable.get(idx) if text is None else text.encode("utf-8")
            count = 0
            for line in read_records(raw or b"", start=idx - 1 + shift):
                self.py.add_line(line)
                self.py_lines[line.ordinal] = line
                count += 1
            if count != 1:
                shift += count - 1
                shifts.append((idx, shift))
        con.execute("ALTER TABLE rec ADD COLUMN ordinal BIGINT")
        con.execute("UPDATE rec SET ordinal = idx")
        if shifts:
            con.execute(
                "CREATE TEMP TABLE shifts AS SELECT unnest($1) AS idx, unnest($2) AS shift",
                [[i for i, _ in shifts], [s for _, s in shifts]],
            )
            con.execute(
                "UPDATE rec SET ordinal = rec.idx + s.shift FROM (SELECT r.idx, max(shifts.shift) AS shift "
                "FROM rec r JOIN shifts ON shifts.idx < r.idx GROUP BY r.idx) s WHERE rec.idx = s.idx"
            )
        con.execute(CONTEXT)
        con.execute(events_sql(int(self.options.lookback.total_seconds() * 1_000_000)))
        partial = con.execute(
            "SELECT rec.ordinal, lines.text, list(ev.position ORDER BY ev.position) FROM ev "
            "JOIN rec USING (idx) JOIN lines USING (idx) WHERE NOT ev.plain "
            "GROUP BY rec.ordinal, lines.text ORDER BY rec.ordinal"
        ).fetchall()
        for ordinal, text, positions in partial:
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
        urls = [r[0] for r in con.execute("SELECT DISTINCT url FROM ev WHERE plain AND url <> ''").fetchall()]
        pages = [parse_page_url(u) for u in urls]
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
        self._table(
            "refs",
            {"referrer": refs, "clean": [scrub_emails(r) for r in refs], "host": [url_host(r) for r in refs]},
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
        keys = [
            r[0]
            for r in con.execute("SELECT DISTINCT utm_key FROM rctx WHERE utm_key IS NOT NULL").fetchall()
        ]
        ctx_utm = [context_utm(json.loads(k)) for k in keys]
        self._table(
            "cutm",
            {"utm_key": keys, **{f"c{i}": [u[i] for u in ctx_utm] for i in range(5)}},
            {"utm_key": "VARCHAR", **{f"c{i}": "VARCHAR" for i in range(5)}},
        )
        con.execute(PLAIN_ROWS, {"source": self.source_key})
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
            "CREATE TEMP TABLE cand AS "
            f"SELECT {', '.join(names)}, position FROM plain_rows p LEFT JOIN channels c "
            "ON p.utm_source IS NOT DISTINCT FROM c.k0 AND p.utm_medium IS NOT DISTINCT FROM c.k1 "
            "AND p.utm_campaign IS NOT DISTINCT FROM c.k2 AND p.ref_host IS NOT DISTINCT FROM c.k3 "
            "AND p.page_host IS NOT DISTINCT FROM c.k4 "
            f"UNION ALL SELECT {', '.join(names)}, position FROM py_rows"
        )
        con.execute(
            "CREATE TEMP TABLE ranked AS SELECT *, row_number() OVER w AS rn, "
            "first_value(payload_hash) OVER w AS win_hash, first_value(source_line) OVER w AS win_line, "
            "first_value(position) OVER w AS win_pos FROM cand "
            "WINDOW w AS (PARTITION BY event_id ORDER BY received_at, event_ts, source_line, position)"
        )
        py_out = self.py.out
        duplicates = con.execute(
            "SELECT count(*) FROM ranked WHERE rn > 1 AND payload_hash = win_hash"
        ).fetchone()
        conflicts = con.execute(
            "SELECT r.event_id, r.source_line, r.position, r.win_line, r.win_pos, l.text FROM ranked r "
            "LEFT JOIN rec ON rec.ordinal = r.source_line LEFT JOIN lines l ON l.idx = rec.idx "
            "WHERE r.rn > 1 AND r.payload_hash <> r.win_hash ORDER BY r.source_line, r.position"
        ).fetchall()
        for event_id, line_no, position, win_line, win_pos, text in conflicts:
            line = self.py_lines.get(line_no) or RawLine(line_no, text, loose=json.loads(text))
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
        cols = ", ".join(f"{n} {t}" for n, t in VALIDATED_COLUMNS)
        self.con.execute(f"CREATE TEMP TABLE py_rows ({cols}, position INTEGER)")
        rows = self.py.candidate_rows()
        if rows:
            columns = [list(col) for col in zip(*(r for r, _ in rows), strict=True)]
            columns.append([p for _, p in rows])
            types = [t for _, t in VALIDATED_COLUMNS] + ["INTEGER"]
            select = ", ".join(f"unnest(${i + 1})::{t}" for i, t in enumerate(types))
            self.con.execute(f"INSERT INTO py_rows SELECT {select}", columns)

    @property
    def out_sql(self) -> str:
        names = ", ".join(n for n, _ in VALIDATED_COLUMNS)
        return f"SELECT {names} FROM ranked WHERE rn = 1 ORDER BY source_line, position"

    def close(self) -> None:
        self.con.close()


# The plain events as rows (channel joined later): VALIDATED_COLUMNS plus the channel's inputs.
PLAIN_ROWS = """
CREATE TEMP TABLE plain_rows AS
SELECT
    rec.app_id, ev.event_id, rec.anonymous_id, rec.user_id,
    coalesce(ev.event_session, ev.ctx_session) AS client_session_id,
    ev.event_type, ev.event_ts, ev.received_at, ev.occurred_at,
    urls.clean AS page_url, urls.path AS page_path,
    refs.clean AS page_referrer, coalesce(titles.clean, ev.title) AS page_title,
    CASE WHEN urls.has_utm THEN urls.u0 ELSE cutm.c0 END AS utm_source,
    CASE WHEN urls.has_utm THEN urls.u1 ELSE cutm.c1 END AS utm_medium,
    CASE WHEN urls.has_utm THEN urls.u2 ELSE cutm.c2 END AS utm_campaign,
    CASE WHEN urls.has_utm THEN urls.u3 ELSE cutm.c3 END AS utm_term,
    CASE WHEN urls.has_utm THEN urls.u4 ELSE cutm.c4 END AS utm_content,
    ev.first_item.t.product_id->>'$' AS product_id,
    nonempty(ev.first_item.t.name) AS product_name,
    nonempty(ev.first_item.t.category) AS category,
    CASE WHEN NOT is_null(ev.first_item.t.price) THEN try_cast(ev.first_item.t.price AS DOUBLE) END AS price,
    CASE WHEN ev.first_item IS NULL THEN NULL
         WHEN list_contains(ev.first_item.k, 'quantity') THEN try_cast(ev.first_item.t.quantity AS INTEGER)
         ELSE 1 END AS quantity,
    ev.value, ev.currency, ev.transaction_id,
    ev.items_text AS items,
    CASE WHEN ev.props_text <> '{}' THEN ev.props_text END AS properties,
    rec.user_agent,
    coalesce(ua.device_type, 'other') AS device_type, coalesce(ua.browser, 'Other') AS browser,
    coalesce(ua.os, 'Other') AS os, coalesce(ua.is_bot, false) AS is_bot,
    rec.internal OR coalesce(ips.internal, false) AS is_internal,
    ips.prefix AS ip_prefix,
    ev.ts_clamped, sha256(ev.canonical) AS payload_hash,
    $source AS source_object, rec.ordinal::INTEGER AS source_line, ev.position::INTEGER AS position,
    refs.host AS ref_host, urls.host AS page_host
FROM ev
JOIN rec USING (idx)
LEFT JOIN ua ON ua.user_agent IS NOT DISTINCT FROM rec.user_agent
LEFT JOIN ips ON ips.ip = rec.ip
LEFT JOIN urls ON urls.url = ev.url
LEFT JOIN refs ON refs.referrer = ev.referrer
LEFT JOIN titles ON titles.title = ev.title
LEFT JOIN cutm ON cutm.utm_key = ev.utm_key
WHERE ev.plain
"""


def run_engine(data: bytes, *, source_key: str, options: JudgeOptions, workdir: Path) -> Engine:
    """Judge ``data``; the returned engine holds the validated rows (``engine.out_sql``) and its Judgement."""
    engine = Engine(source_key, options, workdir)
    engine.load_lines(decode_object(data))
    engine.judge()
    engine.enrich()
    engine.judgement = engine.dedupe()
    engine.judgement.check_balance()
    return engine


def judge_with_engine(data: bytes, *, source_key: str, options: JudgeOptions) -> Judgement:
    """The judgement with its validated rows as tuples (VALIDATED_COLUMNS order, timestamps as UTC ISO)."""
    with tempfile.TemporaryDirectory(prefix="clickstream-judge-") as tmp:
        engine = run_engine(data, source_key=source_key, options=options, workdir=Path(tmp))
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
    return judgement


def judge_to_parquet(data: bytes, *, source_key: str, options: JudgeOptions, path: Path) -> Judgement:
    """The judgement, its validated rows written as zstd Parquet to ``path`` (nothing written when none)."""
    engine = run_engine(data, source_key=source_key, options=options, workdir=path.parent)
    try:
        if engine.judgement.validated:
            target = str(path).replace("'", "''")
            engine.con.execute(f"COPY ({engine.out_sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        engine.close()
    return engine.judgement
