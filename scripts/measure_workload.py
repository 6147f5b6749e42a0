"""Measure what an hour of the store's traffic costs the stack in requests and bytes, for ``clickstream cost``.

``.venv/bin/python scripts/measure_workload.py [--events 2000 20000]``: runs ``clickstream_local.workload.measure_hour``
for each size (a generated hour posted through the real ingest handler, validated and run through the real state
machine on the laptop stack) and writes the figures to ``src/clickstream_cli/cost/workload.json``'s ``measured``
section. Re-run it after a change to what the functions write or call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clickstream_local.workload import write_measurement

WORKLOAD = Path(__file__).resolve().parents[1] / "src/clickstream_cli/cost/workload.json"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[2_000, 20_000])
    args = parser.parse_args(argv)
    write_measurement(WORKLOAD, tuple(args.events))
    print(f"wrote {WORKLOAD}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
