"""Run the benchmarks: ``python -m bench [NAME ...]`` (default: all). Each lives in ``bench/<name>/run.py``
with a ``main(argv) -> int``; extra arguments after ``--`` go to every benchmark."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if (here / m.name / "run.py").exists())


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}",
            file=sys.stderr,
        )
        return 2
    status = 0
    for name in names:
        print(f"== bench/{name}")
        status |= importlib.import_module(f"bench.{name}.run").main(extra) or 0
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
