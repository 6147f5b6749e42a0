"""Choosing the warehouse from a URL or a secret (no connection opened)."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from clickstream.adapters.warehouse import (
    WarehouseError,
    dsn_from_secret,
    open_warehouse,
    warehouse_from_settings,
)
from clickstream.core.config import Settings


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


def test_a_secret_never_weakens_the_configured_tls():
    # Given secrets that ask for no or weaker TLS than the stack's mode
    for secret in ("host=db dbname=shop sslmode=disable", '{"host": "db", "sslmode": "prefer"}'):
        # Then the stack's mode applies
        assert conninfo_to_dict(dsn_from_secret(secret))["sslmode"] == "require"
    assert conninfo_to_dict(dsn_from_secret(secret, sslmode="verify-full", sslrootcert="system"))[
        "sslmode"
    ] == ("verify-full")


def test_a_secret_with_a_stricter_mode_and_its_own_root_certificate_keeps_both():
    dsn = "host=db dbname=shop sslmode=verify-full sslrootcert=/opt/certs/own.pem"
    params = conninfo_to_dict(dsn_from_secret(dsn, sslmode="require", sslrootcert="/opt/certs/stack.pem"))
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", "/opt/certs/own.pem")


def test_verify_full_with_the_configured_root_certificate():
    # Given the stack's verify-full and the RDS bundle path, and an RDS-style secret
    params = conninfo_to_dict(
        dsn_from_secret(
            '{"host": "db.x.rds.amazonaws.com", "username": "u", "password": "p"}',
            sslmode="verify-full",
            sslrootcert="/opt/certs/global-bundle.pem",
        )
    )
    # Then the DSN verifies the server against that bundle
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", "/opt/certs/global-bundle.pem")


@pytest.mark.parametrize(
    ("secret", "sslmode"),
    [("host=db", "verify-full"), ("host=db", "verify-ca"), ("host=db sslmode=verify-full", "require")],
)
def test_verifying_tls_without_a_root_certificate_is_refused(secret, sslmode):
    with pytest.raises(WarehouseError, match="needs a root certificate"):
        dsn_from_secret(secret, sslmode=sslmode)


def test_unknown_tls_modes_are_refused():
    with pytest.raises(WarehouseError, match="unknown sslmode"):
        dsn_from_secret("host=db", sslmode="strict")
    with pytest.raises(WarehouseError, match="unknown sslmode"):
        dsn_from_secret("host=db sslmode=maybe")


def test_settings_carry_the_tls_choice_to_the_secret_dsn(aws):
    # Given a secret and settings asking for verify-full with a CA bundle
    from clickstream.adapters.aws import client

    arn = client("secretsmanager").create_secret(Name="wh-tls", SecretString="host=db dbname=shop")["ARN"]
    settings = Settings(
        warehouse_secret_arn=arn, warehouse_sslmode="verify-full", warehouse_sslrootcert="/opt/certs/b.pem"
    )
    # When the warehouse is resolved
    params = conninfo_to_dict(warehouse_from_settings(settings).target)
    # Then its DSN verifies the server with that bundle
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", "/opt/certs/b.pem")


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
