"""SQL text in one place: literals, identifiers, COPY options, and the ``.sql`` files the code runs.

Statements live in ``sql/`` folders next to the modules that run them (``warehouse/sql/kpis.sql`` …) and are loaded
by name with :func:`load`. They take named parameters, ``:name``; :meth:`Query.bind` turns them into the positional
``?`` holes both DuckDB and the warehouse connection (psycopg, through ``adapters.warehouse``) accept, with the
values in order. A list or tuple value stands for a comma-separated list of values, for ``IN (:days)``; an empty one
binds a single NULL, so ``IN (:days)`` matches nothing. A value wrapped by :func:`array` binds as one DuckDB list
(``read_parquet(:files)``, ``unnest(:keys)``). ``::`` casts, quoted text and comments are left alone. A
file with a bare ``?`` is refused: every value it takes has a name.

SQL that is generated from the column contracts (``core.schema``) stays in Python, where a loop over the columns
is clearer than a template; ``docs/decisions.md`` lists where.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# COPY ... TO options of the sessionizer's files: Parquet, zstd level 1 (no larger than level 3 on the benchmark's
# events, 45.1 vs 46.1 MB at 1M, and cheaper to write).
PARQUET = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"


def literal(value: object) -> str:
    """A SQL string literal of ``str(value)`` (paths, names, time zones), quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def parquet_partitioned(column: str, filename_pattern: str = "part{i}") -> str:
    """COPY options of :data:`PARQUET` that write one folder per value of ``column``."""
    return (
        f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, PARTITION_BY ({identifier(column)}),"
        f" FILENAME_PATTERN {literal(filename_pattern)})"
    )


@dataclass(frozen=True)
class Array:
    """Values bound as one list parameter (see :func:`array`)."""

    values: tuple[Any, ...]


def array(values: Iterable[Any]) -> Array:
    """``values`` as ONE parameter, a DuckDB list, instead of a comma-separated list of parameters."""
    return Array(tuple(values))


class SqlError(ValueError):
    """A ``.sql`` file is malformed, or a query was bound without one of its parameters."""


# One token at a time: quoted text, comments, casts and the ``?`` hole are skipped or refused, ``:name`` bound.
_TOKENS = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|::)"""
    r"|:(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<hole>\?)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Query:
    """One statement from a ``.sql`` file, with its named parameters in order of appearance."""

    name: str
    text: str

    @property
    def parameters(self) -> tuple[str, ...]:
        """The distinct parameter names, in order of first appearance."""
        seen: dict[str, None] = {}
        for match in _TOKENS.finditer(self.text):
            if match.group("name"):
                seen.setdefault(match.group("name"), None)
        return tuple(seen)

    def bind(self, params: Mapping[str, Any] | None = None) -> tuple[str, list[Any]]:
        """The statement with ``?`` holes and their values in order; every parameter must be given (extra
        names are refused too, so a misspelt one never passes silently)."""
        params = dict(params or {})
        missing = [name for name in self.parameters if name not in params]
        extra = sorted(set(params) - set(self.parameters))
        if missing or extra:
            raise SqlError(
                f"{self.name}: "
                + "; ".join(
                    part
                    for part in (
                        f"missing parameter(s) {', '.join(missing)}" if missing else "",
                        f"unknown parameter(s) {', '.join(extra)}" if extra else "",
                    )
                    if part
                )
            )
        values: list[Any] = []

        def hole(match: re.Match[str]) -> str:
            if match.group("skip"):
                return match.group("skip")
            if match.group("hole"):
                raise SqlError(f"{self.name}: positional '?' holes are not allowed; name the parameter")
            value = params[match.group("name")]
            if isinstance(value, Array):
                values.append(list(value.values))
                return "?"
            if isinstance(value, list | tuple):
                items: Sequence[Any] = value or [None]
                values.extend(items)
                return ", ".join("?" for _ in items)
            values.append(value)
            return "?"

        return _TOKENS.sub(hole, self.text), values


def _without_comments(text: str) -> str:
    """``text`` with its ``--`` and ``/* */`` comments removed (quoted text kept as it is)."""

    def keep(match: re.Match[str]) -> str:
        token = match.group(0)
        return "" if token.startswith(("--", "/*")) else token

    return _TOKENS.sub(keep, text)


@cache
def load(package: str, name: str) -> Query:
    """The statement ``<package>/sql/<name>.sql`` (read once per process), without its comments. A file holds one
    statement: a trailing ``;`` is dropped, and a missing file is an error naming the path."""
    path = resources.files(package) / "sql" / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SqlError(f"no SQL file {package}/sql/{name}.sql") from None
    body = _without_comments(text).strip().removesuffix(";").rstrip()
    if not body:
        raise SqlError(f"{package}/sql/{name}.sql is empty")
    query = Query(name=f"{package}/sql/{name}.sql", text=body)
    for match in _TOKENS.finditer(body):
        if match.group("hole"):
            raise SqlError(f"{query.name}: positional '?' holes are not allowed; name the parameter")
    return query
