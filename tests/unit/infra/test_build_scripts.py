"""scripts/compile_build.py and scripts/check_build.py on small fake ``sam build`` outputs."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


compile_build = _script("compile_build")
check_build = _script("check_build")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


BUILT_TEMPLATE = """\
Parameters:
  SessionTimeoutMinutes:
    Type: Number
    Default: 30
Globals:
  Function:
    Runtime: python3.12
    MemorySize: 256
    Environment:
      Variables:
        SESSION_TIMEOUT_MINUTES: !Ref SessionTimeoutMinutes
        RAW_BUCKET:
          Ref: RawBucket
        POWERTOOLS_SERVICE_NAME: clickstream
Resources:
  IngestFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: IngestFunction
      Handler: app.lambda_handler
      Layers:
        - !Ref DomainLayer
  ValidateFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ValidateFunction
      Handler: app.lambda_handler
      Layers:
        - Ref: DomainLayer
        - Ref: DataLayer
  DomainLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: DomainLayer
  DataLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: DataLayer
"""

INGEST_OK = """\
import os
import clickstream

assert os.environ["SESSION_TIMEOUT_MINUTES"] == "30", os.environ["SESSION_TIMEOUT_MINUTES"]
assert os.environ["RAW_BUCKET"].startswith("check-build-")
assert os.environ["AWS_LAMBDA_FUNCTION_NAME"] == "IngestFunction"


def lambda_handler(event, context):
    return {"statusCode": 202}
"""

VALIDATE_OK = """\
import duckdb


def lambda_handler(event, context):
    return {"batchItemFailures": []}
"""


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A fake build: ingest (domain layer), validate (domain + data layer with a stand-in ``duckdb``)."""
    root = tmp_path / "build"
    _write(root / "template.yaml", BUILT_TEMPLATE)
    _write(root / "IngestFunction" / "app.py", INGEST_OK)
    _write(root / "ValidateFunction" / "app.py", VALIDATE_OK)
    _write(root / "DomainLayer" / "python" / "clickstream" / "__init__.py", "NAME = 'clickstream'\n")
    _write(root / "DataLayer" / "python" / "duckdb" / "__init__.py", "VERSION = 'stand-in'\n")
    return root


def _run_check(build: Path, *extra: str) -> int:
    return check_build.main([str(build), "--python", sys.executable, "--repeat", "1", *extra])


# ---------------------------------------------------------------------------------------------- check_build
def test_check_build_passes_a_sound_build_and_prints_the_table(build, capsys):
    # Given a build whose handlers import with their own layers
    # When it is checked
    code = _run_check(build)
    out = capsys.readouterr().out
    # Then it passes and reports every function with its layers, size and import time
    assert code == 0, out
    assert "IngestFunction" in out and "ValidateFunction" in out
    assert "Domain,Data" in out
    assert "2 of 2 functions import cleanly" in out
    assert "no layer ships the harness" in out


def test_check_build_reads_layers_and_environment_from_the_built_template(build):
    functions = {f.logical_id: f for f in check_build.built_functions(build)}
    assert [name for name, _ in functions["ValidateFunction"].layers] == ["DomainLayer", "DataLayer"]
    assert functions["IngestFunction"].environment["SESSION_TIMEOUT_MINUTES"] == "30"
    assert functions["IngestFunction"].environment["POWERTOOLS_SERVICE_NAME"] == "clickstream"
    assert functions["IngestFunction"].memory == 256


def test_check_build_fails_when_ingest_loads_a_heavy_engine(build, capsys):
    # Given an ingest handler that (through its own layer) imports duckdb at import time
    _write(build / "DomainLayer" / "python" / "duckdb" / "__init__.py", "")
    _write(build / "IngestFunction" / "app.py", "import duckdb\n\ndef lambda_handler(e, c):\n    return {}\n")
    # When the build is checked / Then it fails and names the module
    assert _run_check(build) == 1
    assert "IngestFunction: import loaded duckdb" in capsys.readouterr().err


