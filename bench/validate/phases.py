"""Where the validate step's CPU goes, phase by phase, on the benchmark's input.

``python -m bench.validate.phases [--events 200000] [--objects 16] [--input DIR/raw] [--cpu N]``

The engine (``engine.judge_to_parquet``: what the step runs on objects of the benchmark's size) runs on every object
once, pinned to one core, with a CPU clock around each of its phases:

- gunzip:      ``reader.decode_object``;
- load:        the records split into lines and read by DuckDB's ``read_json`` (``Engine.load``);
- judge:       the per-event SQL (types, constraints, timestamps, payload hash) and the Python judge for the lines
               the SQL does not take (``Engine.judge``);
- enrich:      the derivations once per distinct value, then the plain rows and their channels (``Engine.enrich``;
               its parts are listed under it);
- dedupe:      copies within the object and the judgement's counts (``Engine.dedupe``);
- write:       the validated rows as zstd Parquet (``writer.copy_parquet``).

Beside them, the same input through the typed-decode floor (``bench.validate.floor``), so each phase reads as
microseconds per event against what decoding the JSON into typed values costs at all.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PHASES = ("gunzip", "load", "judge", "enrich", "dedupe", "write")
ENRICH_PARTS = ("_user_agents", "_addresses", "_pages", "_context_utm", "_channels")


@contextmanager
def timed_phases(clock: dict[str, float]) -> Iterator[None]:
    """Add each engine phase's CPU seconds to ``clock`` while inside (the engine's functions wrapped, then put back)."""
    from clickstream.validate import engine as engine_module

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                clock[name] += time.process_time() - start

        return timed

    cls = engine_module.Engine
    saved: list[tuple[Any, str, Any]] = [
        (cls, "load", cls.load),
        (cls, "judge", cls.judge),
        (cls, "enrich", cls.enrich),
        (cls, "dedupe", cls.dedupe),
        *((cls, part, getattr(cls, part)) for part in ENRICH_PARTS),
        (engine_module, "decode_object", engine_module.decode_object),
        (engine_module, "copy_parquet", engine_module.copy_parquet),
    ]
    names = {"decode_object": "gunzip", "copy_parquet": "write"}
    try:
        for owner, attr, fn in saved:
            setattr(owner, attr, wrap(names.get(attr, attr), fn))
        yield
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)


def profile(
    paths: list[Path], out: Path, min_bytes: int | None = None
) -> tuple[int, float, dict[str, float], float]:
    """Run the step's judge_to_parquet on ``paths`` (Parquet into ``out``): (events, its CPU seconds, CPU per phase,
    the typed-decode floor's CPU seconds on the same objects). ``min_bytes`` as ``judge_to_parquet`` takes it (the
    engine's threshold by default; objects under it go to the event-by-event judge, whose time is "other")."""
    from bench.validate.floor import decode_object
    from bench.validate.run import judge_options
    from clickstream.validate.engine import judge_to_parquet

    options = judge_options()
    clock: dict[str, float] = defaultdict(float)
    events = 0
    start = time.process_time()
    with timed_phases(clock):
        for path in paths:
            judgement = judge_to_parquet(
                path.read_bytes(),
                source_key=path.name,
                options=options,
                path=out / f"{path.name}.parquet",
                min_bytes=min_bytes,
            )
            events += judgement.events_in
    total = time.process_time() - start
    start = time.process_time()
    decoded = sum(decode_object(gzip.decompress(path.read_bytes())) for path in paths)
    floor = time.process_time() - start
    if decoded != events:
        raise RuntimeError(f"the floor decoded {decoded} events, the engine judged {events}")
    return events, total, dict(clock), floor


def report(events: int, total: float, clock: dict[str, float], floor: float) -> list[str]:
    """The table: each phase's CPU seconds, share of the engine's CPU and microseconds per event."""

    def line(name: str, seconds: float) -> str:
        return f"{name:>16} {seconds:8.2f} s {100 * seconds / total:6.1f} % {1e6 * seconds / events:8.2f} µs/event"

    lines = [f"engine on {events:,} events: {total:.2f} CPU-s, {events / total:,.0f} events per CPU-second"]
    for phase in PHASES:
        lines.append(line(phase, clock.get(phase, 0.0)))
        if phase == "enrich":
            lines.extend(line(f"  {part.strip('_')}", clock.get(part, 0.0)) for part in ENRICH_PARTS)
    lines.append(line("other", total - sum(clock.get(p, 0.0) for p in PHASES)))
    lines.append(
        f"typed-decode floor: {floor:.2f} CPU-s, {1e6 * floor / events:.2f} µs/event "
        f"({events / floor:,.0f} events per CPU-second); engine / floor {floor / total:.2f}x"
    )
    return lines


def main(argv: list[str]) -> int:
    from bench.validate.run import describe, generate

    parser = argparse.ArgumentParser(prog="bench.validate.phases")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument(
        "--input", type=Path, default=None, help="the raw objects of a `bench validate --keep` run"
    )
    parser.add_argument("--cpu", type=int, default=0, help="the one core to run on (default 0)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.cpu})
    with tempfile.TemporaryDirectory(prefix="bench-validate-phases-") as tmp:
        if args.input is not None:
            paths = describe(args.input)[0]
        else:
            paths = generate(args.events, args.objects, Path(tmp) / "raw")[0]
        out = Path(tmp) / "out"
        out.mkdir()
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for text in report(*profile(paths, out)):
            print(text)
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
