"""Writing the outputs: validated rows as Parquet (DuckDB, no pyarrow) and quarantine entries as JSON lines.

Rows go to a CSV file written by the C ``csv`` module and DuckDB turns it into Parquet with the exact column
types of ``VALIDATED_COLUMNS`` (explicit schema, no sniffing). In that CSV an empty field is NULL, so rows
never carry empty strings (``enrich.build_row`` turns them into None: an empty referrer or title means "none").
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from clickstream.core.schema import VALIDATED_COLUMNS
from clickstream.core.sql import literal as _sql_literal

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
JSONL_CONTENT_TYPE = "application/x-ndjson"


def _columns_struct() -> str:
    return (
        "{" + ", ".join(f"{_sql_literal(name)}: {_sql_literal(typ)}" for name, typ in VALIDATED_COLUMNS) + "}"
    )


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


def write_parquet(rows: Iterable[tuple[Any, ...]], path: Path) -> Path:
    """Write rows (VALIDATED_COLUMNS order) to a zstd Parquet file at ``path``; timestamps UTC, microseconds."""
    staging = path.with_suffix(".csv")
    with open(staging, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    con = duckdb_cursor()  # a cursor of one per-process database: no start-up cost per object
    try:
        con.execute(
            f"COPY (SELECT * FROM read_csv({_sql_literal(str(staging))}, header = false, auto_detect = false, "
            f"columns = {_columns_struct()}, delim = ',', quote = '\"', escape = '\"', nullstr = '', "
            f"allow_quoted_nulls = false, strict_mode = true)) "
            f"TO {_sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()
        staging.unlink(missing_ok=True)
    return path


def quarantine_jsonl(entries: Iterable[dict[str, Any]], quarantined_at: str) -> bytes:
    """Quarantine entries as JSON lines, each stamped with ``quarantined_at``."""
    lines = [
        json.dumps(
            {**entry, "quarantined_at": quarantined_at},
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
        for entry in entries
    ]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
