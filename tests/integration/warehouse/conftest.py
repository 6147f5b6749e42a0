"""The ``warehouse`` fixture: every test here runs on DuckDB and on a real PostgreSQL with the same expectations."""

from __future__ import annotations

import pytest

from clickstream.adapters.warehouse import Warehouse, open_warehouse
from clickstream.warehouse.migrate import migrate


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path) -> Warehouse:
    """An empty, migrated warehouse."""
    if request.param == "duckdb":
        wh = open_warehouse(f"duckdb://{tmp_path}/warehouse.duckdb")
    else:
        wh = open_warehouse(request.getfixturevalue("pg_database"))
    with wh.connect() as conn:
        migrate(conn)
    return wh
