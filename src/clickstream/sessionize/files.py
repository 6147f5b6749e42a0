"""Sessionize validated-event Parquet files into a directory (the ``clickstream sessionize`` contract).

Input files are combined by column name (a column missing in one file is null there). Known columns
(``core.schema.VALIDATED_COLUMNS``) are cast to their declared types: timestamps become UTC ``TIMESTAMPTZ`` with
microseconds (naive means UTC; nanoseconds are truncated), other columns pass through unchanged. The output
directory holds ``events.parquet`` (every kept event, all its input columns, plus ``session_id``) and
``sessions.parquet`` (``core.schema.SESSION_COLUMNS``), in no particular row order, and replaces any previous
directory only once complete.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from clickstream.core.errors import InputError
from clickstream.core.schema import SESSIONIZE_REQUIRED_COLUMNS, VALIDATED_COLUMNS
from clickstream.core.sql import PARQUET, identifier, literal
from clickstream.sessionize.rule import DuckDBOptions, Sessionizer, SessionRules, connect, one_row

_TYPES = dict(VALIDATED_COLUMNS)
EVENTS_FILE = "events.parquet"
SESSIONS_FILE = "sessions.parquet"


@dataclass(frozen=True)
class SessionizeSummary:
    n_input: int
    n_events: int
    n_sessions: int
    n_duplicates: int
    n_conflicts: int


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def cast_expr(name: str, actual_type: str) -> str:
    """``name`` as its declared type (unknown columns unchanged); nanosecond timestamps truncate to µs."""
    declared = _TYPES.get(name)
    ref = identifier(name)
    if declared is None or actual_type == declared:
        return ref
    if declared == "TIMESTAMPTZ":
        if actual_type == "TIMESTAMP WITH TIME ZONE":
            return ref
        if actual_type.startswith("TIMESTAMP_NS"):
            return f"make_timestamp(epoch_ns({ref}) // 1000)::TIMESTAMPTZ AS {ref}"
        return f"{ref}::TIMESTAMPTZ AS {ref}"
    return f"{ref}::{declared} AS {ref}"


RID = "_cs_rid"  # the row identity of the input view: file number << 40 | row number in the file


def load_parquet(con: duckdb.DuckDBPyConnection, paths: Sequence[Path], view: str) -> dict[str, str]:
    """Create ``view`` over the files, normalized, with the row identity ``_cs_rid``; returns the input columns
    and their normalized types. A view, not a copy: each stage reads only the columns it needs. Raises
    InputError."""
    for path in paths:
        if not path.is_file():
            raise InputError(f"cannot read {path}: no such file")
    names = [literal(p) for p in paths]
    files = "[" + ", ".join(names) + "]"
    options = ", union_by_name = true, file_row_number = true" + (
        ", filename = true" if len(paths) > 1 else ""
    )
    scan = f"read_parquet({files}{options})"
    try:
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({files}, union_by_name = true)"
        ).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"cannot read input: {one_line(exc)}") from exc
    types = {row[0]: row[1] for row in described}
    missing = [name for name in SESSIONIZE_REQUIRED_COLUMNS if name not in types]
    if missing:
        raise InputError(f"missing required columns: {', '.join(missing)}")
    if RID in types:
        raise InputError(f"the input has a column named {RID}, which the sessionizer reserves")
    rid = (
        "file_row_number"
        if len(paths) == 1
        else f"(list_position({files}, filename)::BIGINT << 40) | file_row_number"
    )
    select = ", ".join(cast_expr(name, typ) for name, typ in types.items())
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {select}, {rid} AS {RID} FROM {scan}")
        (nulls,) = one_row(
            con,
            f"SELECT count(*) FROM {view} WHERE event_id IS NULL OR anonymous_id IS NULL OR event_ts IS NULL",
        )
    except duckdb.Error as exc:
        raise InputError(f"cannot read input: {one_line(exc)}") from exc
    if nulls:
        raise InputError(f"{nulls} input rows lack event_id, anonymous_id or event_ts")
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {view}").fetchall() if row[0] != RID}


def replace_dir(staged: Path, target: Path) -> None:
    """Move the finished ``staged`` directory to ``target``, replacing an existing directory."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        target.rename(old)
        staged.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staged.rename(target)


def sessionize_files(
    inputs: Sequence[Path],
    out_dir: Path,
    rules: SessionRules | None = None,
    options: DuckDBOptions | None = None,
) -> SessionizeSummary:
    """Read ``inputs``, sessionize them, and create or replace ``out_dir`` with the two Parquet files."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} exists and is not a directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        con = connect(options)
        try:
            columns = load_parquet(con, [Path(p) for p in inputs], "_cs_input")
            engine = Sessionizer(con, "_cs_input", columns, rules, rid=RID)
            engine.run()
            con.execute(
                f"COPY (SELECT * EXCLUDE (_t, _ord, _start) FROM {engine.events})"
                f" TO {literal(staged / EVENTS_FILE)} {PARQUET}"
            )
            # Neither file promises a row order: sorting 10M events' sessions cost about a tenth of the run.
            con.execute(f"COPY {engine.sessions} TO {literal(staged / SESSIONS_FILE)} {PARQUET}")
            (n_input,) = one_row(con, "SELECT count(*) FROM _cs_input")
            (n_events,) = one_row(con, f"SELECT count(*) FROM {engine.assign}")
            (n_sessions,) = one_row(con, f"SELECT count(*) FROM {engine.sessions}")
            n_dup, n_conflict = one_row(
                con,
                f"SELECT count(*) FILTER (WHERE drop_reason = 'duplicate'),"
                f" count(*) FILTER (WHERE drop_reason = 'duplicate_conflict') FROM {engine.drops}",
            )
        finally:
            con.close()
        replace_dir(staged, out_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return SessionizeSummary(n_input, n_events, n_sessions, n_dup, n_conflict)
