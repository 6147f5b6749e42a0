"""Writing the outputs: validated rows as Parquet (DuckDB, no pyarrow) and quarantine entries as JSON lines.

Every validated Parquet file is written by ``copy_parquet`` (a query copied to zstd Parquet), whatever judged the
object. The Python judge's rows reach DuckDB as JSON lines (``write_parquet``): ``json`` escapes every character a
JSON string cannot hold raw, and DuckDB reads them back with the exact column types of ``VALIDATED_COLUMNS`` (no
sniffing), so no value can fail the read; free text has already had its control characters replaced and no string
holds a lone surrogate (``text``). The engine copies its own tables, to which it adds the judge's rows for the
records it leaves to the judge as typed column lists (``load_rows``). Rows never carry empty strings: absent text is
None.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from clickstream.core.schema import VALIDATED_COLUMN_NAMES, VALIDATED_COLUMNS
from clickstream.core.sql import literal as _sql_literal

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
JSONL_CONTENT_TYPE = "application/x-ndjson"


def _columns_struct() -> str:
    return (
        "{" + ", ".join(f"{_sql_literal(name)}: {_sql_literal(typ)}" for name, typ in VALIDATED_COLUMNS) + "}"
    )


_ROW_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@lru_cache(maxsize=1)
def _engine() -> Any:
    """One in-memory DuckDB per process (a Lambda container handles many objects; each gets its own cursor).

    One thread: objects are judged one at a time, scans then keep the file's order (records are numbered by it),
    and outputs are byte-for-byte deterministic. Temp tables that outgrow memory spill under the system temp
    folder (``/tmp`` in Lambda; DuckDB's default, ``.tmp`` in the working directory, is read-only there). The
    validation macros are created here, once per process."""
    import tempfile

    import duckdb  # only the validate step pays for it

    from clickstream.validate.sql import MACROS

    spill = Path(tempfile.gettempdir()) / "clickstream-duckdb"
    con = duckdb.connect(
        config={"threads": 1, "preserve_insertion_order": True, "temp_directory": str(spill)}
    )
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute(MACROS)
    return con


def duckdb_cursor() -> Any:
    """A cursor of the process's DuckDB (UTC): its own temp tables, dropped when it is closed."""
    cursor = _engine().cursor()
    cursor.execute("SET TimeZone = 'UTC'")
    return cursor


def load_rows(
    con: Any,
    table: str,
    rows: Sequence[tuple[Any, ...]],
    columns: Sequence[tuple[str, str]] = VALIDATED_COLUMNS,
) -> None:
    """Create the temp table ``table`` (``columns``) holding ``rows``: one INSERT of typed column lists (text as
    text, timestamps as ISO-8601 strings cast by DuckDB)."""
    con.execute(f"CREATE TEMP TABLE {table} ({', '.join(f'{n} {t}' for n, t in columns)})")
    if rows:
        values = [list(col) for col in zip(*rows, strict=True)]
        select = ", ".join(f"unnest(${i + 1})::{t}" for i, (_, t) in enumerate(columns))
        con.execute(f"INSERT INTO {table} SELECT {select}", values)


def copy_parquet(con: Any, query: str, path: Path) -> Path:
    """Write the rows of ``query`` to a zstd Parquet file at ``path`` (the one way validated Parquet is written)."""
    con.execute(f"COPY ({query}) TO {_sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)")
    return path


def write_parquet(rows: Iterable[tuple[Any, ...]], path: Path) -> Path:
    """Write rows (VALIDATED_COLUMNS order) to a zstd Parquet file at ``path``; timestamps UTC, microseconds.

    The rows go through a JSON-lines file beside ``path`` (measured on 14,772 rows: 0.37 s of CPU, against 0.48 s
    for the same rows handed over as typed column lists)."""
    staging = path.with_suffix(".jsonl")
    encode = _ROW_JSON.encode
    data = "\n".join([encode(dict(zip(VALIDATED_COLUMN_NAMES, row, strict=True))) for row in rows]).encode()
    staging.write_bytes(data)
    con = duckdb_cursor()  # a cursor of one per-process database: no start-up cost per object
    try:
        return copy_parquet(
            con,
            f"SELECT * FROM read_json({_sql_literal(str(staging))}, format = 'newline_delimited', "
            f"columns = {_columns_struct()}, maximum_object_size = {len(data) + 1})",
            path,
        )
    finally:
        con.close()
        staging.unlink(missing_ok=True)


# Characters a JSON text may hold raw inside a string but that some line readers take for a line break (Python's
# str.splitlines, JavaScript before ES2019): written escaped, so a quarantine line is one line to every reader.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def quarantine_jsonl(entries: Iterable[dict[str, Any]], quarantined_at: str) -> bytes:
    """Quarantine entries as JSON lines, each stamped with ``quarantined_at``."""
    lines = [
        json.dumps(
            {**entry, "quarantined_at": quarantined_at},
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        ).translate(_LINE_BREAKS)
        for entry in entries
    ]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