def test_check_build_fails_when_any_function_loads_pyarrow(build, capsys):
    _write(build / "DataLayer" / "python" / "pyarrow" / "__init__.py", "")
    _write(
        build / "ValidateFunction" / "app.py", "import pyarrow\n\ndef lambda_handler(e, c):\n    return {}\n"
    )
    assert _run_check(build) == 1
    assert "ValidateFunction: import loaded pyarrow" in capsys.readouterr().err


def test_check_build_fails_when_a_module_is_missing_from_the_layers(build, capsys):
    # Given an ingest handler that needs duckdb, which its layers do not have
    _write(build / "IngestFunction" / "app.py", "import duckdb\n\ndef lambda_handler(e, c):\n    return {}\n")
    assert _run_check(build) == 1
    assert "No module named 'duckdb'" in capsys.readouterr().err


def test_check_build_fails_when_the_handler_is_not_callable(build, capsys):
    _write(build / "ValidateFunction" / "app.py", "lambda_handler = None\n")
    assert _run_check(build) == 1
    assert "app.lambda_handler is not a callable" in capsys.readouterr().err


def test_check_build_fails_when_the_handler_module_is_missing(build, capsys):
    (build / "ValidateFunction" / "app.py").unlink()
    assert _run_check(build) == 1
    assert "handler module app.py is missing" in capsys.readouterr().err


def test_check_build_fails_at_lambdas_unzipped_size_limit(build, capsys, monkeypatch):
    # Given a data layer that makes validate (function + its layers) the larger function, and a limit at its size
    _write(build / "DataLayer" / "python" / "duckdb" / "data.bin", "x" * 8192)
    size = sum(check_build.tree_size(build / d) for d in ("ValidateFunction", "DomainLayer", "DataLayer"))
    monkeypatch.setattr(check_build, "LAMBDA_UNZIPPED_LIMIT", size)
    # Then a function exactly at the limit fails; the smaller ingest function passes
    assert _run_check(build) == 1
    err = capsys.readouterr().err
    assert "ValidateFunction: unzipped size" in err
    assert "IngestFunction:" not in err


def test_runtime_packages_come_from_the_stand_in_only(build, tmp_path, capsys):
    # Given an ingest handler importing boto3, which Lambda's runtime provides but no layer does
    _write(build / "IngestFunction" / "app.py", "import boto3\n\ndef lambda_handler(e, c):\n    return {}\n")
    env = tmp_path / "runtime-env"
    _write(env / "lib" / "python3.12" / "site-packages" / "boto3" / "__init__.py", "")
    _write(env / "lib" / "python3.12" / "site-packages" / "pydantic" / "__init__.py", "")
    # When checked without the runtime stand-in / Then the import fails
    assert _run_check(build) == 1
    capsys.readouterr()
    # When checked with it / Then boto3 resolves
    assert _run_check(build, "--runtime-from", str(env)) == 0
    # And only runtime packages are exposed (a layer missing pydantic must not be masked)
    standin = check_build.runtime_standin(env, tmp_path / "standin")
    assert sorted(p.name for p in standin.iterdir()) == ["boto3"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("clickstream_local/__init__.py", "ships clickstream_local beside the clickstream package"),
        ("clickstream_cli/main.py", "ships clickstream_cli beside the clickstream package"),
        ("clickstream/generator/traffic.py", "ships clickstream/generator"),
        ("clickstream/tests/test_x.py", "ships clickstream/tests"),
    ],
)
def test_check_build_fails_when_the_domain_layer_ships_the_harness(build, capsys, path, reason):
    # Given a domain layer that carries a piece of the laptop stack, the CLI or tests
    _write(build / "DomainLayer" / "python" / path, "")
    # When the build is checked / Then it fails and names what ships
    assert _run_check(build) == 1
    assert f"layer DomainLayer {reason}" in capsys.readouterr().err


