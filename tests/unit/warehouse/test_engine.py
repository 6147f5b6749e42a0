"""Choosing the warehouse from a URL or a secret (no connection opened)."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from clickstream.core.config import Settings
from clickstream.warehouse.engine import (
    WarehouseError,
    dsn_from_secret,
    open_warehouse,
    warehouse_from_settings,
)


def test_duckdb_url_names_an_absolute_file(tmp_path):
    wh = open_warehouse(f"duckdb://{tmp_path}/sub/w.duckdb")
    assert (wh.dialect, wh.path) == ("duckdb", tmp_path / "sub" / "w.duckdb")


def test_duckdb_connect_creates_the_file_and_its_folder(tmp_path):
    wh = open_warehouse(f"duckdb://{tmp_path}/new/dir/w.duckdb")
    with wh.connect() as conn:
        assert conn.query("SELECT 1") == [(1,)]
    assert wh.path.exists()


def test_relative_duckdb_url_is_refused():
    with pytest.raises(WarehouseError, match="absolute path"):
        open_warehouse("duckdb://relative.duckdb")


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:p@h:5432/db", "postgres://u@h/db", "host=h dbname=db user=u"],
)
def test_postgresql_urls_and_conninfo_strings(url):
    wh = open_warehouse(url)
    assert (wh.dialect, wh.path) == ("postgresql", None)


def test_describe_never_shows_the_password():
    assert open_warehouse("postgresql://u:hunter2@h:5432/db").describe() == "postgresql://h:5432/db"


@pytest.mark.parametrize("url", ["mysql://h/db", "sqlite:///x.db", ""])
def test_unsupported_urls_are_refused(url):
    with pytest.raises(WarehouseError):
        open_warehouse(url)


def test_no_warehouse_configured_is_an_error():
    with pytest.raises(WarehouseError, match="WAREHOUSE_URL or WAREHOUSE_SECRET_ARN"):
        warehouse_from_settings(Settings())


def test_secret_dsn_gets_sslmode_require():
    assert conninfo_to_dict(dsn_from_secret("postgresql://u:p@db:5432/shop"))["sslmode"] == "require"


def test_secret_dsn_with_sslmode_keeps_it():
    assert conninfo_to_dict(dsn_from_secret("host=db dbname=shop sslmode=disable"))["sslmode"] == "disable"


def test_secret_json_defaults_port_and_database_and_accepts_dsn_key():
    params = conninfo_to_dict(dsn_from_secret('{"host": "db", "username": "u", "password": "p"}'))
    assert params == {
        "host": "db",
        "port": "5432",
        "user": "u",
        "password": "p",
        "dbname": "postgres",
        "sslmode": "require",
    }
    assert conninfo_to_dict(dsn_from_secret('{"dsn": "postgresql://u@db/x"}'))["dbname"] == "x"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ('{"host": ', "neither a DSN nor valid JSON"),
        ('{"engine": "mysql", "host": "db"}', "only PostgreSQL"),
        ('{"username": "u"}', "no host"),
    ],
)
def test_bad_secrets_are_refused_with_a_reason(secret, message):
    with pytest.raises(WarehouseError, match=message):
        dsn_from_secret(secret)


def test_unreachable_postgresql_is_a_transient_error(tmp_path):
    # Given a PostgreSQL URL whose server is not there (a socket directory with no server in it)
    from clickstream.core.errors import TransientError

    wh = open_warehouse(f"postgresql://nobody@/nodb?host={tmp_path}&connect_timeout=1")
    # When connecting, Then the step fails with the error the state machine retries
    with pytest.raises(TransientError, match="cannot connect to the warehouse"), wh.connect():
        pass
