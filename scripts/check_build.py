"""Import every built Lambda handler as Lambda would, so a packaging mistake fails CI instead of production.

For each function in the built template (``.aws-sam/build/template.yaml``), in a fresh ``python3.12 -I -S``
(no site-packages, no user paths) whose ``sys.path`` is the function's directory, then each of its layers'
``python/`` directories, then a stand-in for what the Lambda runtime itself ships (boto3 and its dependencies,
taken from ``--runtime-from``, a python3.12 environment that has them):

* set the environment a Lambda would have (the template's variables with parameter defaults or dummy values,
  ``AWS_REGION``, ``AWS_LAMBDA_FUNCTION_NAME`` …), import the handler's module and check the handler is callable;
* check what the import loaded: the ingest path must not load DuckDB, pyarrow or psycopg (cold start; it has no
  data layer), and no function may load pyarrow or pandas;
* add up the unzipped size of the function and its layers: Lambda refuses 250 MB or more;
* check that the layer with the product package holds that package only: no operator CLI (``clickstream_cli``),
  no laptop stack (``clickstream_local``, its traffic generator, moto), no tests, and no module of it importing them.

Prints a table (function, layers, MB, import ms) and exits non-zero on any failure.

Usage: ``python scripts/check_build.py .aws-sam/build [--python python3.12] [--runtime-from .tools/sam]``
(needs PyYAML in the interpreter that runs it; the handlers are imported by ``--python``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # 250 MiB: function code and all its layers, unzipped
MB = 1024 * 1024
REGION = "us-east-1"
# Functions on the latency-critical path: they must not load the heavy engines at import.
LIGHT_FUNCTIONS = frozenset({"IngestFunction"})
HEAVY_MODULES = ("duckdb", "pyarrow", "psycopg", "psycopg_binary", "pandas")
NEVER_MODULES = ("pyarrow", "pandas")
# The product package: the only thing the layer that ships it may hold. The rest of the repository's Python (the
# operator CLI, the laptop stack with its traffic generator and moto bridge, the tests) never reaches Lambda.
PRODUCT_PACKAGE = "clickstream"
HARNESS_NAMES = frozenset({"clickstream_cli", "clickstream_local", "generator", "tests", "moto"})
_HARNESS_IMPORT = re.compile(
    r"^\s*(?:from|import)\s+(clickstream_cli|clickstream_local|moto)\b", re.MULTILINE
)
# What the Lambda python3.12 runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

_CHILD = r"""
import importlib, json, sys, time, traceback
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["front"]
sys.path.extend(spec["back"])
out = {"ok": False}
t0 = time.perf_counter()
try:
    module = importlib.import_module(spec["module"])
    out["import_ms"] = (time.perf_counter() - t0) * 1000.0
    handler = getattr(module, spec["attr"], None)
    out["callable"] = callable(handler)
    out["ok"] = True
except BaseException:
    out["error"] = traceback.format_exc(limit=8)
