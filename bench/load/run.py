"""Warehouse load benchmark: the project's loader against ``executemany`` INSERTs, on PostgreSQL.

``python -m bench load -- [--events 1000000] [--buckets 4] [--dsn DSN] [--skip-peer]``

Generated input (DuckDB, not timed): ``--events`` events of visitors with about 20 events each, grouped in sessions of
about 5 events, written per user bucket like the Sessionize step's output
(``runs/<run>/bucket=NNNN/{events,sessions,visitors}.parquet``). PostgreSQL: ``--dsn``, else
``CLICKSTREAM_TEST_PG_DSN``, else a throw-away pgserver instance in a temp dir. Each contender gets its own fresh,
migrated database in the same server, and the same rows:

- ours (first load): ``clickstream.warehouse.loader.load_run`` into empty tables, through commit (reads the
  Parquet, stages, replaces, records the run);
- ours (reload): the same run again into the now full tables, so every row is deleted and written again (what a
  recomputation of every visitor costs);
- peer: psycopg 3 ``executemany`` of parameterized INSERTs of the same event and session rows into the same tables,
  in one transaction, through commit (the rows are read from the Parquet into Python before the clock starts).

Rows = events + sessions. It prints rows/s for each and the ratio ours (first load) / peer; goal >= 200k rows/s and
>= 10x the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GENERATE_EVENTS = """
COPY (
    WITH base AS (
        SELECT i, i // 20 AS v, i // 5 AS s, i % 5 AS k
        FROM range({n}) r(i)
    )
    SELECT
        'shop-web' AS app_id,
        'ev-' || lpad(CAST(i AS VARCHAR), 10, '0') AS event_id,
        'visitor-' || v AS anonymous_id,
        CASE WHEN v % 4 = 0 THEN 'user-' || v END AS user_id,
        'cs-' || s AS client_session_id,
        (['page_view', 'page_ping', 'view_item', 'add_to_cart', 'purchase'])[k + 1] AS event_type,
        TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_seconds((hash(v) % (7 * 86400))::BIGINT + (s % 4) * 7200 + k * 40)
            + to_microseconds((hash(i) % 1000000)::BIGINT) AS event_ts,
        event_ts + INTERVAL 2 SECOND AS received_at,
        event_ts AS occurred_at,
        'https://shop.example/p/' || (hash(i * 17) % 500) || '?ref=bench' AS page_url,
        '/p/' || (hash(i * 17) % 500) AS page_path,
        CASE WHEN k = 0 THEN 'https://www.google.com/' END AS page_referrer,
        'Product ' || (hash(i * 17) % 500) || ' | Shop' AS page_title,
        (['google', 'newsletter', NULL, NULL])[1 + (hash(v * 3) % 4)::BIGINT] AS utm_source,
        (['cpc', 'email', NULL, NULL])[1 + (hash(v * 3) % 4)::BIGINT] AS utm_medium,
        (['spring', 'weekly', NULL, NULL])[1 + (hash(v * 3) % 4)::BIGINT] AS utm_campaign,
        CAST(NULL AS VARCHAR) AS utm_term,
        CAST(NULL AS VARCHAR) AS utm_content,
        (['Paid Search', 'Email', 'Direct', 'Organic Search'])[1 + (hash(v * 3) % 4)::BIGINT] AS channel,
        CASE WHEN k >= 2 THEN 'p' || (hash(i * 17) % 500) END AS product_id,
        CASE WHEN k >= 2 THEN 'Laptop ' || (hash(i * 17) % 500) END AS product_name,
        CASE WHEN k >= 2 THEN 'laptops' END AS category,
        CASE WHEN k >= 2 THEN (hash(i * 19) % 200000) / 100.0 END AS price,
        CASE WHEN k >= 2 THEN 1 END AS quantity,
        CASE WHEN k = 4 THEN (hash(i * 19) % 200000) / 100.0 END AS value,
        CASE WHEN k = 4 THEN 'USD' END AS currency,
        CASE WHEN k = 4 THEN 'order-' || s END AS transaction_id,
        CASE WHEN k >= 2 THEN '[{{"product_id":"p' || (hash(i * 17) % 500) || '","name":"Laptop","price":'
            || ((hash(i * 19) % 200000) / 100.0) || ',"quantity":1}}]' END AS items,
        '{{"screen":"1920x1080","locale":"en-US"}}' AS properties,
        'Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0' AS user_agent,
        (['desktop', 'mobile', 'tablet'])[1 + (hash(v * 5) % 3)::BIGINT] AS device_type,
        'Firefox' AS browser,
        'Linux' AS os,
        hash(v) % 50 = 0 AS is_bot,
        FALSE AS is_internal,
        '203.0.113.0/24' AS ip_prefix,
        FALSE AS ts_clamped,
        md5('payload' || i) AS payload_hash,
        'raw/dt=2026-03-01/hr=00/obj-' || (i // 5000) AS source_object,
        CAST(i % 5000 AS INTEGER) AS source_line,
        md5('visitor-' || v || '|' || s) AS session_id
    FROM base
    WHERE ((hash('visitor-' || v)) % {buckets}) = {bucket}
) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
"""

GENERATE_SESSIONS = """
COPY (
    SELECT
        session_id, anonymous_id, max(user_id) AS user_id, 'shop-web' AS app_id,
        min(event_ts) AS session_start, max(event_ts) AS session_end,
        epoch(max(event_ts) - min(event_ts)) AS duration_s, 30.0 AS engaged_time_s,
        CAST(count(*) AS INTEGER) AS n_events,
        CAST(count(*) FILTER (WHERE event_type = 'page_view') AS INTEGER) AS n_page_views,
        min(page_path) AS landing_page, max(page_path) AS exit_page, min(page_referrer) AS referrer,
        min(channel) AS channel, min(utm_source) AS utm_source, min(utm_medium) AS utm_medium,
        min(utm_campaign) AS utm_campaign, CAST(NULL AS VARCHAR) AS utm_term, CAST(NULL AS VARCHAR) AS utm_content,
        min(device_type) AS device_type, 'Firefox' AS browser, 'Linux' AS os,
        bool_or(is_bot) AS is_bot, FALSE AS is_internal, TRUE AS engaged, FALSE AS bounce,
        bool_or(event_type = 'view_item') AS viewed_item, bool_or(event_type = 'add_to_cart') AS added_to_cart,
        FALSE AS began_checkout, bool_or(event_type = 'purchase') AS purchased,
        CAST(count(DISTINCT transaction_id) AS INTEGER) AS orders, coalesce(sum(value), 0) AS revenue,
        'USD' AS currency
    FROM read_parquet('{events}')
    GROUP BY session_id, anonymous_id
) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
"""

GENERATE_VISITORS = (
    "COPY (SELECT DISTINCT anonymous_id FROM read_parquet('{events}')) TO '{path}' (FORMAT parquet)"
)


def generate(n: int, buckets: int, work: Path):
    """The Sessionize step's files for one run: ``bucket=NNNN/{events,sessions,visitors}.parquet``."""
    import duckdb

    from clickstream.warehouse.loader import RunFiles

    files = RunFiles()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    try:
        for bucket in range(buckets):
            folder = work / f"n={n}" / f"bucket={bucket:04d}"
            paths = {kind: folder / f"{kind}.parquet" for kind in ("events", "sessions", "visitors")}
            if not all(p.exists() for p in paths.values()):
                folder.mkdir(parents=True, exist_ok=True)
                con.execute(GENERATE_EVENTS.format(n=n, buckets=buckets, bucket=bucket, path=paths["events"]))
                con.execute(GENERATE_SESSIONS.format(events=paths["events"], path=paths["sessions"]))
                con.execute(GENERATE_VISITORS.format(events=paths["events"], path=paths["visitors"]))
            files.events.append(paths["events"])
            files.sessions.append(paths["sessions"])
            files.visitors.append(paths["visitors"])
    finally:
        con.close()
    return files


@contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    dsn = dsn or os.environ.get("CLICKSTREAM_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="bench-load-pg-") as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """A new, migrated database on the server; dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from clickstream.adapters.warehouse import open_warehouse
    from clickstream.warehouse.migrate import migrate

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(dsn)
    params["dbname"] = name
    db = make_conninfo(**params)
    try:
        with open_warehouse(db).connect() as conn:
            migrate(conn)
        yield db
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_rows(files) -> int:
    import duckdb

    con = duckdb.connect()
    try:
        return sum(
            con.execute(f"SELECT count(*) FROM read_parquet('{p}')").fetchone()[0]
            for p in (*files.events, *files.sessions)
        )
    finally:
        con.close()


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a server backend has used, when the server runs on this machine (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CLIENT_CPU: dict[str, float] = {}


def process_cpu() -> float:
    """CPU seconds of this process, all threads (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_ours(db: str, files, *, reload: bool) -> tuple[float, float | None]:
    """Seconds for ``load_run`` through commit (after one untimed load when ``reload``), and the backend's CPU."""
    from clickstream.adapters.warehouse import open_warehouse
    from clickstream.warehouse.loader import RunRecord, load_run

    run = RunRecord(
        "bench-run", "arn:aws:states:us-east-1:123456789012:execution:pipeline:bench", None, None, 1
    )
    warehouse = open_warehouse(db)
    if reload:
        with warehouse.connect() as conn:
            load_run(conn, files, run)
    with warehouse.connect() as conn:
        ((pid,),) = conn.query("SELECT pg_backend_pid()")
        cpu, client = backend_cpu(pid), process_cpu()
        started = time.perf_counter()
        load_run(conn, files, run)
        elapsed = time.perf_counter() - started
        after = backend_cpu(pid)
        CLIENT_CPU["ours_reload" if reload else "ours_first"] = process_cpu() - client
        return elapsed, (after - cpu) if cpu is not None and after is not None else None


def run_peer(db: str, files) -> tuple[float, float | None]:
    """Seconds for executemany INSERTs of the same events and sessions in one transaction, through commit."""
    import duckdb
    import psycopg

    from clickstream.core.schema import EVENT_COLUMN_NAMES, SESSION_COLUMN_NAMES

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    event_sql = ", ".join(EVENT_COLUMN_NAMES)
    session_sql = ", ".join(SESSION_COLUMN_NAMES)
    events = con.execute(
        f"SELECT {event_sql} FROM read_parquet([{', '.join(repr(str(p)) for p in files.events)}])"
    ).fetchall()
    sessions = con.execute(
        f"SELECT {session_sql}, CAST(session_start AS DATE) FROM "
        f"read_parquet([{', '.join(repr(str(p)) for p in files.sessions)}])"
    ).fetchall()
    days = [
        d
        for (d,) in con.execute(
            f"SELECT DISTINCT CAST(event_ts AS DATE) FROM read_parquet([{', '.join(repr(str(p)) for p in files.events)}])"
        ).fetchall()
    ]
    con.close()
    # The same tables as the loader writes, daily partitions included (created before the clock starts).
    from clickstream.adapters.warehouse import open_warehouse

    with open_warehouse(db).connect() as wh, wh.transaction():
        wh.prepare_event_days(days)
    insert_events = f"INSERT INTO events ({event_sql}) VALUES ({', '.join('%s' for _ in EVENT_COLUMN_NAMES)})"
    insert_sessions = (
        f"INSERT INTO sessions ({session_sql}, session_date)"
        f" VALUES ({', '.join('%s' for _ in range(len(SESSION_COLUMN_NAMES) + 1))})"
    )
    with psycopg.connect(db) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        pid = conn.info.backend_pid
        cpu, client = backend_cpu(pid), process_cpu()
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(insert_events, events)
            cur.executemany(insert_sessions, sessions)
        conn.commit()
        elapsed = time.perf_counter() - started
        after = backend_cpu(pid)
        CLIENT_CPU["peer"] = process_cpu() - client
        return elapsed, (after - cpu) if cpu is not None and after is not None else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench load")
    parser.add_argument("--events", type=int, default=1_000_000, help="events to load (default 1000000)")
    parser.add_argument("--buckets", type=int, default=4, help="user buckets (files per kind; default 4)")
    parser.add_argument("--dsn", help="PostgreSQL server (default: CLICKSTREAM_TEST_PG_DSN, else pgserver)")
    parser.add_argument("--keep", type=Path, help="work directory to keep the generated files in")
    parser.add_argument("--skip-peer", action="store_true", help="measure the loader only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, postgres(args.dsn) as dsn:
        work = args.keep or Path(tmp)
        files = generate(args.events, args.buckets, work)
        rows = count_rows(files)
        with fresh_database(dsn) as db:
            first, first_cpu = run_ours(db, files, reload=False)
        with fresh_database(dsn) as db:
            reload, reload_cpu = run_ours(db, files, reload=True)
        peer = peer_cpu = None
        if not args.skip_peer:
            with fresh_database(dsn) as db:
                peer, peer_cpu = run_peer(db, files)
    result = {
        "events": args.events,
        "rows": rows,
        "ours_first_s": round(first, 2),
        "ours_reload_s": round(reload, 2),
        "ours_first_rows_per_s": round(rows / first),
        "ours_reload_rows_per_s": round(rows / reload),
        "peer_s": round(peer, 2) if peer else None,
        "peer_rows_per_s": round(rows / peer) if peer else None,
        "ours_over_peer": round(peer / first, 1) if peer else None,
        # CPU seconds of the PostgreSQL backend doing the work (local servers only): steadier than wall time on a
        # shared machine, and what a dedicated database server would spend.
        "server_cpu_s": {
            "ours_first": _round(first_cpu),
            "ours_reload": _round(reload_cpu),
            "peer": _round(peer_cpu),
        },
        # CPU seconds of this process (the loader's DuckDB and COPY threads, or the peer's Python): on a machine
        # shared with the server, wall time follows the sum of both.
        "client_cpu_s": {name: _round(value) for name, value in CLIENT_CPU.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    line = (
        f"{rows:,} rows ({args.events:,} events + sessions): ours {result['ours_first_rows_per_s']:,} rows/s "
        f"first load ({first:.2f} s), {result['ours_reload_rows_per_s']:,} rows/s reload ({reload:.2f} s)"
    )
    if peer:
        line += (
            f"; peer executemany {result['peer_rows_per_s']:,} rows/s ({peer:.2f} s); "
            f"ours/peer {result['ours_over_peer']}x (goal >= 200,000 rows/s and >= 10x)"
        )
    if first_cpu:
        line += f"; server CPU ours {first_cpu:.1f} s (client {CLIENT_CPU['ours_first']:.1f} s)"
        if peer_cpu:
            line += f", peer {peer_cpu:.1f} s (client {CLIENT_CPU['peer']:.1f} s)"
    line += f"; load average {result['load_average_1m']}"
    print(line)
    return 0


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