def test_check_build_fails_when_a_product_module_imports_the_harness(build, capsys):
    _write(
        build / "DomainLayer" / "python" / "clickstream" / "x.py", "from clickstream_local import runner\n"
    )
    assert _run_check(build) == 1
    assert "layer DomainLayer: clickstream/x.py imports clickstream_local" in capsys.readouterr().err


def test_the_domain_layer_makefile_copies_the_product_package_only(tmp_path):
    # Given the layer's build target, as sam build runs it (BuildMethod: makefile, ContentUri: src/)
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    artifacts = tmp_path / "DomainLayer"
    subprocess.run(
        [make, "-s", "-C", str(REPO_ROOT / "src"), "build-DomainLayer", f"ARTIFACTS_DIR={artifacts}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # Then the layer holds the clickstream package with its SQL files, no cache, and nothing of the harness
    assert sorted(p.name for p in (artifacts / "python").iterdir()) == ["clickstream"]
    assert (artifacts / "python" / "clickstream" / "pipeline" / "plan.py").is_file()
    assert list((artifacts / "python" / "clickstream").rglob("*.sql"))
    assert not list(artifacts.rglob("__pycache__"))
    assert check_build.harness_in_layer("DomainLayer", artifacts) == []


# ---------------------------------------------------------------------------------------------- compile_build
def _unchecked_hash_pyc(pyc: Path) -> bool:
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    return flags == 0b01  # hash-based, source not checked


def test_compile_build_prunes_runtime_packages_and_leftovers_and_compiles(tmp_path):
    # Given a build with a layer carrying botocore (pulled in by aws-xray-sdk) and editable-install metadata
    root = tmp_path / "build"
    layer = root / "RuntimeLayer" / "python"
    _write(layer / "botocore" / "__init__.py", "")
    (layer / "botocore-1.35.0.dist-info").mkdir()
    _write(layer / "wrapt" / "__init__.py", "X = 1\n")
    _write(layer / "clickstream.egg-info" / "PKG-INFO", "")
    _write(root / "IngestFunction" / "app.py", "def lambda_handler(e, c):\n    return 1\n")
    # When compiled
    assert compile_build.main([str(root)]) == 0
    # Then the runtime's packages and the leftovers are gone, the rest is compiled as unchecked-hash pycs
    assert not (layer / "botocore").exists() and not (layer / "botocore-1.35.0.dist-info").exists()
    assert not (layer / "clickstream.egg-info").exists()
    tag = sys.implementation.cache_tag
    pyc = layer / "wrapt" / "__pycache__" / f"__init__.{tag}.pyc"
    assert pyc.is_file() and _unchecked_hash_pyc(pyc)
    assert (root / "IngestFunction" / "__pycache__" / f"app.{tag}.pyc").is_file()
    assert not list(root.rglob("*.opt-*.pyc"))


def test_compile_build_removes_pycs_of_other_interpreters(tmp_path):
    root = tmp_path / "build"
    _write(root / "PlanFunction" / "app.py", "def lambda_handler(e, c):\n    return 1\n")
    stale = _write(root / "PlanFunction" / "__pycache__" / "app.cpython-39.pyc", "")
    assert compile_build.main([str(root)]) == 0
    assert not stale.exists()


def test_compile_build_fails_on_own_code_that_does_not_compile(tmp_path, capsys):
    root = tmp_path / "build"
    _write(root / "DomainLayer" / "python" / "clickstream" / "broken.py", "def (:\n")
    assert compile_build.main([str(root)]) == 1
    assert "broken.py" in capsys.readouterr().err


def test_compile_build_tolerates_third_party_files_that_do_not_compile(tmp_path):
    # Some wheels ship templates or Python 2 files that are never imported on 3.12
    root = tmp_path / "build"
    _write(root / "DataLayer" / "python" / "somelib" / "py2_only.py", "print 'hello'\n")
    _write(root / "DataLayer" / "python" / "somelib" / "__init__.py", "")
    assert compile_build.main([str(root)]) == 0


def test_compile_build_rejects_a_missing_build_dir(tmp_path):
    assert compile_build.main([str(tmp_path / "nope")]) == 2
