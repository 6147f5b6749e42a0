"""Sessionizer benchmark: the project's sessionizer against DuckDB SQL and Polars peers, a copy floor and a bound.

``python -m bench sessionize -- --events 1000000 [--events 10000000] [--keep DIR]``

Generated input (DuckDB, not timed): about 1 event in 20 starts a visitor; gaps cluster around the 30-min timeout;
1% of events are delivered twice; 2% arrive out of order (the file is in arrival order). Each contender runs in its
own process, so its wall time and peak memory are its own (peak = the child's ``VmHWM``, the high-water mark of
its own address space; ``ru_maxrss`` of a forked child would include the parent's, e.g. the generator's):

- ours:  ``clickstream.sessionize.files.sessionize_files`` (dedupe with conflicts, 30-min gap, 24 h cap, all
         session fields), writing events.parquet and sessions.parquet;
- peer:  plain DuckDB SQL: ``row_number() over (partition by event_id order by received_at, event_ts) = 1``, a
         ``lag`` gap flag over ``partition by anonymous_id order by event_ts, event_id``, a running ``sum`` for
         session numbers, writing the same two files (no cap, four session columns);
- polars: the same rule as the peer in Polars (lazy, default threads): the first delivery of each event_id by
         ``received_at, event_ts``, a gap flag from ``event_ts.diff().over(anonymous_id)`` after a sort by
         ``anonymous_id, event_ts, event_id``, a running ``cum_sum`` per visitor for session numbers, the same two
         files (no cap, the peer has none). Polars has no md5, so ``session_id`` is its own 64-bit hash of
         ``anonymous_id|session_no`` (same grouping, other ids). Needs the optional ``bench`` extra; left out, with
         the reason printed, when Polars is not installed;
- floor: DuckDB copying the input Parquet to Parquet;
- bound: what any exact sessionizer built on DuckDB must at least do, and nothing more: the event_id repeat count
         (one hash aggregation), one sort of the narrow keys (visitor hash, event_ts, event_id), and the copy with a
         session_id column (md5 per event). No session logic: its ratio to the floor bounds what "within 1.5x of
         the floor" can mean here.

All five write Parquet with the same settings as the sessionizer's outputs (``files.PARQUET``: zstd level 1,
DuckDB's default row groups) and run with DuckDB's default threads and no progress bar. With ``--repeat N`` the
contenders take turns N times and each one's fastest run is reported (the machine is shared: the minimum is the
least disturbed measurement); ``--memory-limit 3GB`` gives the DuckDB contenders the same memory limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENERATE = """
COPY (
    WITH base AS (
        SELECT i,
               i // 20 + (hash(i) % 7 = 0)::INT AS v,
               CASE WHEN hash(i * 3) % 100 < 70 THEN (hash(i * 5) % 300)::BIGINT * 1000000
                    ELSE (1800 + (hash(i * 7) % 241)::BIGINT - 120) * 1000000 END AS gap_us
        FROM range({n}) r(i)
    ),
    timed AS (
        SELECT i, v,
               (epoch_us(TIMESTAMPTZ '2026-03-01 00:00:00+00') + (hash(v) % (7 * 86400))::BIGINT * 1000000
                 + sum(gap_us) OVER (PARTITION BY v ORDER BY i))::BIGINT AS t
        FROM base
    ),
    events AS (
        SELECT 'e' || i AS event_id, 'visitor-' || v AS anonymous_id,
               CASE WHEN hash(v) % 4 = 0 THEN 'user-' || v END AS user_id,
               (['page_view', 'page_ping', 'page_ping', 'view_item', 'add_to_cart', 'page_view',
                 'search', 'begin_checkout', 'purchase', 'page_view'])[1 + (hash(i * 11) % 10)::BIGINT] AS event_type,
               make_timestamp(t)::TIMESTAMPTZ AS event_ts,
               make_timestamp(t + CASE WHEN hash(i * 13) % 100 < 2 THEN 900000000 ELSE 300000 END)::TIMESTAMPTZ
                 AS received_at,
               'https://shop.example/p/' || (hash(i * 17) % 500) AS page_url,
               '/p/' || (hash(i * 17) % 500) AS page_path,
               (['google', 'newsletter', NULL, NULL])[1 + (hash(v * 3) % 4)::BIGINT] AS utm_source,
               (['mobile', 'desktop', 'tablet'])[1 + (hash(v * 5) % 3)::BIGINT] AS device_type,
               (hash(i * 19) % 200000) / 100.0 AS value,
               'USD' AS currency,
               'order-' || (i // 3) AS transaction_id,
               md5('payload' || i) AS payload_hash,
               'raw/dt=2026-03-01/obj-' || (i // 5000) AS source_object,
               (i % 5000)::INTEGER AS source_line
        FROM timed
    )
    SELECT * FROM events
    UNION ALL
    SELECT * REPLACE (received_at + INTERVAL 7 SECOND AS received_at, source_object || '-retry' AS source_object)
    FROM events WHERE hash(event_id) % 100 = 0
    ORDER BY received_at
) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)
"""

PEER = """
SET enable_progress_bar = false;
SET TimeZone = 'UTC';
SET preserve_insertion_order = false;
CREATE TEMP TABLE deduped AS
    SELECT * FROM read_parquet('{src}')
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, event_ts) = 1;
CREATE TEMP TABLE numbered AS
    SELECT *, sum(is_new) OVER (PARTITION BY anonymous_id ORDER BY event_ts, event_id) AS session_no
    FROM (SELECT *, CASE WHEN event_ts - lag(event_ts) OVER (PARTITION BY anonymous_id ORDER BY event_ts, event_id)
                          > INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS is_new FROM deduped);
