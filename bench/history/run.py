"""Long-lived store benchmark: what an incremental run costs against the store's age.

``python -m bench history -- [--days 60] [--step-hours 12] [--visits 40] [--customers 300] [--seed 7] [--json FILE]``

A simulated store of ``--days`` days with returning visitors: every pipeline window (``--step-hours``) brings the
same number of visits (``--visits``, 2-8 events each, a few minutes apart), each by one of the store's
``--customers`` (uniformly: a customer's first visit makes them a new visitor, every later one a returning one), so a
customer's history grows with the store's age, as a real store's regulars' does. Events reach the lake 2 s after they happen,
except 3% that arrive 1-60 h late (a device that was offline), inside the 72 h lookback, so they land in a later
window. Each window becomes one validated object and one run of the real Sessionize step
(``clickstream.pipeline.sessionize.sessionize_bucket``, one user bucket, the stack's rule: 30 min timeout, 24 h
cap, 72 h lookback) against an in-memory lake that counts what the run reads from the bucket state
(``sessionized/``: rows and bytes of every Parquet file fetched).

Per run: **arrived** = the window's events (validated rows), **loaded** = the rows of the run's ``events.parquet``,
which the Load step writes into the warehouse's ``events`` (``pipeline_runs.events_loaded``), and **state rows
read**. Printed per store day at days 5, 20, 60 (or the last day) and for the last 7 days, with the goals: in the
last week loaded/arrived <= 1.2x day 5's, and the hot and tail rows read per run (the step's own
``state_rows_read``) <= 1.5x day 5's (every run brings the same arrivals); the indexes' rows (the frozen-id index
grows with the frozen history, one 8-byte hash per event) are printed apart. The measurement counts rows; it needs no timing, so the machine's load does not change it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from clickstream.core.schema import VALIDATED_COLUMNS
from clickstream.core.times import iso
from clickstream.pipeline.manifest import Manifest, ManifestObject, manifest_key
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from tests.fakes.storage import MemoryObjectStore

START = datetime(2026, 1, 5, tzinfo=UTC)
STATE_PREFIX = "sessionized/"
LATE_SHARE = 0.03


@dataclass
class CountingLake(MemoryObjectStore):
    """The tests' in-memory object store, counting the bucket-state Parquet it serves (the step fetches on several
    threads)."""

    rows_by_kind: dict[str, int] = field(
        default_factory=dict
    )  # by file kind: ``ids``, ``objects``, ``hot`` …
    bytes_by_kind: dict[str, int] = field(default_factory=dict)
    scratch: Path = Path(".")
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rows_read(self) -> int:
        return sum(self.rows_by_kind.values())

    @property
    def bytes_read(self) -> int:
        return sum(self.bytes_by_kind.values())

    def reset(self) -> None:
        self.rows_by_kind, self.bytes_by_kind = {}, {}

    def _count(self, key: str, data: bytes) -> bytes:
        """Rows and bytes of a state Parquet file served; bytes of any other state file but the pointer (the
        frozen-id filters)."""
        if not key.startswith(STATE_PREFIX) or key.endswith("/state.json"):
            return data
        n = 0
        if key.endswith(".parquet"):
            with tempfile.NamedTemporaryFile(dir=self.scratch, suffix=".parquet") as f:
                f.write(data)
                f.flush()
                con = duckdb.connect()
                n = int(con.execute(f"SELECT count(*) FROM read_parquet('{f.name}')").fetchall()[0][0])
                con.close()
        kind = file_kind(key)
        with self.lock:
            self.rows_by_kind[kind] = self.rows_by_kind.get(kind, 0) + n
            self.bytes_by_kind[kind] = self.bytes_by_kind.get(kind, 0) + len(data)
        return data

    def get_bytes(self, key: str) -> bytes:
        return self._count(key, super().get_bytes(key))


def id_filter_size(lake: MemoryObjectStore) -> tuple[int, int]:
    """The frozen ids the bucket's current filters hold and the filters' bytes (read from the lake's dict: not
    counted as a run's reads); zeros before the filters existed."""
    try:
        from clickstream.sessionize.idfilter import IdFilter
        from clickstream.sessionize.state import BucketState, pointer_key
    except ImportError:
        return 0, 0
    if pointer_key(0) not in lake.objects:
        return 0, 0
    pointer = BucketState.from_json(json.loads(lake.objects[pointer_key(0)]))
    keys = [f.bloom for f in pointer.slices.values() if getattr(f, "bloom", None)]
    return sum(IdFilter.from_bytes(lake.objects[k]).count for k in keys), sum(
        len(lake.objects[k]) for k in keys
    )


def file_kind(key: str) -> str:
    """A state file's kind from its name: ``ids-<gen>.parquet`` -> ``ids``, ``frozen-sessions-<gen>.parquet`` ->
    ``frozen-sessions``, ``all.parquet`` -> ``all``."""
    name = key.rsplit("/", 1)[-1].split(".", 1)[0]
    for kind in ("frozen-sessions", "hot", "sessions", "tail", "users", "ids", "bloom", "frozen", "objects"):
        if name == kind or name.startswith(kind + "-"):
            return kind
    return name


def simulate(
    days: int, step_hours: int, visits: int, seed: int, customers: int = 300
) -> list[list[dict[str, Any]]]:
    """The events of every window, by arrival (received_at), as validated rows."""
    rng = random.Random(seed)
    n_windows = days * 24 // step_hours
    step = timedelta(hours=step_hours)
    windows: list[list[dict[str, Any]]] = [[] for _ in range(n_windows)]
    n = 0
    for w in range(n_windows):
        for _ in range(visits):
            visitor = f"visitor-{rng.randrange(customers):06d}"
            t = START + w * step + timedelta(seconds=rng.uniform(0, step.total_seconds()))
            for _ in range(rng.randint(2, 8)):
                late = rng.random() < LATE_SHARE
                received = t + (timedelta(hours=rng.uniform(1, 60)) if late else timedelta(seconds=2))
                arrival = int((received - START) / step)
                if arrival < n_windows:
                    n += 1
                    windows[arrival].append(_row(n, visitor, t, received, arrival))
                t += timedelta(seconds=rng.uniform(20, 600))
    return windows


def _row(n: int, visitor: str, ts: datetime, received: datetime, window: int) -> dict[str, Any]:
    return {
        "app_id": "shop",
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "anonymous_id": visitor,
        "event_type": "page_view",
        "event_ts": ts,
        "received_at": received,
        "page_url": "https://shop.example/p/1",
        "payload_hash": f"h{n}",
        "source_object": f"raw/window-{window:05d}",
        "source_line": n,
    }


def write_window(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], path: Path) -> None:
    """Rows as a validated Parquet file (every validated column; those the rows lack are null)."""
    params = [[row.get(name) for row in rows] for name, _ in VALIDATED_COLUMNS]
    select = ", ".join(
        f'unnest(${i + 1}::{typ}[]) AS "{name}"' for i, (name, typ) in enumerate(VALIDATED_COLUMNS)
    )
    con.execute(f"COPY (SELECT {select}) TO '{path}' (FORMAT parquet)", params)


