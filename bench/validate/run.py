"""Validate-step benchmark: events/s on one core, raw gzip objects in, Parquet and quarantine files out.

``python -m bench validate -- [--events 200000] [--objects 16] [--keep DIR] [--input DIR/raw] [--only NAME ...]
[--cpu N] [--no-phases] [--hostile-bytes 1048576] [--hostile-repeats 5]``

After the contenders, ``bench.validate.phases`` shows where the engine's CPU goes on the same objects (``--no-phases``
skips it), and ``bench.validate.hostile`` compares the worst content with ordinary content, one request of
``--hostile-bytes`` each (0 skips it): see that module.

Each contender reports wall seconds and CPU seconds (the machine may be shared: CPU seconds, and the ratios,
hold up better than wall time) and the load average is printed before and after.

Input (not timed): the demo generator's store traffic put through the ingest domain function (the raw records
Firehose would store), with each visitor's user agent replaced by one of several hundred real-looking strings,
split into ``--objects`` gzip objects. Each contender runs in its own process pinned to one core and writes, per
object, a Parquet file of validated events and a JSON-lines quarantine file:

- python: ``judge.judge_object`` (pydantic-core, event by event) + ``writer.write_parquet`` (the specification);
- engine: ``engine.judge_to_parquet`` (set-based DuckDB, held equal to the python judge by the tests): what the
          shipped step (``service.validate_object``) runs;
- cli:    ``clickstream validate RAW... --out DIR`` in a subprocess (inheriting the contender's core): the step's
          ``validate_object`` itself, the function the Lambda runs per object, with its process start, imports and
          ledger lines; its CPU seconds are the subprocess's;
- peer:   JSON-Schema validation the way Iglu-style pipelines do it (``jsonschema``, one Draft 2020-12 validator
          per event type, built once), valid events written as JSON lines and copied to Parquet by DuckDB.

Two floors validate nothing; they show what reading alone costs on this machine, so the report says whether a rate
is reachable at all:

- duckdb-copy: DuckDB's ``read_json`` of each gzip object (newline-delimited), events unnested, written to zstd
               Parquet on one thread (the engine's Parquet settings);
- parse-only:  Python gunzip + ``json.loads`` of every line, counting events, writing nothing;
- typed-decode: gunzip + a msgspec decode of every record and event into typed Structs with the contract's fields
               and none of its constraints (``bench.validate.floor``), writing nothing: the floor the step's goal
               is set against (>= 0.30x of it);
- polars-read: gunzip + Polars' typed NDJSON reader (the same fields as a Polars schema, one thread) and the events
               exploded into rows, writing nothing: a columnar reader a redesign could start from.

After the rates, the step's ratios to the goals are printed: the engine (what the step runs) against the typed-decode
floor (>= 0.30x), the ``jsonschema`` peer (>= 15x) and the pydantic-v2 judge writing the same Parquet (``python``,
>= 1x).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

UA_TEMPLATES = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel {p8}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{p8} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{p8} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.{b}.{p}",
)


def user_agents(n: int) -> list[str]:
    out = []
    for i in range(n):
        t = UA_TEMPLATES[i % len(UA_TEMPLATES)]
        out.append(t.format(v=100 + i % 37, b=6000 + i * 7 % 900, p=i % 200, p8=i % 9))
    return sorted(set(out))


def generate(events: int, objects: int, out: Path) -> tuple[list[Path], int, int]:
    from clickstream.core.config import Settings
    from clickstream.ingest.request import HttpRequest, guest_caller
    from clickstream.ingest.service import ingest_native
    from clickstream_local.generator.traffic import GUEST_EVENTS_PATH, TrafficConfig, generate

    class Sink:
        def __init__(self) -> None:
            self.records: list[bytes] = []

        def put_records(self, records: list[bytes]) -> None:
            self.records.extend(records)

    sink, settings = Sink(), Settings()
    traffic = generate(TrafficConfig(events=events, days=max(2.0, events / 30_000)))
    for request in traffic.requests:
        http = HttpRequest.from_api_gateway(request.event)
        caller = guest_caller(http) if request.event.get("resource") == GUEST_EVENTS_PATH else None
        try:
            ingest_native(http, settings=settings, sink=sink, caller=caller)
        except Exception:  # the malformed requests the API refuses
            continue
    uas = user_agents(600)
    lines, n_events = [], 0
    for raw in sink.records:
        record = json.loads(raw)
        record["user_agent"] = uas[hash(record["anonymous_id"]) % len(uas)]
        n_events += len(record["events"])
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    out.mkdir(parents=True, exist_ok=True)
    size = -(-len(lines) // objects)
    paths = []
    for i in range(objects):
        chunk = lines[i * size : (i + 1) * size]
        if chunk:
            path = out / f"raw-{i:03d}.jsonl.gz"
            path.write_bytes(gzip.compress(("\n".join(chunk) + "\n").encode("utf-8")))
            paths.append(path)
    distinct = len({json.loads(line)["user_agent"] for line in lines})
    return paths, n_events, distinct


def describe(raw: Path) -> tuple[list[Path], int, int]:
    """The raw objects of an earlier run: their paths, events and distinct user agents."""
    paths = sorted(raw.glob("raw-*.jsonl.gz"))
    n_events, agents = 0, set()
    for path in paths:
        for line in gzip.decompress(path.read_bytes()).splitlines():
            record = json.loads(line)
            n_events += len(record["events"])
            agents.add(record["user_agent"])
    return paths, n_events, len(agents)


# -- contenders (run in a child process) ----------------------------------------------------------------------
def judge_options() -> Any:
    """The options every judging contender (and ``bench.validate.phases``) runs with: the stack's 72-hour lookback
    and the generator's internal network (the ``cli`` contender gets the same through its environment)."""
    from datetime import timedelta

    from clickstream.validate.judge import JudgeOptions

    return JudgeOptions(lookback=timedelta(hours=72), internal_networks=("10.20.0.0/16",))