COPY (SELECT * EXCLUDE (is_new, session_no), md5(anonymous_id || '|' || session_no) AS session_id FROM numbered)
    TO '{out}/events.parquet' {parquet};
COPY (SELECT md5(anonymous_id || '|' || session_no) AS session_id, anonymous_id, min(event_ts) AS session_start,
             max(event_ts) AS session_end, count(*) AS n_events
      FROM numbered GROUP BY anonymous_id, session_no)
    TO '{out}/sessions.parquet' {parquet};
"""

FLOOR = """
SET enable_progress_bar = false;
COPY (SELECT * FROM read_parquet('{src}')) TO '{out}/copy.parquet' {parquet};
"""

BOUND = """
SET enable_progress_bar = false;
SET TimeZone = 'UTC';
SET preserve_insertion_order = false;
CREATE TEMP TABLE repeated AS
    SELECT hash(event_id) AS h FROM read_parquet('{src}') GROUP BY h HAVING count(*) > 1;
CREATE TEMP TABLE ordered AS
    SELECT file_row_number AS rid FROM read_parquet('{src}', file_row_number = true)
    ORDER BY hash(anonymous_id), event_ts, event_id;
COPY (SELECT *, md5(anonymous_id || '|' || epoch_us(event_ts)::VARCHAR) AS session_id FROM read_parquet('{src}'))
    TO '{out}/events.parquet' {parquet};
"""

CHILD = """
import sys, duckdb
from pathlib import Path
kind, src, out, sql, memory_limit, root = sys.argv[1:7]
Path(out).mkdir(parents=True, exist_ok=True)
settings = f"SET memory_limit = '{memory_limit}'; SET temp_directory = '{out}/spill';" if memory_limit else ""
if kind == "ours":
    from clickstream.sessionize.engine import DuckDBOptions
    from clickstream.sessionize.files import sessionize_files
    options = DuckDBOptions(memory_limit=memory_limit, temp_directory=f"{out}/spill") if memory_limit else None
    sessionize_files([Path(src)], Path(out) / "result", options=options)
elif kind == "polars":
    sys.path.insert(0, root)
    from bench.sessionize.run import polars_peer
    polars_peer(Path(src), Path(out))
elif kind == "generate":
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(sql)
    con.close()
else:
    from clickstream.sessionize.files import PARQUET
    con = duckdb.connect()
    con.execute(settings + sql.format(src=src, out=out, parquet=PARQUET))
    con.close()
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(peak_kb, file=sys.stderr)
"""


REPO_ROOT = Path(__file__).resolve().parents[2]


def polars_peer(src: Path, out: Path) -> None:
    """The peer's rule in Polars: dedupe, 30-minute gap, running sum per visitor, events and sessions files."""
    import polars as pl

    numbered = (
        pl.scan_parquet(src)
        .sort(["received_at", "event_ts"])
        .unique(subset="event_id", keep="first")
        .sort(["anonymous_id", "event_ts", "event_id"])
        .with_columns(
            (pl.col("event_ts").diff().over("anonymous_id") > pl.duration(minutes=30))
            .fill_null(False)
            .cast(pl.Int64)
            .cum_sum()
            .over("anonymous_id")
            .alias("session_no")
        )
        .with_columns(
            pl.concat_str([pl.col("anonymous_id"), pl.col("session_no").cast(pl.String)], separator="|")
            .hash()
            .cast(pl.String)
            .alias("session_id")
        )
        .collect()
    )
    numbered.drop("session_no").write_parquet(out / "events.parquet", compression="zstd", compression_level=1)
    (
        numbered.group_by("anonymous_id", "session_no")
        .agg(
            pl.col("session_id").first(),
            pl.col("event_ts").min().alias("session_start"),
            pl.col("event_ts").max().alias("session_end"),
            pl.len().alias("n_events"),
        )
        .select("session_id", "anonymous_id", "session_start", "session_end", "n_events")
        .write_parquet(out / "sessions.parquet", compression="zstd", compression_level=1)
    )