def run_store(
    days: int, step_hours: int, visits: int, seed: int, work: Path, customers: int = 300
) -> list[dict[str, Any]]:
    """Every window through the Sessionize step; one record per run."""
    lake = CountingLake(scratch=work)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    options: dict[str, Any] = {"workdir": work}
    if "lookback_hours" in inspect.signature(sessionize_bucket).parameters:
        options["lookback_hours"] = 72
    out = []
    for w, rows in enumerate(simulate(days, step_hours, visits, seed, customers)):
        run_id = f"run-{w:05d}"
        end = START + timedelta(hours=(w + 1) * step_hours)
        source, key = f"raw/window-{w:05d}", f"validated/window-{w:05d}.parquet"
        write_window(con, rows, work / "window.parquet")
        lake.upload(work / "window.parquet", key)
        manifest = Manifest(
            run_id=run_id,
            watermark_from=iso(end - timedelta(hours=step_hours)),
            watermark_to=iso(end),
            n_buckets=1,
            objects=[ManifestObject(source_key=source, validated_key=key, validated_at=iso(end))],
        )
        lake.put_bytes(manifest_key(run_id), manifest.model_dump_json().encode())
        lake.reset()
        result = sessionize_bucket(SessionizeInput(run_id=run_id, bucket=0), lake, **options)
        filtered_ids, filter_bytes = id_filter_size(lake)
        out.append(
            {
                "day": (end - timedelta(microseconds=1) - START).days + 1,
                "arrived": len(rows),
                "loaded": result.n_events,
                "state_rows_read": lake.rows_read,
                "state_bytes_read": lake.bytes_read,
                # the step's own split (absent before frozen history): hot rows, sessions, tails and users links;
                # the frozen-id and object indexes; frozen rows read for a thaw or a copy of a frozen event
                "hot_and_tail_rows_read": getattr(result, "state_rows_read", lake.rows_read),
                "index_rows_read": getattr(result, "index_rows_read", 0),
                "frozen_rows_read": getattr(result, "frozen_rows_read", 0),
                "thawed_slices": getattr(result, "n_thawed_slices", 0),
                # what the lake served, by file kind: the frozen-id index (ids), its filters (bloom), the object
                # index (objects)
                "id_rows_read": lake.rows_by_kind.get("ids", 0),
                "object_index_rows_read": lake.rows_by_kind.get("objects", 0),
                "id_bytes_read": lake.bytes_by_kind.get("ids", 0),
                "id_filter_bytes_read": lake.bytes_by_kind.get("bloom", 0),
                # after the run: the frozen ids the filters hold and the filters' size
                "filtered_ids": filtered_ids,
                "id_filter_bytes": filter_bytes,
            }
        )
    con.close()
    return out