def _python(paths: list[Path], out: Path) -> None:
    from clickstream.validate.judge import judge_object
    from clickstream.validate.writer import quarantine_jsonl, write_parquet

    options = judge_options()
    for path in paths:
        judgement = judge_object(path.read_bytes(), source_key=path.name, options=options)
        write_parquet(judgement.rows, out / f"{path.name}.parquet")
        (out / f"{path.name}.jsonl").write_bytes(quarantine_jsonl(judgement.quarantine, "t"))


def _engine(paths: list[Path], out: Path) -> None:
    from clickstream.validate.engine import judge_to_parquet
    from clickstream.validate.writer import quarantine_jsonl

    options = judge_options()
    for path in paths:
        judgement = judge_to_parquet(
            path.read_bytes(), source_key=path.name, options=options, path=out / f"{path.name}.parquet"
        )
        (out / f"{path.name}.jsonl").write_bytes(quarantine_jsonl(judgement.quarantine, "t"))


def _cli(paths: list[Path], out: Path) -> None:
    env = {**os.environ, "INTERNAL_IP_RANGES": "10.20.0.0/16", "LOOKBACK_HOURS": "72"}
    with open(out / "ledger.jsonl", "wb") as ledger:
        subprocess.run(
            [sys.executable, "-m", "clickstream_cli.main", "validate", *map(str, paths), "--out", str(out)],
            stdout=ledger,
            env=env,
            check=True,
        )


def _schemas() -> dict[str, dict]:
    from clickstream.validate.models import (
        CURRENCY_PATTERN,
        EVENT_TYPE_PATTERN,
        GA4_EVENT_TYPES,
        HTTP_URL_PATTERN,
        ITEMS_REQUIRED,
        MAX_ID,
        MAX_ITEMS,
        MAX_TEXT,
        MONEY_REQUIRED,
        UUID_PATTERN,
    )

    text = {"type": ["string", "null"], "maxLength": MAX_TEXT}
    ident = {"type": "string", "minLength": 1, "maxLength": MAX_ID}
    money = {"type": "number"}
    item = {
        "type": "object",
        "required": ["product_id"],
        "properties": {
            "product_id": ident,
            "name": text,
            "category": text,
            "brand": text,
            "price": {"type": ["number", "null"], "minimum": 0},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        },
    }
    ts = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
    base = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["event_id", "event_type", "occurred_at"],
        "properties": {
            "event_id": {"type": "string", "pattern": UUID_PATTERN},
            "event_type": {"type": "string", "pattern": EVENT_TYPE_PATTERN},
            "occurred_at": {"type": "string", "pattern": ts},
            "page": {
                "type": ["object", "null"],
                "required": ["url"],
                "properties": {
                    "url": {"type": "string", "pattern": HTTP_URL_PATTERN},
                    "referrer": {"type": ["string", "null"]},
                    "title": text,
                },
            },
            "properties": {"type": ["object", "null"]},
            "items": {"type": ["array", "null"], "maxItems": MAX_ITEMS, "items": item},
            "value": {"type": ["number", "null"]},
            "currency": {"type": ["string", "null"], "pattern": CURRENCY_PATTERN},
            "transaction_id": {"anyOf": [ident, {"type": "null"}]},
        },
        "dependentRequired": {"value": ["currency"]},
    }
    schemas = {}
    for name in (*GA4_EVENT_TYPES, "custom"):
        schema = json.loads(json.dumps(base))
        if name in ITEMS_REQUIRED:
            schema["required"].append("items")
            schema["properties"]["items"] = {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ITEMS,
                "items": item,
            }
        if name in MONEY_REQUIRED:
            schema["required"] += ["value", "currency", "transaction_id"]
            schema["properties"]["value"] = money
        schemas[name] = schema
    return schemas


