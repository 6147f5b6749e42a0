"""Warehouse load benchmark: the project's loader against the server's own COPY and ``executemany``, on PostgreSQL.

``python -m bench load -- [--events 250000 --events 1000000] [--buckets 4] [--dsn DSN] [--repeat N] [--skip-peer]``

Generated input (DuckDB, not timed): ``--events`` events of visitors with about 20 events each, grouped in sessions of
about 5 events, written per user bucket like the Sessionize step's output
(``runs/<run>/bucket=NNNN/{events,sessions,visitors}.parquet``). PostgreSQL: ``--dsn``, else
``CLICKSTREAM_TEST_PG_DSN``, else a throw-away pgserver instance in a temp dir. Each contender gets its own fresh,
migrated database in the same server (the same tables, indexes and daily partitions), and the same rows
(``WAREHOUSE_EVENT_COLUMNS`` of every event, every session with its ``session_date``), all timed through commit:

- floor: the server's own ``COPY events FROM '<file>'`` and ``COPY sessions FROM '<file>'`` in one transaction, of
  files prepared before the clock starts, into empty tables whose day partitions (with their indexes) exist: no
  client work at all. Measured for both of the server's fast formats, binary and text; the floor is the faster
  one, and the report names it. The files are written by the server itself (``COPY … TO '<file>'`` from the first
  load's tables) into a world-writable temp dir; when the server cannot write and read local files (a remote
  server, a role without ``pg_write_server_files``) the floor is ``COPY … FROM STDIN`` of the same files in 1 MiB
  chunks, and the report says ``stdin``;
- ours, first load: ``clickstream.warehouse.loader.load_run`` into empty tables (reads the Parquet, encodes binary
  COPY, replaces, records the run);
- ours, reload: the same run again into the now full tables of the first load, so every visitor is replaced
  (what an hourly run does to the visitors it touches);
- peer: psycopg 3 ``executemany`` of parameterized INSERTs of the same event and session rows, in one transaction
  (the rows are read from the Parquet into Python before the clock starts).

Ours runs in a child process, so its peak resident memory (``VmHWM``) is its own: printed per size to show that
the loader streams (flat in the number of rows). Rows = events + sessions; every contender's tables are counted
afterwards and must hold exactly those rows. Ratios: first load / floor (goal <= 1.2), reload / first load
(goal <= 1.5), executemany / first load and executemany / reload (goal >= 5). With ``--repeat N`` the contenders
take turns N times and each one's fastest run counts (the machine is shared). Server CPU is the backend's own
(``/proc``, local servers only); client CPU is the loader's process (DuckDB's encoding included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

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

    from clickstream.warehouse.engine import open_warehouse
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


def _parquet_list(paths) -> str:
    return "[" + ", ".join(repr(str(p)) for p in paths) + "]"


def count_rows(files) -> tuple[int, int]:
    """(events, sessions) in the run's files."""
    import duckdb

    con = duckdb.connect()
    try:
        return (
            con.execute(f"SELECT count(*) FROM read_parquet({_parquet_list(files.events)})").fetchone()[0],
            con.execute(f"SELECT count(*) FROM read_parquet({_parquet_list(files.sessions)})").fetchone()[0],
        )
    finally:
        con.close()


