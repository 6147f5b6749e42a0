"""Tidy and byte-compile what ``sam build`` produced, so Lambda cold starts do not compile Python on every start.

Run under python3.12 (the Lambda runtime): a ``.pyc`` is only read by the interpreter version that wrote it.

1. Prune packages the Lambda runtime already provides (boto3, botocore, s3transfer). Nothing in
   ``layers/*/requirements.txt`` asks for them, but ``aws-xray-sdk`` (Powertools' tracer extra) depends on
   botocore, which would put ~80 MB of a second, shadowing botocore into the runtime layer.
2. Drop build leftovers: the ``*.egg-info`` of an editable install that reached a layer, and stray
   ``__pycache__`` written by other interpreters.
3. Compile every ``.py`` to ``__pycache__/<name>.cpython-312.pyc`` at optimization level 0 (Lambda runs
   ``python3.12`` without ``-O``, so ``.opt-1``/``.opt-2`` files would never be read) as *unchecked-hash* pycs:
   the interpreter uses them without comparing the source's mtime, which a zip round trip does not preserve
   exactly (zip stores times at 2 s resolution), so timestamp pycs could be silently ignored in Lambda.

Usage: ``python3.12 scripts/compile_build.py .aws-sam/build``
Exits non-zero when a file of the project's own code (a function, or the ``clickstream`` package) fails to compile.
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import re
import shutil
import sys
from importlib.util import cache_from_source
from pathlib import Path

RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
OWN_PACKAGE = "clickstream"


def artifact_dirs(build_dir: Path) -> list[Path]:
    """The function and layer directories ``sam build`` wrote (one per logical id)."""
    return sorted(p for p in build_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _site_dirs(artifact: Path) -> list[Path]:
    """Where packages sit in an artifact: a layer's ``python/``, or the function directory itself."""
    python = artifact / "python"
    return [python] if python.is_dir() else [artifact]


def _dist_name(dist_info: str) -> str:
    return re.split(r"-\d", dist_info, maxsplit=1)[0].lower().replace("_", "-")


def prune_runtime_provided(artifact: Path, names: tuple[str, ...] = RUNTIME_PROVIDED) -> list[str]:
    """Remove packages the Lambda runtime ships (and their ``*.dist-info``); returns what was removed."""
    removed: list[str] = []
    wanted = {n.lower() for n in names}
    for site in _site_dirs(artifact):
        for entry in sorted(site.iterdir()):
            if entry.is_dir() and entry.name.lower() in wanted:
                shutil.rmtree(entry)
                removed.append(entry.name)
            elif entry.name.endswith(".dist-info") and _dist_name(entry.name) in wanted:
                shutil.rmtree(entry)
    return removed


def prune_leftovers(artifact: Path) -> list[str]:
    """Remove ``*.egg-info`` metadata and ``__pycache__`` entries written by another interpreter."""
    removed: list[str] = []
    for site in _site_dirs(artifact):
        for entry in sorted(site.glob("*.egg-info")):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry.name)
    tag = sys.implementation.cache_tag
    for pyc in artifact.rglob("__pycache__/*.pyc"):
        if f".{tag}." not in pyc.name:
            pyc.unlink()
            removed.append(str(pyc.relative_to(artifact)))
    return removed


def compile_artifact(artifact: Path) -> list[Path]:
    """Compile every ``.py`` under ``artifact``; returns the files that did not compile."""
    compileall.compile_dir(
        str(artifact),
        quiet=2,
        force=True,  # rewrite any timestamp pyc an installer left as an unchecked-hash one
        optimize=0,
        workers=0,  # one process per core
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return [py for py in artifact.rglob("*.py") if not os.path.exists(cache_from_source(str(py)))]


def is_own_code(artifact: Path, path: Path) -> bool:
    """Project code: anything in a function directory, or the domain package inside a layer."""
    rel = path.relative_to(artifact).parts
    if (artifact / "python").is_dir():
        return len(rel) > 1 and rel[1] == OWN_PACKAGE
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path, help="the directory sam build wrote (.aws-sam/build)")
    args = parser.parse_args(argv)

    if not args.build_dir.is_dir():
        print(f"{args.build_dir}: no such build directory (run sam build first)", file=sys.stderr)
        return 2
    failed_own: list[Path] = []
    for artifact in artifact_dirs(args.build_dir):
        pruned = prune_runtime_provided(artifact)
        leftovers = prune_leftovers(artifact)
        not_compiled = compile_artifact(artifact)
        n_pyc = sum(1 for _ in artifact.rglob("__pycache__/*.pyc"))
        notes = []
        if pruned:
            notes.append(f"pruned {', '.join(pruned)} (provided by the Lambda runtime)")
        if leftovers:
            notes.append(f"removed {len(leftovers)} build leftovers")
        if not_compiled:
            notes.append(f"{len(not_compiled)} files not compiled")
        print(f"{artifact.name:<22} {n_pyc:>6} pyc  {'; '.join(notes)}")
        for py in not_compiled:
            if is_own_code(artifact, py):
                failed_own.append(py)
    if failed_own:
        for py in failed_own:
            print(f"does not compile: {py}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