def _peer(paths: list[Path], out: Path) -> None:
    import duckdb
    from jsonschema import Draft202012Validator

    validators = {name: Draft202012Validator(schema) for name, schema in _schemas().items()}
    for path in paths:
        good, bad = [], []
        for line in gzip.decompress(path.read_bytes()).split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                bad.append(
                    json.dumps({"reason": "unparseable_record", "event": line.decode(errors="replace")})
                )
                continue
            envelope = {k: v for k, v in record.items() if k != "events"}
            for position, event in enumerate(record.get("events") or []):
                kind = event.get("event_type") if isinstance(event, dict) else None
                validator = validators.get(kind) or validators["custom"]
                error = next(iter(validator.iter_errors(event)), None)
                if error is None:
                    good.append(json.dumps({**envelope, **event, "position": position}, ensure_ascii=False))
                else:
                    bad.append(
                        json.dumps({"reason": "schema_violation", "detail": error.message, "event": event})
                    )
        staging = out / f"{path.name}.staging.jsonl"
        staging.write_text("\n".join(good) + "\n", encoding="utf-8")
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT * FROM read_json('{staging}', format = 'newline_delimited')) "
            f"TO '{out / (path.name + '.parquet')}' (FORMAT parquet, COMPRESSION zstd)"
        )
        con.close()
        staging.unlink()
        (out / f"{path.name}.jsonl").write_text("\n".join(bad) + "\n", encoding="utf-8")


def _duckdb_copy(paths: list[Path], out: Path) -> None:
    import duckdb

    con = duckdb.connect(config={"threads": 1, "preserve_insertion_order": True})
    for path in paths:
        con.execute(
            "COPY (SELECT r.* EXCLUDE (events), unnest(r.events) AS event "
            f"FROM read_json('{path}', format = 'newline_delimited', compression = 'gzip') r) "
            f"TO '{out / (path.name + '.parquet')}' (FORMAT parquet, COMPRESSION zstd)"
        )
    con.close()


def _typed_decode(paths: list[Path], out: Path) -> None:
    from bench.validate.floor import decode_object

    events = 0
    for path in paths:
        events += decode_object(gzip.decompress(path.read_bytes()))
    (out / "events.txt").write_text(f"{events}\n")  # the count, so the work cannot be skipped


def _polars_read(paths: list[Path], out: Path) -> None:
    os.environ["POLARS_MAX_THREADS"] = "1"  # before the import: the pool is sized then
    import polars as pl

    from bench.validate.floor import polars_schema

    schema, events = polars_schema(), 0
    for path in paths:
        frame = pl.read_ndjson(gzip.decompress(path.read_bytes()), schema=schema)
        frame.explode("events").unnest("events")  # eager: the rows are built here
        # an empty events list explodes to one null row: count the lists' lengths instead of the rows
        events += int(frame["events"].list.len().fill_null(0).sum())
    (out / "events.txt").write_text(f"{events}\n")


def _parse_only(paths: list[Path], out: Path) -> None:
    events = 0
    for path in paths:
        for line in gzip.decompress(path.read_bytes()).split(b"\n"):
            if line.strip():
                events += len(json.loads(line).get("events") or ())
    (out / "events.txt").write_text(f"{events}\n")  # the count, so the work cannot be skipped


CONTENDERS = {
    "python": _python,
    "engine": _engine,
    "cli": _cli,
    "peer": _peer,
    "duckdb-copy": _duckdb_copy,
    "parse-only": _parse_only,
    "typed-decode": _typed_decode,
    "polars-read": _polars_read,
}
# Contenders that validate nothing: what reading alone costs here (the engine's rate is compared with them too).
FLOORS = ("duckdb-copy", "parse-only", "typed-decode", "polars-read")
# The step's goals (per CPU-second, the engine against each): at least this share of the contender's rate.
GOALS = (("typed-decode", 0.30), ("peer", 15.0), ("python", 1.0))


