"""Ingest benchmark: cold-start import time and per-request latency, ours beside a plain Powertools peer.

``python -m bench ingest -- [--samples 7] [--requests 2000] [--build-dir .aws-sam/build] [--python python3.12]``

1. Import time, as a Lambda cold start pays it: a fresh python3.12 (``-I -S -B``) per sample imports the handler
   module with only what Lambda would put on ``sys.path``: the function directory, the layers from the built stack
   (``make build``), and the packages the runtime provides (boto3 & co., from ``.tools/sam``). The domain layer and
   the handler are refreshed from the working tree and byte-compiled as ``scripts/compile_build.py`` compiles the
   build, so the figure is the current code's. Median of ``--samples``.
   - ours: ``functions/ingest/app.py`` over the Domain + Runtime layers;
   - peer: ``bench/ingest/peer_app.py`` (APIGatewayRestResolver with enable_validation, Logger/Metrics/Tracer, a
     pydantic envelope model) over the same Runtime layer.
2. Latency of a 25-event request in-process (this interpreter), Firehose replaced by an in-memory sink on both
   sides, EMF metric and log lines going to /dev/null as to Lambda's log pipe; p50 / p99 over ``--requests``.

Goals: import <= 200 ms; p99 <= 5 ms. Prints ratios ours / peer (lower is better).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import glob
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
IMPORT_GOAL_MS = 200.0
P99_GOAL_MS = 5.0

_CHILD = r"""
import importlib, json, sys, time
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["path"]
t0, c0 = time.perf_counter(), time.process_time()
module = importlib.import_module("app")
ms, cpu_ms = (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0
assert callable(module.lambda_handler)
heavy = [m for m in ("duckdb", "pyarrow", "psycopg") if m in sys.modules]
print("@@" + json.dumps({"ms": ms, "cpu_ms": cpu_ms, "heavy": heavy}))
"""


def find_python312() -> str | None:
    """pyenv's python3.12 (its shims may not resolve in a subprocess), else one on PATH."""
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        root = os.path.expanduser("~/.pyenv")
    candidates = sorted(glob.glob(f"{root}/versions/3.12.*/bin/python3.12"))
    return candidates[-1] if candidates else shutil.which("python3.12")


def _compile_tree(python: str, root: Path) -> None:
    code = (
        "import compileall, py_compile, sys; compileall.compile_dir(sys.argv[1], quiet=2, force=True, "
        "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)"
    )
    subprocess.run([python, "-c", code, str(root)], check=True)


def _runtime_standin(into: Path) -> Path | None:
    """boto3, botocore & co. as the Lambda runtime provides them (symlinks into .tools/sam's environment)."""
    spec = importlib.util.spec_from_file_location("check_build", REPO / "scripts/check_build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    sam_env = REPO / ".tools/sam"
    return module.runtime_standin(sam_env if sam_env.is_dir() else None, into)


def prepare(build_dir: Path, python: str, work: Path) -> dict[str, list[str]]:
    """sys.path lists for ours and the peer, from the built runtime layer and the current sources."""
    runtime = build_dir / "RuntimeLayer" / "python"
    if not runtime.is_dir():
        raise SystemExit(f"{runtime} is missing: run `make build` first")
    domain = work / "domain" / "python"
    shutil.copytree(
        REPO / "src/clickstream",
        domain / "clickstream",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    ours_fn, peer_fn = work / "ingest", work / "peer"
    ours_fn.mkdir()
    peer_fn.mkdir()
    shutil.copy(REPO / "functions/ingest/app.py", ours_fn / "app.py")
    shutil.copy(REPO / "bench/ingest/peer_app.py", peer_fn / "app.py")
    for tree in (domain, ours_fn, peer_fn):
        _compile_tree(python, tree)
    back = _runtime_standin(work / "runtime")
    tail = [str(back)] if back else []
    return {
        "ours": [str(ours_fn), str(domain), str(runtime), *tail],
        "peer": [str(peer_fn), str(runtime), *tail],
    }


def lambda_env() -> dict[str, str]:
    return {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "IngestFunction",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        # Lambda's task root: Powertools' Tracer is on (it patches at import) only where it finds one, as
        # ``Tracing: Active`` runs the function.
        "LAMBDA_TASK_ROOT": "/var/task",
        "POWERTOOLS_SERVICE_NAME": "clickstream",
        "POWERTOOLS_METRICS_NAMESPACE": "Clickstream",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


def import_ms(python: str, path: list[str], samples: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of the handler's import over ``samples`` fresh interpreters."""
    times, cpu = [], []
    for _ in range(samples):
        proc = subprocess.run(
            [python, "-I", "-S", "-B", "-c", _CHILD, json.dumps({"path": path})],
            env=lambda_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        marker = proc.stdout.rfind("@@")
        if proc.returncode != 0 or marker < 0:
            raise SystemExit(f"import failed: {proc.stderr.strip()[-1500:]}")
        out = json.loads(proc.stdout[marker + 2 :])
        if out["heavy"]:
            raise SystemExit(f"the handler loaded {out['heavy']}")
        times.append(out["ms"])
        cpu.append(out["cpu_ms"])
    return statistics.median(times), statistics.median(cpu)


# -- latency ---------------------------------------------------------------------------------------------------
def request_event(n_events: int = 25) -> dict[str, Any]:
    sample = json.loads((REPO / "events/ingest_native.json").read_text(encoding="utf-8"))
    body = json.loads(sample["body"])
    kinds = ["page_view", "view_item", "add_to_cart", "page_ping", "search"]
    body["events"] = [
        {
            "event_id": f"6f1c2d3e-0000-4000-8000-{i:012d}",
            "event_type": kinds[i % len(kinds)],
            "occurred_at": f"2026-03-02T14:04:{10 + i:02d}.120Z",
            "page": {"url": f"https://shop.example.com/p/laptop-{i}", "referrer": "https://www.google.com/"},
            "items": [{"product_id": f"LAP-{i}", "name": "Zenbook 14", "price": 1299.0, "quantity": 1}],
            "properties": {"list": "search results", "position": i},
        }
        for i in range(n_events)
    ]
    event = copy.deepcopy(sample)
    event["body"] = json.dumps(body)
    return event


class _Context:
    function_name = "IngestFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction"
    aws_request_id = "bench"


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _stdout_to_devnull() -> Any:
    """Point file descriptor 1 at /dev/null (loggers hold their own reference to sys.stdout)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def latencies(handler: Any, event: dict, n: int, reset: Any) -> tuple[float, float]:
    ctx = _Context()
    samples = []
    with _stdout_to_devnull():
        for i in range(n + n // 10):
            reset()
            t0 = time.perf_counter()
            response = handler(event, ctx)
            elapsed = (time.perf_counter() - t0) * 1000.0
            if response["statusCode"] != 202:
                raise SystemExit(f"benchmark request refused: {response}")
            if i >= n // 10:  # the first tenth warms up
                samples.append(elapsed)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


class MemorySink:
    """Firehose replaced by a list (the same on both sides: the network call is not what is compared)."""

    def __init__(self) -> None:
        self.records: list[bytes] = []

    def put_records(self, records: list[bytes]) -> None:
        self.records.extend(records)


def measure_latency(n: int) -> dict[str, tuple[float, float]]:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from clickstream.ingest.sink import set_sink

    event = request_event()
    memory = MemorySink()
    set_sink(memory)
    try:
        ours = _load(REPO / "functions/ingest/app.py", "bench_ingest_app")
        ours_figures = latencies(ours.lambda_handler, event, n, memory.records.clear)
    finally:
        set_sink(None)
    peer = _load(REPO / "bench/ingest/peer_app.py", "bench_ingest_peer")
    peer_figures = latencies(peer.lambda_handler, event, n, peer.SINK.clear)
    return {"ours": ours_figures, "peer": peer_figures}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples", type=int, default=7, help="fresh interpreters per import figure (median)"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per latency figure")
    parser.add_argument("--build-dir", type=Path, default=REPO / ".aws-sam/build")
    parser.add_argument("--python", default=None, help="python3.12 for the import figures (default: found)")
    args = parser.parse_args(argv)

    python = args.python or find_python312()
    print("ingest benchmark")
    if python is None:
        print("  import: skipped (no python3.12 found; pass --python)")
        imports = None
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            paths = prepare(args.build_dir, python, Path(tmp))
            imports = {name: import_ms(python, path, max(5, args.samples)) for name, path in paths.items()}
        (ours, ours_cpu), (peer, peer_cpu) = imports["ours"], imports["peer"]
        verdict = "meets" if ours <= IMPORT_GOAL_MS else "MISSES"
        print(
            f"  import (python3.12, built layers, tracing on, median of {max(5, args.samples)}): ours {ours:.0f} ms"
            f" ({ours_cpu:.0f} ms CPU), peer {peer:.0f} ms ({peer_cpu:.0f} ms CPU), ratio {ours / peer:.2f}"
            f" (CPU {ours_cpu / peer_cpu:.2f})  [{verdict} the {IMPORT_GOAL_MS:.0f} ms goal]"
        )
    lat = measure_latency(args.requests)
    (o50, o99), (p50, p99) = lat["ours"], lat["peer"]
    verdict = "meets" if o99 <= P99_GOAL_MS else "MISSES"
    print(
        f"  25-event request ({sys.implementation.name} {sys.version.split()[0]}, {args.requests} requests, sink"
        f" in memory): ours p50 {o50:.2f} ms p99 {o99:.2f} ms; peer p50 {p50:.2f} ms p99 {p99:.2f} ms;"
        f" ratio p50 {o50 / p50:.2f} p99 {o99 / p99:.2f}  [{verdict} the {P99_GOAL_MS:.0f} ms p99 goal]"
    )
    return 0 if (imports is None or imports["ours"][0] <= IMPORT_GOAL_MS) and o99 <= P99_GOAL_MS else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
