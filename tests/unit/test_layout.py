"""The layout's rules, checked on the source: what may import what, and how long a product function may be."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src"
PRODUCT = SRC / "clickstream"
STEPS = ("plan", "sessionize", "load", "aggregate", "commit")
LONG_FUNCTION_LINES = 60  # code lines, docstring excluded
LENGTH_REASON = "Length:"  # how a longer function's docstring says why it is one piece


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", _modules(PRODUCT), ids=lambda p: str(p.relative_to(SRC)))
def test_the_product_never_imports_the_cli_or_the_laptop_stack(path):
    leaked = {
        n for n in _imports(path) if n.split(".")[0] in ("clickstream_cli", "clickstream_local", "moto")
    }
    assert not leaked, f"{path.relative_to(SRC)} imports {sorted(leaked)}"


@pytest.mark.parametrize("path", _modules(PRODUCT), ids=lambda p: str(p.relative_to(SRC)))
def test_only_adapters_import_boto3_or_a_warehouse_driver(path):
    if path.parent.name == "adapters":
        return
    drivers = {n for n in _imports(path) if n.split(".")[0] in ("boto3", "botocore", "psycopg")}
    assert not drivers, f"{path.relative_to(SRC)} imports {sorted(drivers)}: go through clickstream.adapters"


@pytest.mark.parametrize("step", STEPS)
def test_a_pipeline_step_imports_no_other_step(step):
    path = PRODUCT / "pipeline" / f"{step}.py"
    others = {f"clickstream.pipeline.{s}" for s in STEPS if s != step}
    assert not (_imports(path) & others), f"pipeline/{step}.py imports another step"


def _long_functions(root: Path) -> list[str]:
    found = []
    for path in _modules(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = ast.get_docstring(node) or ""
            body = node.body[1:] if doc else node.body
            if not body:
                continue
            assert node.end_lineno is not None
            lines = node.end_lineno - body[0].lineno + 1
            if lines > LONG_FUNCTION_LINES and LENGTH_REASON not in doc:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_product_functions_are_short_or_say_why_not():
    # A function of more than LONG_FUNCTION_LINES code lines says in its docstring why it is one piece.
    assert _long_functions(PRODUCT) == []