out["modules"] = sorted({name.split(".")[0] for name in sys.modules})
print("\n@@RESULT@@" + json.dumps(out))
"""


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation short-form tags turned into their long form."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _tag)


@dataclass
class BuiltFunction:
    logical_id: str
    code_dir: Path
    handler: str
    layers: list[tuple[str, Path]]
    environment: dict[str, str]
    memory: int


@dataclass
class Result:
    function: BuiltFunction
    size_bytes: int = 0
    import_ms: float | None = None
    failures: list[str] = field(default_factory=list)


def load_built_template(build_dir: Path) -> dict[str, Any]:
    with open(build_dir / "template.yaml", encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)  # a SafeLoader subclass


def _resolve(value: Any, parameters: dict[str, Any]) -> str:
    """A plausible string for an environment value: literal, parameter default, or a dummy for a resource."""
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name in parameters:
            return str(parameters[name].get("Default", ""))
        if name == "AWS::Region":
            return REGION
        return f"check-build-{str(name).lower()}"
    return "check-build-value"


def built_functions(build_dir: Path) -> list[BuiltFunction]:
    build_dir = build_dir.resolve()
    template = load_built_template(build_dir)
    resources = template.get("Resources", {})
    parameters = template.get("Parameters", {}) or {}
    globals_fn = (template.get("Globals") or {}).get("Function", {}) or {}
    global_env = ((globals_fn.get("Environment") or {}).get("Variables")) or {}
    out: list[BuiltFunction] = []
    for logical_id, res in sorted(resources.items()):
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        layers: list[tuple[str, Path]] = []
        for ref in list(globals_fn.get("Layers", [])) + list(props.get("Layers", [])):
            layer_id = ref.get("Ref") if isinstance(ref, dict) else None
            layer = resources.get(layer_id or "", {})
            if layer.get("Type") != "AWS::Serverless::LayerVersion":
                raise ValueError(f"{logical_id}: layer {ref!r} is not a layer built by this template")
            layers.append((layer_id, build_dir / layer["Properties"]["ContentUri"]))
        env_values = {**global_env, **(((props.get("Environment") or {}).get("Variables")) or {})}
        out.append(
            BuiltFunction(
                logical_id=logical_id,
                code_dir=build_dir / props.get("CodeUri", logical_id),
                handler=props.get("Handler", globals_fn.get("Handler", "")),
                layers=layers,
                environment={k: _resolve(v, parameters) for k, v in env_values.items()},
                memory=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
            )
        )
    return out


def tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def runtime_standin(source_env: Path | None, into: Path) -> Path | None:
    """A directory with only the runtime-provided packages of ``source_env`` (symlinked), or None."""
    if source_env is None:
        return None
    candidates = sorted(source_env.glob("lib/python3.*/site-packages"))
    if not candidates:
        raise FileNotFoundError(f"{source_env}: no lib/python3.*/site-packages")
    site = candidates[0]
    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        src = site / name
        if src.exists():
            (into / name).symlink_to(src.resolve())
    return into


def lambda_environment(fn: BuiltFunction) -> dict[str, str]:
    env = dict(fn.environment)
    env.update(
        {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "check-build",
            "AWS_SECRET_ACCESS_KEY": "check-build",
            "AWS_SESSION_TOKEN": "check-build",
            "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
    )
    return env


def import_once(python: str, fn: BuiltFunction, back: list[str]) -> dict[str, Any]:
    module, _, attr = fn.handler.rpartition(".")
    spec = {
        "front": [str(fn.code_dir)] + [str(path / "python") for _, path in fn.layers],
        "back": back,
        "module": module,
        "attr": attr,
    }
    proc = subprocess.run(
        # -B: measure the build as shipped and never add pycs to it.
        [python, "-I", "-S", "-B", "-c", _CHILD, json.dumps(spec)],
        cwd=fn.code_dir,
        env=lambda_environment(fn),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    marker = proc.stdout.rfind("@@RESULT@@")
    if marker < 0:
        return {"ok": False, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}", "modules": []}
    return json.loads(proc.stdout[marker + len("@@RESULT@@") :])


def check_function(python: str, fn: BuiltFunction, back: list[str], repeat: int) -> Result:
    result = Result(function=fn)
    if not fn.code_dir.is_dir():
        result.failures.append(f"code directory {fn.code_dir} is missing")
        return result
    for name, path in fn.layers:
        if not (path / "python").is_dir():
            result.failures.append(f"layer {name} has no python/ directory at {path}")
    result.size_bytes = tree_size(fn.code_dir) + sum(tree_size(path) for _, path in fn.layers)
    if result.size_bytes >= LAMBDA_UNZIPPED_LIMIT:
        result.failures.append(
            f"unzipped size {result.size_bytes / MB:.1f} MB is at or over Lambda's limit "
            f"({LAMBDA_UNZIPPED_LIMIT / MB:.0f} MB for the function and its layers)"
        )
    module_file = fn.code_dir / (fn.handler.rpartition(".")[0].replace(".", "/") + ".py")
    if not module_file.is_file():
        result.failures.append(f"handler module {module_file.name} is missing (Handler: {fn.handler})")
        return result

    timings: list[float] = []
    for _ in range(max(1, repeat)):
        out = import_once(python, fn, back)
        if not out.get("ok"):
            result.failures.append(f"import failed:\n{out.get('error', '').rstrip()}")
            return result
        if not out.get("callable"):
            result.failures.append(f"{fn.handler} is not a callable")
        timings.append(float(out["import_ms"]))
        loaded = set(out.get("modules", []))
        forbidden = HEAVY_MODULES if fn.logical_id in LIGHT_FUNCTIONS else NEVER_MODULES
        leaked = sorted(loaded.intersection(forbidden))
        if leaked:
            result.failures.append(f"import loaded {', '.join(leaked)}")
            return result
    result.import_ms = statistics.median(timings)
    return result


def harness_in_layer(name: str, layer: Path) -> list[str]:
    """Why ``layer`` ships more than the product package, if it holds it (an empty list when it is clean)."""
    python = layer / "python"
    if not (python / PRODUCT_PACKAGE).is_dir():
        return [f"layer {name} ships {entry}" for entry in sorted(HARNESS_NAMES) if (python / entry).exists()]
    failures = [
        f"layer {name} ships {entry.name} beside the {PRODUCT_PACKAGE} package"
        for entry in sorted(python.iterdir())
        if entry.name != PRODUCT_PACKAGE
    ]
    for path in sorted((python / PRODUCT_PACKAGE).rglob("*")):
        rel = path.relative_to(python).as_posix()
        if path.name in HARNESS_NAMES:
            failures.append(f"layer {name} ships {rel}")
        elif path.suffix == ".py" and (match := _HARNESS_IMPORT.search(path.read_text(encoding="utf-8"))):
            failures.append(f"layer {name}: {rel} imports {match.group(1)}")
    return failures


def check_layers(functions: list[BuiltFunction]) -> list[str]:
    """:func:`harness_in_layer` over every layer the functions use, once each."""
    layers = {name: path for fn in functions for name, path in fn.layers}
    return [failure for name, path in sorted(layers.items()) for failure in harness_in_layer(name, path)]


def render(results: list[Result]) -> str:
    header = f"{'function':<22} {'layers':<36} {'MB':>7} {'import ms':>10}  status"
    lines = [header, "-" * len(header)]
    for r in results:
        layers = ",".join(name.removesuffix("Layer") for name, _ in r.function.layers) or "-"
        ms = f"{r.import_ms:.0f}" if r.import_ms is not None else "-"
        status = "ok" if not r.failures else "FAIL"
        lines.append(f"{r.function.logical_id:<22} {layers:<36} {r.size_bytes / MB:>7.1f} {ms:>10}  {status}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--python", default=sys.executable, help="interpreter the handlers are imported with")
    parser.add_argument(
        "--runtime-from",
        type=Path,
        default=None,
        help="a python3.12 environment providing boto3 (as Lambda does)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="imports per function (the median is shown)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    if not (args.build_dir / "template.yaml").is_file():
        print(f"{args.build_dir}: no built template (run sam build first)", file=sys.stderr)
        return 2
    functions = built_functions(args.build_dir)
    if not functions:
        print("no functions in the built template", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="check-build-runtime-") as tmp:
        standin = runtime_standin(args.runtime_from, Path(tmp) / "runtime")
        back = [str(standin)] if standin else []
        results = [check_function(args.python, fn, back, args.repeat) for fn in functions]

    print(render(results))
    failed = [r for r in results if r.failures]
    for r in failed:
        for failure in r.failures:
            print(f"\n{r.function.logical_id}: {failure}", file=sys.stderr)
    layer_failures = check_layers(functions)
    for failure in layer_failures:
        print(f"\n{failure}", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "function": r.function.logical_id,
                        "layers": [name for name, _ in r.function.layers],
                        "size_mb": round(r.size_bytes / MB, 2),
                        "import_ms": r.import_ms,
                        "failures": r.failures,
                    }
                    for r in results
                ],
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    print(f"\ncheck-build: {len(results) - len(failed)} of {len(results)} functions import cleanly")
    print(f"check-build: {'no layer ships' if not layer_failures else 'a layer ships'} the harness")
    return 1 if failed or layer_failures else 0


if __name__ == "__main__":
    sys.exit(main())