def _child(name: str, src: Path, out: Path, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    paths = sorted(src.glob("raw-*.jsonl.gz"))
    out.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), _cpu_seconds()
    CONTENDERS[name](paths, out)
    # CPU seconds beside wall seconds: on a shared machine the wall clock counts other people's work too
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": _cpu_seconds() - cpu}))


def _cpu_seconds() -> float:
    """This process's CPU seconds and those of its finished subprocesses (the cli contender's command)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench validate")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--keep", type=Path, default=None, help="keep the input and outputs in this folder")
    parser.add_argument(
        "--input", type=Path, default=None, help="reuse the raw objects a --keep run left here"
    )
    parser.add_argument(
        "--cpu", type=int, default=0, help="the one core every contender is pinned to (default 0)"
    )
    parser.add_argument("--hostile-bytes", type=int, default=1_048_576, help="0: skip the worst-content case")
    parser.add_argument("--hostile-repeats", type=int, default=5)
    parser.add_argument(
        "--phases",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="profile the engine's phases on the same objects after the contenders (bench.validate.phases)",
    )
    parser.add_argument("--child", nargs=3, metavar=("NAME", "SRC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", default=list(CONTENDERS), choices=list(CONTENDERS))
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.cpu)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        root = args.keep or Path(tmp)
        if args.input is not None:
            paths, n_events, distinct_uas = describe(args.input)
            root = args.keep or args.input.parent
            raw = args.input
        else:
            raw = root / "raw"
            paths, n_events, distinct_uas = generate(args.events, args.objects, raw)
        print(f"input: {n_events} events in {len(paths)} gzip objects, {distinct_uas} distinct user agents")
        rates: dict[str, float] = {}
        cpu_rates: dict[str, float] = {}
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for name in args.only:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.validate.run",
                    "--child",
                    name,
                    str(raw),
                    str(root / name),
                    "--cpu",
                    str(args.cpu),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                return 1
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            seconds, cpu = result["seconds"], result["cpu_seconds"]
            rates[name] = n_events / seconds
            cpu_rates[name] = n_events / cpu
            print(
                f"{name:>11}: {seconds:8.2f} s wall {rates[name]:10,.0f} events/s (one core); "
                f"{cpu:8.2f} s CPU {cpu_rates[name]:10,.0f} events per CPU-second"
            )
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if "cli" in rates and "engine" in rates:
            print(
                f"cli / engine: {rates['cli'] / rates['engine']:.2f}x wall, "
                f"{cpu_rates['cli'] / cpu_rates['engine']:.2f}x CPU (the command: process start, imports, ledger)"
            )
        if "peer" in rates:
            for name in ("python", "engine", "cli"):
                if name in rates:
                    print(
                        f"{name} / peer: {rates[name] / rates['peer']:.2f}x wall, "
                        f"{cpu_rates[name] / cpu_rates['peer']:.2f}x CPU"
                    )
        floors = [f for f in FLOORS if f in rates]
        if floors:
            print(f"floors (no validation; what reading alone costs on core {args.cpu}):")
            for floor in floors:
                line = f"  {floor}: {cpu_rates[floor]:,.0f} events per CPU-second"
                if "engine" in rates:
                    line += (
                        f"; engine / {floor}: {rates['engine'] / rates[floor]:.2f}x wall, "
                        f"{cpu_rates['engine'] / cpu_rates[floor]:.2f}x CPU"
                    )
                print(line)
        goals = [(name, bound) for name, bound in GOALS if name in cpu_rates and "engine" in cpu_rates]
        if goals:
            print("the step (engine) against its goals, per CPU-second:")
            for name, bound in goals:
                ratio = cpu_rates["engine"] / cpu_rates[name]
                print(
                    f"  engine / {name}: {ratio:.2f}x (goal >= {bound:.2f}x: {'met' if ratio >= bound else 'not met'})"
                )
        if args.phases and not _follow_up(
            "where the engine's CPU goes on the same objects",
            "phases",
            ["--input", str(raw), "--cpu", str(args.cpu)],
        ):
            return 1
    if args.hostile_bytes > 0 and not _follow_up(
        "worst content against ordinary content, one request each",
        "hostile",
        ["--bytes", str(args.hostile_bytes), "--repeats", str(args.hostile_repeats), "--cpu", str(args.cpu)],
    ):
        return 1
    return 0


def _follow_up(title: str, module: str, argv: list[str]) -> bool:
    """Run ``bench.validate.<module>`` after the contenders and print what it printed; False when it failed."""
    print(f"{title} (bench.validate.{module}):")
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.validate.{module}", *argv], capture_output=True, text=True, check=False
    )
    print(proc.stdout, end="")
    if proc.returncode != 0:
        print(f"{module}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
    return proc.returncode == 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