def polars_missing() -> str | None:
    """Why the Polars peer cannot run here (None when it can)."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return "polars is not installed (pip install -e '.[bench]')"
    return None


def measure(
    kind: str, src: Path, out: Path, sql: str = "", memory_limit: str = ""
) -> tuple[float, float, float]:
    """Wall seconds, peak resident memory (MB) and CPU seconds (all threads) of one contender in its own process."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(src), str(out), sql, memory_limit, str(REPO_ROOT)],
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return elapsed, int(proc.stderr.strip().splitlines()[-1]) / 1024, cpu


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def bench(n: int, work: Path, repeat: int = 1, memory_limit: str = "") -> dict:
    src = work / f"events-{n}.parquet"
    if not src.exists():
        measure("generate", src, work, GENERATE.format(n=n, path=src))
    load_before = load_average()
    runs: dict[str, list[tuple[float, float]]] = {
        "ours": [],
        "peer": [],
        "polars": [],
        "floor": [],
        "bound": [],
    }
    no_polars = polars_missing()
    for _ in range(repeat):
        runs["ours"].append(measure("ours", src, work / "ours", "", memory_limit))
        runs["peer"].append(measure("peer", src, work / "peer", PEER, memory_limit))
        if not no_polars:
            runs["polars"].append(measure("polars", src, work / "polars"))
        runs["floor"].append(measure("floor", src, work / "floor", FLOOR, memory_limit))
        runs["bound"].append(measure("bound", src, work / "bound", BOUND, memory_limit))
    ours, peer, floor, bound = (min(runs[k]) for k in ("ours", "peer", "floor", "bound"))
    polars = min(runs["polars"]) if runs["polars"] else None
    return {
        "events": n,
        "repeat": repeat,
        "memory_limit": memory_limit or "DuckDB default",
        "ours_s": round(ours[0], 2),
        "peer_s": round(peer[0], 2),
        "floor_s": round(floor[0], 2),
        "bound_s": round(bound[0], 2),
        "polars_s": round(polars[0], 2) if polars else None,
        "polars_skipped": no_polars,
        "peer_over_ours": round(peer[0] / ours[0], 2),
        "polars_over_ours": round(polars[0] / ours[0], 2) if polars else None,
        "ours_over_floor": round(ours[0] / floor[0], 2),
        "bound_over_floor": round(bound[0] / floor[0], 2),
        "ours_over_bound": round(ours[0] / bound[0], 2),
        "ours_peak_mb": round(max(r[1] for r in runs["ours"])),
        "peer_peak_mb": round(max(r[1] for r in runs["peer"])),
        "polars_peak_mb": round(max(r[1] for r in runs["polars"])) if polars else None,
        "floor_peak_mb": round(max(r[1] for r in runs["floor"])),
        # CPU seconds of each contender's fastest run (all its threads): steadier than wall time on a busy machine
        "cpu_s": {k: round(min(runs[k])[2], 2) for k in runs if runs[k]},
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench sessionize")
    parser.add_argument(
        "--events", type=int, action="append", help="input size (repeatable; default 1000000)"
    )
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temporary one)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per contender, taking turns; the fastest counts"
    )
    parser.add_argument(
        "--memory-limit",
        default="",
        help="DuckDB memory_limit for all four contenders, e.g. 3GB (spilling to the work directory)",
    )
    args = parser.parse_args(argv)
    sizes = args.events or [1_000_000]
    with tempfile.TemporaryDirectory(prefix="bench-sessionize-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            result = bench(n, work, args.repeat, args.memory_limit)
            print(json.dumps(result))
            polars = (
                f"polars {result['polars_s']} s (polars/ours {result['polars_over_ours']}x), "
                if result["polars_s"] is not None
                else f"polars skipped: {result['polars_skipped']}, "
            )
            print(
                f"{n:>11,} events: ours {result['ours_s']} s, peer {result['peer_s']} s "
                f"(peer/ours {result['peer_over_ours']}x; goal >= 2x), {polars}floor {result['floor_s']} s "
                f"(ours/floor {result['ours_over_floor']}x; goal <= 1.5x), bound {result['bound_s']} s "
                f"(bound/floor {result['bound_over_floor']}x, ours/bound {result['ours_over_bound']}x), "
                f"peak {result['ours_peak_mb']} MB "
                f"(goal < 4096 MB); CPU s {result['cpu_s']}; load average {result['load_average_before']} -> "
                f"{result['load_average_after']}"
            )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
