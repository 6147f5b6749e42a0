"""The durable spool of ``clickstream serve``: every accepted request's raw records, on disk before the ``202``.

``DIR/spool/`` plays the part S3's raw zone plays in the stack: the source of truth the rest can be rebuilt from.
One file per accepted request, ``<sequence>.ndjson``, holding the raw records (JSON lines) the ingest handler
produced, exactly as they go to Firehose. A file is written to a temporary name, flushed and ``fsync``-ed, then
renamed into place and the directory ``fsync``-ed: after a crash a request is either wholly in the spool or not
at all (its client got no ``202``), never torn. ``loaded`` holds the highest sequence a successful pipeline run
covered (written the same way).

The moto stack behind ``clickstream serve`` lives in memory, so on every start the whole spool is put through
Firehose again, one object per request as when it arrived. The pipeline's loads replace whole visitors (their
events and sessions recomputed from what the lake holds), so rebuilding the lake from the whole spool is what
keeps a returning visitor's earlier events, and it makes every crash window exactly-once: the warehouse load is one
transaction, duplicates of an ``event_id`` are dropped, and a visitor's rows are replaced, never appended.

A lock file (``spool/.lock``, ``flock``) keeps a second process off the same folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SPOOL_DIR = "spool"
LOADED_FILE = "loaded"
LOCK_FILE = ".lock"
SUFFIX = ".ndjson"
_NAME = re.compile(r"^(\d{12})\.ndjson$")


class SpoolBusy(Exception):
    """Another process holds the spool."""


@dataclass(frozen=True)
class SpoolEntry:
    sequence: int
    path: Path

    def records(self) -> list[bytes]:
        """The raw records of this request, each a JSON line ending in a newline."""
        return [line + b"\n" for line in self.path.read_bytes().split(b"\n") if line.strip()]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """``data`` at ``path`` after a crash, or the previous content: temporary file, fsync, rename, fsync dir."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Spool:
    """Append-only, one durable file per accepted request; see the module docstring."""

    def __init__(self, out: Path) -> None:
        self.dir = out / SPOOL_DIR
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._next = 1

    def open(self) -> Spool:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusy(f"another process uses {self.dir}") from None
        self._lock_fd = fd
        for leftover in self.dir.glob(".*.tmp"):  # a write a crash interrupted: its request got no 202
            leftover.unlink()
        entries = self.entries()
        self._next = (entries[-1].sequence + 1) if entries else 1
        return self

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def append(self, records: list[bytes]) -> SpoolEntry:
        """Write one request's records durably; returns the entry once it is on disk."""
        data = bytearray()
        for record in records:
            body = record[:-1] if record.endswith(b"\n") else record
            if b"\n" in body:
                raise ValueError(
                    "a raw record spans lines"
                )  # JSON lines never do: ingest writes compact JSON
            data += body + b"\n"
        with self._lock:
            entry = SpoolEntry(self._next, self.dir / f"{self._next:012d}{SUFFIX}")
            _write_durably(entry.path, bytes(data))
            self._next += 1
            return entry

    def entries(self) -> list[SpoolEntry]:
        """Every request in the spool, in the order it was accepted."""
        found = []
        for path in self.dir.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append(SpoolEntry(int(match.group(1)), path))
        return sorted(found, key=lambda e: e.sequence)

    def __iter__(self) -> Iterator[SpoolEntry]:
        return iter(self.entries())

    @property
    def loaded(self) -> int:
        """The highest sequence a successful pipeline run covered (0: none)."""
        try:
            return int((self.dir / LOADED_FILE).read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def mark_loaded(self, sequence: int) -> None:
        if sequence > self.loaded:
            _write_durably(self.dir / LOADED_FILE, f"{sequence}\n".encode())

    @property
    def last_sequence(self) -> int:
        return self._next - 1
