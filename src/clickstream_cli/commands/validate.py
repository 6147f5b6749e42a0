"""``clickstream validate RAW_OBJECT... --out DIR``: the validate step on local raw objects.

Each object goes through ``clickstream.validate.step.validate_object``, the function the ValidateFunction runs for
every object an S3 notification names, unchanged: the same settings (from the environment), the same judgement,
Parquet writer, quarantine lines, arrival hour and ledger row. Only its stores are local: the raw object is the
file, the lake is ``DIR`` (the validated Parquet becomes ``DIR/<name>.parquet``, the quarantine
``DIR/<name>.quarantine.jsonl``, ``<name>`` being the file's name without ``.gz``) and the ledger row is printed as
one JSON line instead of written to the state table.

The source key is the file's name, or with ``--received-at-from-key`` the Firehose key its path ends with
(``raw/dt=YYYY-MM-DD/hr=HH/<name>``), so the step takes the arrival hour from the key as it does in S3. The step's
clock reads the file's modification time (its arrival on disk, as an S3 object's LastModified is its arrival):
``validated_at`` and every quarantine line's ``quarantined_at`` are that instant, and an object with neither a
partition in its key nor a readable ``received_at`` gets that hour as its arrival hour. So a second run on the
same file writes the same rows, the same quarantine lines and the same ledger line. Tombstones live in a stack's
state table; none apply here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from clickstream_cli.args import Subparsers

GZ_SUFFIX = ".gz"
PARQUET_SUFFIX = ".parquet"
QUARANTINE_SUFFIX = ".quarantine.jsonl"


class ObjectError(Exception):
    """One object could not be read, judged or written: its one-line message; the other objects go on."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="run the validate step on raw objects (gzip or plain JSON lines) into Parquet and quarantine files",
        description=(
            "Run the validate step the ValidateFunction runs on local raw objects as Firehose writes them (gzip "
            "or plain JSON lines, told apart by their first bytes): for each RAW_OBJECT, DIR/<name>.parquet "
            "(validated events; none when nothing is valid) and DIR/<name>.quarantine.jsonl (refused events "
            "with their reason; none when nothing is refused), <name> being the file's name without .gz, and "
            "one ledger line per object on stdout (JSON: events_in = validated + quarantined_total + "
            "duplicates). validated_at and quarantined_at are the file's modification time, so a re-run writes "
            "the same outputs. The lookback, internal networks and sensitive URL parameters come from the "
            "environment, as in the Lambda (LOOKBACK_HOURS, INTERNAL_IP_RANGES, SENSITIVE_URL_PARAMS). "
            "Exit 2 when an object could not be read or is not JSON lines (after the others are done)."
        ),
    )
    parser.add_argument("objects", nargs="+", type=Path, metavar="RAW_OBJECT")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for the outputs (created)"
    )
    parser.add_argument(
        "--received-at-from-key",
        action="store_true",
        help=(
            "each RAW_OBJECT lies under dt=YYYY-MM-DD/hr=HH/ as in the raw bucket: its source key is "
            "raw/dt=…/hr=…/<file name> and its arrival hour that partition, as the Lambda derives them from the "
            "S3 key (default: the source key is the file name and the arrival hour that of the object's latest "
            "received_at)"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clickstream.core.config import get_settings
    from clickstream.core.errors import DomainError

    try:
        settings = get_settings()
    except DomainError as exc:
        print(f"clickstream validate: {exc}", file=sys.stderr)
        return 2
    failed = 0
    written: dict[str, Path] = {}  # output name -> the object that wrote it in this run
    inputs = [_identity(path) for path in args.objects]
    with _logs_to_stderr():
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"clickstream validate: {_shown(args.out)}: cannot create: {_reason(exc)}", file=sys.stderr)
            return 2
        for path in args.objects:
            try:
                line = validate_file(
                    path, args.out, settings, from_key=args.received_at_from_key, inputs=inputs, taken=written
                )
            except ObjectError as exc:
                failed += 1
                print(f"clickstream validate: {_shown(path)}: {exc}", file=sys.stderr, flush=True)
                continue
            print(json.dumps(line), flush=True)
            problem = not_json_lines(line)
            if problem:
                failed += 1
                print(f"clickstream validate: {_shown(path)}: {problem}", file=sys.stderr, flush=True)
    return 2 if failed else 0


def validate_file(
    path: Path,
    out: Path,
    settings: Any,
    *,
    from_key: bool = False,
    inputs: list[object] | None = None,
    taken: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Validate one raw object file into ``out``; its ledger line. Raises ObjectError (nothing written)."""
    from clickstream.adapters.state import StateStore
    from clickstream.adapters.storage import ObjectStore
    from clickstream.core import clock
    from clickstream.core.observability import error_text
    from clickstream.core.times import iso
    from clickstream.validate.step import validate_object

    name = path.name
    if not _is_utf8(name):
        raise ObjectError("the file name is not UTF-8 (an S3 key always is)")
    source_key = firehose_key(path) if from_key else name
    stem = name[: -len(GZ_SUFFIX)] if name.endswith(GZ_SUFFIX) and len(name) > len(GZ_SUFFIX) else name
    outputs = OutputDir(out, stem)
    for target in (outputs.parquet, outputs.quarantine):
        if _identity(target) in (inputs if inputs is not None else [_identity(path)]):
            raise ObjectError(f"refusing to overwrite an input with {_shown(target)}")
    if taken is not None and stem in taken:
        raise ObjectError(f"its outputs {stem}{PARQUET_SUFFIX}… are those of {_shown(taken[stem])}")
    try:
        data = path.read_bytes()
        ns = path.stat().st_mtime_ns
    except OSError as exc:
        raise ObjectError(f"cannot read: {_reason(exc)}") from None
    mtime = datetime.fromtimestamp(ns // 10**9, tz=UTC).replace(microsecond=ns // 1000 % 10**6)
    clock.set_clock(lambda: mtime)
    try:
        row = validate_object(
            source_key,
            settings=settings,
            raw_store=cast(ObjectStore, OneObject(source_key, data)),
            lake_store=cast(ObjectStore, outputs),
            state=cast(StateStore, NoState()),
        )
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # the step's gunzip, before anything is written
        outputs.discard()
        raise ObjectError(f"not a readable gzip object: {exc}") from None
    except OSError as exc:
        outputs.discard()
        raise ObjectError(f"cannot write to {_shown(out)}: {_reason(exc)}") from None
    except Exception as exc:  # a failure of the step itself: one clipped line, as the Lambda logs it
        outputs.discard()
        raise ObjectError(f"the validate step failed: {error_text(exc)}") from None
    finally:
        clock.set_clock(None)
    outputs.remove_stale()
    if taken is not None:
        taken[stem] = path
    line: dict[str, Any] = {
        key: iso(value) if isinstance(value, datetime) else value for key, value in row.as_item().items()
    }
    line["validated_path"] = str(outputs.parquet) if outputs.parquet in outputs.written else None
    line["quarantine_path"] = str(outputs.quarantine) if outputs.quarantine in outputs.written else None
    return line


def not_json_lines(line: dict[str, Any]) -> str | None:
    """Why an object that was read is still not what a raw object is: records, and not one of them a raw record
    (JSON objects with an ``events`` list). The step quarantines each of them as ``unparseable_record``."""
    from clickstream.validate.judge import UNPARSEABLE_RECORD

    records = line["records"]
    if records and line["validated"] == 0 and line["quarantined"] == {UNPARSEABLE_RECORD: records}:
        return (
            f"not JSON lines of raw records: none of its {records} records is one "
            f"(all quarantined as {UNPARSEABLE_RECORD})"
        )
    return None


def firehose_key(path: Path) -> str:
    """The raw bucket key of a file lying under ``dt=YYYY-MM-DD/hr=HH/``: ``raw/dt=…/hr=…/<name>``; the folders
    must name an hour the step takes as the arrival hour (``validate.keys.arrival_hour_of``)."""
    from clickstream.core.keys import RAW_PREFIX
    from clickstream.validate.keys import arrival_hour_of

    partition = f"{path.parent.parent.name}/{path.parent.name}"
    if arrival_hour_of(partition, None) is None:
        raise ObjectError(
            "--received-at-from-key: not under dt=YYYY-MM-DD/hr=HH/ folders (a valid hour) as Firehose writes "
            "raw objects"
        )
    return f"{RAW_PREFIX}{partition}/{path.name}"


# -- the step's stores, for one object --------------------------------------------------------------------------
@dataclass
class OneObject:
    """The raw bucket holding one object: the file's bytes under its source key (read-only)."""

    key: str
    data: bytes

    def get_bytes(self, key: str) -> bytes:
        if key != self.key:
            raise KeyError(key)
        return self.data


@dataclass
class OutputDir:
    """The lake for one object: the step's validated object lands in ``<stem>.parquet``, its quarantine in
    ``<stem>.quarantine.jsonl``, each written beside its name first and renamed over it, so an interrupted run
    never leaves half a file."""

    root: Path
    stem: str
    written: set[Path] = field(default_factory=set)

    @property
    def parquet(self) -> Path:
        return self.root / f"{self.stem}{PARQUET_SUFFIX}"

    @property
    def quarantine(self) -> Path:
        return self.root / f"{self.stem}{QUARANTINE_SUFFIX}"

    def _target(self, key: str) -> Path:
        from clickstream.core.keys import QUARANTINE_PREFIX, VALIDATED_PREFIX

        if key.startswith(VALIDATED_PREFIX):
            return self.parquet
        if key.startswith(QUARANTINE_PREFIX):
            return self.quarantine
        raise KeyError(f"the validate step wrote outside validated/ and quarantine/: {key}")

    def _replace(self, target: Path, write: Any) -> None:
        staging = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            write(staging)
            os.replace(staging, target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        self.written.add(target)

    def upload(self, path: Path, key: str, content_type: str = "") -> None:
        self._replace(self._target(key), lambda staging: shutil.copyfile(path, staging))

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        self._replace(self._target(key), lambda staging: staging.write_bytes(data))

    def delete(self, key: str) -> None:
        self._target(key).unlink(missing_ok=True)

    def remove_stale(self) -> None:
        """Remove an output an earlier run wrote and this one did not (the step does the same with the lake)."""
        for target in (self.parquet, self.quarantine):
            if target not in self.written:
                target.unlink(missing_ok=True)

    def discard(self) -> None:
        """A failed object keeps no output of this run nor of an earlier one (they would not match its ledger)."""
        for target in (self.parquet, self.quarantine):
            target.unlink(missing_ok=True)


class NoState:
    """The state table the step reads and writes, empty: no earlier ledger row, no tombstones; the ledger row the
    step writes is the one ``validate_file`` prints."""

    table_name = "clickstream-validate-files"

    def get_ledger(self, source_key: str) -> dict[str, Any] | None:
        return None

    def put_ledger(self, row: Any) -> None:
        return None

    def tombstones(self) -> frozenset[str]:
        return frozenset()


# -- helpers ---------------------------------------------------------------------------------------------------
@contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """stdout holds the ledger lines only: the step's log lines go to stderr, warnings and worse."""
    from clickstream.core.observability import logger

    handler = logger.registered_handler
    stream, level = getattr(handler, "stream", None), logger.log_level
    if hasattr(handler, "setStream"):
        handler.setStream(sys.stderr)
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)
        if stream is not None and hasattr(handler, "setStream"):
            handler.setStream(stream)


def _identity(path: Path) -> object:
    """What makes two paths one file: device and inode when it exists (links included), else the resolved path."""
    try:
        info = path.stat()
    except OSError:
        pass
    else:
        return (info.st_dev, info.st_ino)
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: Path | str) -> str:
    """A path on one line: control characters and undecodable bytes escaped."""
    from clickstream.core.observability import clip

    return clip(str(path), 1000)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