def per_day(runs: list[dict[str, Any]], first: int, last: int) -> dict[str, Any]:
    """Sums and per-run means over the runs of store days ``first`` .. ``last``."""
    chosen = [r for r in runs if first <= r["day"] <= last]
    arrived = sum(r["arrived"] for r in chosen)
    loaded = sum(r["loaded"] for r in chosen)
    return {
        "days": f"{first}-{last}" if first != last else str(first),
        "runs": len(chosen),
        "arrived": arrived,
        "loaded": loaded,
        "loaded_per_arrived": round(loaded / arrived, 3) if arrived else None,
        "arrived_per_run": round(arrived / len(chosen), 1) if chosen else None,
        "state_rows_read_per_run": round(sum(r["state_rows_read"] for r in chosen) / len(chosen), 1)
        if chosen
        else None,
        "state_bytes_read_per_run": round(sum(r["state_bytes_read"] for r in chosen) / len(chosen))
        if chosen
        else None,
        "thawed_slices": sum(r["thawed_slices"] for r in chosen),
        # the filters after the last of the runs: ids held, bytes, bits per id
        "filtered_ids": (ids := chosen[-1].get("filtered_ids", 0) if chosen else 0),
        "id_filter_bits_per_id": round(8 * chosen[-1].get("id_filter_bytes", 0) / ids, 1) if ids else None,
        **{
            f"{k}_per_run": round(sum(r[k] for r in chosen) / len(chosen), 1) if chosen else None
            for k in (
                "hot_and_tail_rows_read",
                "index_rows_read",
                "id_rows_read",
                "object_index_rows_read",
                "id_bytes_read",
                "id_filter_bytes_read",
                "frozen_rows_read",
            )
        },
    }


def report(runs: list[dict[str, Any]], days: int) -> dict[str, Any]:
    rows = [per_day(runs, d, d) for d in sorted({min(5, days), min(20, days), days})]
    last_week = per_day(runs, max(1, days - 6), days)
    day5 = rows[0]
    ratio = last_week["loaded_per_arrived"] / day5["loaded_per_arrived"]
    reads = last_week["hot_and_tail_rows_read_per_run"] / day5["hot_and_tail_rows_read_per_run"]
    every = last_week["state_rows_read_per_run"] / day5["state_rows_read_per_run"]
    return {
        "by_day": rows,
        "last_week": last_week,
        "last_week_over_day5": {
            "loaded_per_arrived": round(ratio, 3),
            "hot_and_tail_rows_read_per_run": round(reads, 3),
            "state_rows_read_per_run": round(every, 3),
        },
        "goals_met": {
            "loaded_per_arrived <= 1.2x": ratio <= 1.2,
            "hot_and_tail_rows_read_per_run <= 1.5x": reads <= 1.5,
        },
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench history")
    parser.add_argument("--days", type=int, default=60, help="store age at the end (default 60)")
    parser.add_argument("--step-hours", type=int, default=12, help="hours per pipeline window (default 12)")
    parser.add_argument("--visits", type=int, default=40, help="visits per window (default 40)")
    parser.add_argument("--customers", type=int, default=300, help="the store's visitors (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write every run's record and the report here")
    args = parser.parse_args(argv)
    if args.days < 5 or 24 % args.step_hours:
        parser.error("--days must be at least 5 and --step-hours divide 24")
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        runs = run_store(args.days, args.step_hours, args.visits, args.seed, Path(tmp), args.customers)
    result = report(runs, args.days)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "report": result}, indent=1) + "\n")
    print(json.dumps(result))
    for row in [*result["by_day"], result["last_week"]]:
        print(
            f"day {row['days']:>5}: {row['runs']} runs, arrived {row['arrived']:,}, loaded {row['loaded']:,}"
            f" (loaded/arrived {row['loaded_per_arrived']}), state rows read per run"
            f" {row['state_rows_read_per_run']:,} ({row['state_bytes_read_per_run']:,} bytes; hot and tail"
            f" {row['hot_and_tail_rows_read_per_run']:,}, indexes {row['index_rows_read_per_run']:,} = frozen ids"
            f" {row['id_rows_read_per_run']:,} ({row['id_bytes_read_per_run']:,} bytes) + objects {row['object_index_rows_read_per_run']:,}, id filters"
            f" {row['id_filter_bytes_read_per_run']:,} bytes, frozen {row['frozen_rows_read_per_run']:,}); filters"
            f" hold {row['filtered_ids']:,} frozen ids at {row['id_filter_bits_per_id']} bits each"
        )
    over = result["last_week_over_day5"]
    print(
        f"last week / day 5: loaded/arrived {over['loaded_per_arrived']}x (goal <= 1.2x), hot and tail rows read per"
        f" run {over['hot_and_tail_rows_read_per_run']}x (goal <= 1.5x), every state row read per run"
        f" {over['state_rows_read_per_run']}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