def event_days(files) -> list:
    """The UTC days of the run's events (the daily partitions every contender's tables get)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return [
            d
            for (d,) in con.execute(
                f"SELECT DISTINCT CAST(event_ts AS DATE) FROM read_parquet({_parquet_list(files.events)})"
            ).fetchall()
        ]
    finally:
        con.close()


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a server backend has used, when the server runs on this machine (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu() -> float:
    """CPU seconds of this process, all threads (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def table_counts(db: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(db) as conn:
        return (
            conn.execute("SELECT count(*) FROM events").fetchone()[0],
            conn.execute("SELECT count(*) FROM sessions").fetchone()[0],
        )


# -- ours: load_run in a child process --------------------------------------------------------------------------
CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from bench.load.run import ours_in_child
print(json.dumps(ours_in_child(sys.argv[2], json.loads(sys.argv[3]))))
"""

RUN = ("bench-run", "arn:aws:states:us-east-1:123456789012:execution:pipeline:bench")  # run id, execution id


def ours_in_child(db: str, paths: dict[str, list[str]]) -> dict:
    """One ``load_run`` through commit (this process is a child of the bench): times, CPU and peak memory."""
    from clickstream.warehouse.engine import open_warehouse
    from clickstream.warehouse.loader import RunFiles, RunRecord, load_run

    files = RunFiles(**{kind: [Path(p) for p in ps] for kind, ps in paths.items()})
    with open_warehouse(db).connect() as conn:
        ((pid,),) = conn.query("SELECT pg_backend_pid()")
        cpu, client = backend_cpu(pid), process_cpu()
        started = time.perf_counter()
        load_run(conn, files, RunRecord(RUN[0], RUN[1], None, None, 1))
        elapsed = time.perf_counter() - started
        after = backend_cpu(pid)
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return {
        "wall_s": elapsed,
        "server_cpu_s": (after - cpu) if cpu is not None and after is not None else None,
        "client_cpu_s": process_cpu() - client,
        "peak_rss_mb": peak_kb / 1024,
    }


def run_ours(db: str, files) -> dict:
    paths = {kind: [str(p) for p in getattr(files, kind)] for kind in ("events", "sessions", "visitors")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO_ROOT), db, json.dumps(paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the loader failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- floor: the server's own COPY of prepared files ---------------------------------------------------------------
FORMATS = ("binary", "text")


def prepare_floor(db: str, floor_dir: Path) -> str:
    """Write the loaded rows of ``db`` as COPY files (both formats) into ``floor_dir``; returns how the floor reads
    them: ``server`` (the server wrote them, so it can read them) or ``stdin`` (written here from COPY TO STDOUT)."""
    import psycopg

    from clickstream.core.schema import WAREHOUSE_EVENT_COLUMNS

    event_cols = ", ".join(name for name, _ in WAREHOUSE_EVENT_COLUMNS)
    selects = {"events": f"SELECT {event_cols} FROM events", "sessions": "SELECT * FROM sessions"}
    with psycopg.connect(db, autocommit=True) as conn:
        try:
            for table, select in selects.items():
                for fmt in FORMATS:
                    target = floor_dir / f"{table}.{fmt}"
                    conn.execute(f"COPY ({select}) TO '{target}' (FORMAT {fmt})")
            return "server"
        except psycopg.Error:
            pass
        for table, select in selects.items():
            for fmt in FORMATS:
                with (
                    open(floor_dir / f"{table}.{fmt}", "wb") as out,
                    conn.cursor() as cur,
                    cur.copy(f"COPY ({select}) TO STDOUT (FORMAT {fmt})") as copy,
                ):
                    for chunk in copy:
                        out.write(chunk)
        return "stdin"


def run_floor(dsn: str, floor_dir: Path, fmt: str, mode: str, days: list, expected: tuple[int, int]) -> dict:
    """The server's COPY of the prepared files into fresh tables (partitions created before the clock)."""
    import psycopg

    from clickstream.core.schema import WAREHOUSE_EVENT_COLUMNS
    from clickstream.warehouse.engine import open_warehouse

    event_cols = ", ".join(name for name, _ in WAREHOUSE_EVENT_COLUMNS)
    with fresh_database(dsn) as db:
        with open_warehouse(db).connect() as wh, wh.transaction():
            wh.prepare_event_days(days)
        with psycopg.connect(db) as conn:
            pid = conn.info.backend_pid
            cpu = backend_cpu(pid)
            started = time.perf_counter()
            for table, cols in (("events", f" ({event_cols})"), ("sessions", "")):
                path = floor_dir / f"{table}.{fmt}"
                if mode == "server":
                    conn.execute(f"COPY {table}{cols} FROM '{path}' (FORMAT {fmt})")
                else:
                    with (
                        conn.cursor() as cur,
                        cur.copy(f"COPY {table}{cols} FROM STDIN (FORMAT {fmt})") as copy,
                        open(path, "rb") as src,
                    ):
                        while chunk := src.read(1 << 20):
                            copy.write(chunk)
            conn.commit()
            elapsed = time.perf_counter() - started
            after = backend_cpu(pid)
        _check_counts(f"floor ({fmt})", db, expected)
    return {
        "wall_s": elapsed,
        "server_cpu_s": (after - cpu) if cpu is not None and after is not None else None,
    }


# -- peer: executemany ---------------------------------------------------------------------------------------------
def run_peer(dsn: str, files, days: list, expected: tuple[int, int]) -> dict:
    """executemany INSERTs of the same events and sessions in one transaction, through commit."""
    import duckdb
    import psycopg

    from clickstream.core.schema import SESSION_COLUMN_NAMES, WAREHOUSE_EVENT_COLUMNS
    from clickstream.warehouse.engine import open_warehouse

    event_names = [name for name, _ in WAREHOUSE_EVENT_COLUMNS]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    event_sql, session_sql = ", ".join(event_names), ", ".join(SESSION_COLUMN_NAMES)
    events = con.execute(f"SELECT {event_sql} FROM read_parquet({_parquet_list(files.events)})").fetchall()
    sessions = con.execute(
        f"SELECT {session_sql}, CAST(session_start AS DATE) FROM read_parquet({_parquet_list(files.sessions)})"
    ).fetchall()
    con.close()
    insert_events = f"INSERT INTO events ({event_sql}) VALUES ({', '.join('%s' for _ in event_names)})"
    insert_sessions = (
        f"INSERT INTO sessions ({session_sql}, session_date)"
        f" VALUES ({', '.join('%s' for _ in range(len(SESSION_COLUMN_NAMES) + 1))})"
    )
    with fresh_database(dsn) as db:
        with open_warehouse(db).connect() as wh, wh.transaction():
            wh.prepare_event_days(days)
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
            client = process_cpu() - client
        _check_counts("executemany", db, expected)
    return {
        "wall_s": elapsed,
        "server_cpu_s": (after - cpu) if cpu is not None and after is not None else None,
        "client_cpu_s": client,
    }


def _check_counts(name: str, db: str, expected: tuple[int, int]) -> None:
    got = table_counts(db)
    if got != expected:
        raise SystemExit(f"{name} left {got} (events, sessions) rows; the input has {expected}")


# -- the run -------------------------------------------------------------------------------------------------------
def _best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["wall_s"])


def bench(n: int, args, dsn: str, work: Path) -> dict:
    files = generate(n, args.buckets, work)
    expected = count_rows(files)
    rows = sum(expected)
    days = event_days(files)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"first": [], "reload": [], "peer": [], **{f: [] for f in FORMATS}}
    floor_dir = Path(tempfile.mkdtemp(prefix="bench-load-floor-"))
    floor_dir.chmod(0o777)  # the server (another OS user, e.g. pgserver's) writes and reads the files here
    try:
        mode = "server"
        for turn in range(args.repeat):
            with fresh_database(dsn) as db:
                runs["first"].append(run_ours(db, files))
                _check_counts("ours (first load)", db, expected)
                if turn == 0:
                    mode = prepare_floor(db, floor_dir)
                runs["reload"].append(run_ours(db, files))
                _check_counts("ours (reload)", db, expected)
            for fmt in FORMATS:
                runs[fmt].append(run_floor(dsn, floor_dir, fmt, mode, days, expected))
            if not args.skip_peer:
                runs["peer"].append(run_peer(dsn, files, days, expected))
    finally:
        shutil.rmtree(floor_dir, ignore_errors=True)
    best = {name: _best(r) for name, r in runs.items() if r}
    floor_format = min(FORMATS, key=lambda f: best[f]["wall_s"])
    floor, first, reload = best[floor_format], best["first"], best["reload"]
    peer = best.get("peer")

    def rate(r: dict) -> int:
        return round(rows / r["wall_s"])

    result = {
        "events": n,
        "rows": rows,
        "repeat": args.repeat,
        "floor_format": floor_format,
        "floor_reads": mode,
        "floor_s": round(floor["wall_s"], 3),
        **{f"floor_{f}_s": round(best[f]["wall_s"], 3) for f in FORMATS},
        "first_s": round(first["wall_s"], 3),
        "reload_s": round(reload["wall_s"], 3),
        "peer_s": round(peer["wall_s"], 3) if peer else None,
        "rows_per_s": {
            "floor": rate(floor),
            "first": rate(first),
            "reload": rate(reload),
            "peer": rate(peer) if peer else None,
        },
        "first_over_floor": round(first["wall_s"] / floor["wall_s"], 2),
        "reload_over_first": round(reload["wall_s"] / first["wall_s"], 2),
        "peer_over_first": round(peer["wall_s"] / first["wall_s"], 2) if peer else None,
        "peer_over_reload": round(peer["wall_s"] / reload["wall_s"], 2) if peer else None,
        "client_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["first"] + runs["reload"])),
        # CPU seconds of the PostgreSQL backend doing the work (local servers only): steadier than wall time on a
        # shared machine, and what a dedicated database server would spend.
        "server_cpu_s": {name: _round(r.get("server_cpu_s")) for name, r in best.items()},
        # CPU seconds of the client (the loader's process: DuckDB reading and encoding; the peer's Python).
        "client_cpu_s": {
            name: _round(r.get("client_cpu_s")) for name, r in best.items() if "client_cpu_s" in r
        },
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return result


def report(r: dict) -> str:
    rps = r["rows_per_s"]
    lines = [
        f"{r['rows']:,} rows ({r['events']:,} events + sessions), best of {r['repeat']}:",
        f"  floor    {r['floor_s']:7.2f} s {rps['floor']:>10,} rows/s  server COPY FROM file, {r['floor_format']}"
        f" (binary {r['floor_binary_s']} s, text {r['floor_text_s']} s; files read by: {r['floor_reads']})",
        f"  first    {r['first_s']:7.2f} s {rps['first']:>10,} rows/s  ours, empty tables",
        f"  reload   {r['reload_s']:7.2f} s {rps['reload']:>10,} rows/s  ours, every visitor replaced",
    ]
    if r["peer_s"] is not None:
        lines.append(f"  peer     {r['peer_s']:7.2f} s {rps['peer']:>10,} rows/s  executemany")
    ratios = (
        f"  first/floor {r['first_over_floor']}x (goal <= 1.2x), reload/first {r['reload_over_first']}x"
        " (goal <= 1.5x)"
    )
    if r["peer_s"] is not None:
        ratios += (
            f", executemany/first {r['peer_over_first']}x and executemany/reload {r['peer_over_reload']}x"
            " (goal >= 5x)"
        )
    lines.append(ratios)
    lines.append(
        f"  client peak RSS {r['client_peak_rss_mb']} MB; server CPU {r['server_cpu_s']}; client CPU"
        f" {r['client_cpu_s']}; load average {r['load_average_1m'][0]} -> {r['load_average_1m'][1]}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench load")
    parser.add_argument(
        "--events", type=int, action="append", help="events to load (repeatable; default 250000 and 1000000)"
    )
    parser.add_argument("--buckets", type=int, default=4, help="user buckets (files per kind; default 4)")
    parser.add_argument("--dsn", help="PostgreSQL server (default: CLICKSTREAM_TEST_PG_DSN, else pgserver)")
    parser.add_argument("--keep", type=Path, help="work directory to keep the generated files in")
    parser.add_argument("--repeat", type=int, default=1, help="turns per contender; the fastest counts")
    parser.add_argument("--skip-peer", action="store_true", help="leave out executemany (the slowest)")
    args = parser.parse_args(argv)
    sizes = args.events or [250_000, 1_000_000]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, postgres(args.dsn) as dsn:
        work = args.keep or Path(tmp)
        for n in sizes:
            result = bench(n, args, dsn, work)
            results.append(result)
            print(json.dumps(result))
            print(report(result), flush=True)
    if len(results) > 1:
        peaks = ", ".join(f"{r['events']:,} events {r['client_peak_rss_mb']} MB" for r in results)
        print(f"client peak RSS by size (flat when streamed): {peaks}")
    return 0


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
