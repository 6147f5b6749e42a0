"""Shared fixtures: moto-backed stack resources, a real PostgreSQL, sample events."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from clickstream_local.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"


def load_event(name: str) -> dict:
    """A sample event from ``events/`` (the same files ``sam local invoke -e`` takes)."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach real AWS: fake credentials and a fixed region for every test."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Clickstream")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The stack's resources in moto (the laptop stack's one setup); yields ``LocalStack`` with its settings in the
    environment (set through ``monkeypatch``, so a test's own changes unwind in order)."""
    from clickstream_local.stack import local_settings, local_stack

    with local_stack(local_settings(), setenv=monkeypatch.setenv) as stack:
        yield stack


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL: ``CLICKSTREAM_TEST_PG_DSN`` when given, else a throw-away pgserver instance."""
    dsn = os.environ.get("CLICKSTREAM_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="clickstream-pg-") as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest.fixture
def pg_database(pg_dsn: str) -> Iterator[str]:
    """A fresh, empty database on the test server; yields its DSN."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_dbname(pg_dsn, name)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_dbname(dsn: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = name
    return make_conninfo(**params)
