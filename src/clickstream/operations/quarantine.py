"""The quarantine: what was set aside and why (``summary``), and the names a re-drive gives it (``operations.redrive``).

Quarantine objects are the validate step's JSON lines, ``quarantine/dt=…/hr=…/<stem>.jsonl`` (one per source
object, named after it; ``clickstream.core.keys``), one entry per event with its ``reason`` and ``detail``.

**Re-drive.** The entries of one reason in one quarantine object become one *redrive object* in the raw bucket,
``raw/redrive/dt=…/hr=…/<quarantine stem>.<reason>.jsonl``: a raw object like Firehose's, one record per original
record (its envelope, as quarantined, and those of its events, in their order). That object is validated by the
validate step itself (``validate.step.validate_object``: the same judge, tombstones, enrichment, outputs named after it
and its own ledger row), so a re-driven event is judged exactly as a newly arrived one. Its name depends on the
quarantine object and the reason alone, so a re-drive run again rewrites the same outputs and the same ledger row.
A redrive object is written once: a later re-drive (e.g. after a second fix) validates it again as it is, so its
records keep their ordinals (the sessionizer recognises a re-delivered object by source object, line and event id)
and nothing is ever re-driven twice. ``erased`` entries are never re-driven (they hold no event).

**Accounting.** Every ledger row balances on its own (in = validated + quarantined + duplicates). A redrive
object's ``events_in`` are events already counted once, as quarantined, by their source object; so across the
ledger: events received (source objects' ``events_in``) = validated (all rows) + still quarantined (all rows'
quarantined minus redrive objects' ``events_in``) + duplicates (all rows). The redrive object's name says which
quarantine object and reason it re-drives, so ``summary`` shows quarantined / re-driven / still quarantined.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from clickstream.adapters.state import StateStore
from clickstream.adapters.storage import ObjectStore
from clickstream.core.errors import InputError
from clickstream.core.keys import QUARANTINE_PREFIX, RAW_PREFIX
from clickstream.validate.judge import (
    DUPLICATE_CONFLICT,
    ERASED,
    SCHEMA_VIOLATION,
    SIZE_VIOLATION,
    TOO_LATE,
    UNPARSEABLE_RECORD,
)

REDRIVE_PREFIX = f"{RAW_PREFIX}redrive/"
REASONS = (SCHEMA_VIOLATION, SIZE_VIOLATION, TOO_LATE, DUPLICATE_CONFLICT, UNPARSEABLE_RECORD, ERASED)
REDRIVABLE = (SCHEMA_VIOLATION, SIZE_VIOLATION, TOO_LATE, DUPLICATE_CONFLICT, UNPARSEABLE_RECORD)
DEFAULT_REDRIVE_REASONS = (SCHEMA_VIOLATION, SIZE_VIOLATION)

_QUARANTINE_KEY = re.compile(r"^quarantine/(dt=(\d{4}-\d{2}-\d{2})/hr=\d{2})/([^/]+)\.jsonl$")
_REDRIVE_KEY = re.compile(r"^raw/redrive/(dt=\d{4}-\d{2}-\d{2}/hr=\d{2})/([^/]+)\.([a-z_]+)\.jsonl$")


# -- names -------------------------------------------------------------------------------------------------------
def redrive_key(quarantine_key: str, reason: str) -> str:
    """The redrive object of ``reason``'s entries in ``quarantine_key``, under the same arrival partition."""
    match = _QUARANTINE_KEY.match(quarantine_key)
    if match is None:
        raise InputError(f"not a quarantine object key: {quarantine_key!r}")
    if reason not in REDRIVABLE:
        raise InputError(f"{reason!r} cannot be re-driven (re-drivable: {', '.join(REDRIVABLE)})")
    return f"{REDRIVE_PREFIX}{match.group(1)}/{match.group(3)}.{reason}.jsonl"


def redrive_origin(source_key: str) -> tuple[str, str] | None:
    """``(quarantine key, reason)`` a redrive object re-drives, or None for any other object."""
    match = _REDRIVE_KEY.match(source_key)
    if match is None or match.group(3) not in REDRIVABLE:
        return None
    return f"{QUARANTINE_PREFIX}{match.group(1)}/{match.group(2)}.jsonl", match.group(3)


def is_redrive(source_key: str | None) -> bool:
    return bool(source_key) and str(source_key).startswith(REDRIVE_PREFIX)


def day_of(quarantine_key: str) -> date | None:
    match = _QUARANTINE_KEY.match(quarantine_key)
    return date.fromisoformat(match.group(2)) if match else None


def check_reasons(reasons: Iterable[str]) -> tuple[str, ...]:
    """The re-drivable reasons asked for, in a fixed order; ``erased`` and unknown names are refused."""
    chosen = set(reasons)
    if ERASED in chosen:
        raise InputError("erased events are never re-driven: the person asked to be forgotten")
    unknown = chosen - set(REDRIVABLE)
    if unknown:
        raise InputError(f"unknown reason(s) {sorted(unknown)}; re-drivable: {', '.join(REDRIVABLE)}")
    if not chosen:
        raise InputError("no reason to re-drive")
    return tuple(r for r in REDRIVABLE if r in chosen)


# -- reading ----------------------------------------------------------------------------------------------------
def quarantine_keys(lake: ObjectStore, first: date | None = None, last: date | None = None) -> list[str]:
    """Quarantine object keys whose arrival day (their ``dt=`` partition) lies in ``[first, last]``."""
    if first is not None and last is not None and first > last:
        raise InputError(f"--from {first} is after --to {last}")
    if first is not None and last is not None and (last - first).days <= 366:
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        prefixes = [f"{QUARANTINE_PREFIX}dt={d:%Y-%m-%d}/" for d in days]
    else:
        prefixes = [QUARANTINE_PREFIX]
    keys: list[str] = []
    for prefix in prefixes:
        for key in lake.list_keys(prefix):
            day = day_of(key)
            if day is None or (first is not None and day < first) or (last is not None and day > last):
                continue
            keys.append(key)
    return sorted(keys)


def read_entries(lake: ObjectStore, key: str) -> list[dict[str, Any]]:
    """The entries of one quarantine object, in file order."""
    entries = []
    # lines end at "\n" only: str.splitlines would also break inside a string at U+0085, U+2028 or U+2029
    for number, line in enumerate(lake.get_bytes(key).decode("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{key} line {number}: not JSON ({exc})") from exc
        if not isinstance(entry, dict) or "reason" not in entry:
            raise InputError(f"{key} line {number}: not a quarantine entry")
        entries.append(entry)
    return entries


# -- summary ----------------------------------------------------------------------------------------------------
def field_path(detail: Any) -> str:
    """The field a schema violation names (``page.url: required …`` → ``page.url``)."""
    text = str(detail or "")
    return text.split(": ", 1)[0] if ": " in text else (text or "?")


def source_prefix(source_object: Any) -> str:
    """The folder of a source object key (``raw/dt=…/hr=…/``): where the bad events came from."""
    text = str(source_object or "?")
    return text.rsplit("/", 1)[0] + "/" if "/" in text else text


@dataclass
class RedriveStatus:
    """Per reason: quarantined at validation, re-driven, and the re-drive's outcome."""

    quarantined: int = 0
    redriven: int = 0
    validated: int = 0
    requarantined: int = 0
    duplicates: int = 0
    redrive_objects: int = 0

    @property
    def still_quarantined(self) -> int:
        return self.quarantined - self.redriven + self.requarantined

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "still_quarantined": self.still_quarantined}


@dataclass
class LedgerTotals:
    """Across every ledger row: received = validated + still quarantined + duplicates (``balances``)."""

    source_objects: int = 0
    redrive_objects: int = 0
    events_received: int = 0  # source objects' events_in: each event counted once
    validated: int = 0
    quarantined: int = 0  # every row's quarantined, redrive objects' own included
    redriven: int = 0  # redrive objects' events_in (already counted as quarantined by their source object)
    duplicates: int = 0

    @property
    def still_quarantined(self) -> int:
        return self.quarantined - self.redriven

    @property
    def balances(self) -> bool:
        return self.events_received == self.validated + self.still_quarantined + self.duplicates

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "still_quarantined": self.still_quarantined, "balances": self.balances}


def ledger_totals(rows: Iterable[dict[str, Any]]) -> LedgerTotals:
    totals = LedgerTotals()
    for row in rows:
        redrive = is_redrive(row.get("source_key"))
        if redrive:
            totals.redrive_objects += 1
            totals.redriven += int(row.get("events_in") or 0)
        else:
            totals.source_objects += 1
            totals.events_received += int(row.get("events_in") or 0)
        totals.validated += int(row.get("validated") or 0)
        totals.quarantined += int(row.get("quarantined_total") or 0)
        totals.duplicates += int(row.get("duplicates") or 0)
    return totals


@dataclass
class QuarantineSummary:
    first: date | None
    last: date | None
    reasons: tuple[str, ...] | None
    objects: int = 0
    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    field_paths: list[tuple[str, int]] = field(default_factory=list)  # schema_violation, top N
    by_source: list[tuple[str, int]] = field(default_factory=list)  # top N source folders
    redrive: dict[str, RedriveStatus] | None = None  # None without the ledger (a local lake copy)
    stale: list[str] = field(default_factory=list)  # redrive objects re-driving more than their object holds
    ledger: LedgerTotals | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.first.isoformat() if self.first else None,
            "to": self.last.isoformat() if self.last else None,
            "reasons": list(self.reasons) if self.reasons else None,
            "objects": self.objects,
            "quarantined": self.total,
            "by_reason": self.by_reason,
            "by_day": self.by_day,
            "schema_violation_fields": [{"field": f, "events": n} for f, n in self.field_paths],
            "by_source_prefix": [{"prefix": p, "events": n} for p, n in self.by_source],
            "redrive": (
                {reason: status.as_dict() for reason, status in self.redrive.items()}
                if self.redrive is not None
                else None
            ),
            "stale_redrive_objects": self.stale,
            "ledger": self.ledger.as_dict() if self.ledger is not None else None,
        }


def summarize(
    lake: ObjectStore,
    *,
    state: StateStore | None = None,
    first: date | None = None,
    last: date | None = None,
    reasons: Iterable[str] | None = None,
    top: int = 10,
) -> QuarantineSummary:
    """Counts of the quarantine by arrival day, reason, schema field and source folder; with the ledger
    (``state``), what was re-driven and what is still quarantined."""
    wanted = tuple(reasons) if reasons else None
    unknown = set(wanted or ()) - set(REASONS)
    if unknown:
        raise InputError(f"unknown reason(s) {sorted(unknown)}; reasons: {', '.join(REASONS)}")
    out = QuarantineSummary(first, last, wanted)
    by_reason: Counter[str] = Counter()
    by_day: dict[str, Counter[str]] = defaultdict(Counter)
    paths: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    per_object: dict[tuple[str, str], int] = {}  # (quarantine key, reason) → entries, source objects only
    for key in quarantine_keys(lake, first, last):
        entries = [e for e in read_entries(lake, key) if wanted is None or e["reason"] in wanted]
        if not entries or is_redrive(entries[0].get("source_object")):
            continue  # a redrive object's own quarantine: counted with the re-drive below
        out.objects += 1
        day = str(day_of(key))
        for entry in entries:
            reason = str(entry["reason"])
            by_reason[reason] += 1
            by_day[day][reason] += 1
            sources[source_prefix(entry.get("source_object"))] += 1
            if reason == SCHEMA_VIOLATION:
                paths[field_path(entry.get("detail"))] += 1
            per_object[(key, reason)] = per_object.get((key, reason), 0) + 1
    out.total = sum(by_reason.values())
    out.by_reason = dict(sorted(by_reason.items()))
    out.by_day = {day: dict(sorted(c.items())) for day, c in sorted(by_day.items())}
    out.field_paths = _top(paths, top)
    out.by_source = _top(sources, top)
    if state is not None:
        rows = list(state.all_ledger())
        out.ledger = ledger_totals(rows)
        out.redrive = _redrive_status(rows, per_object, wanted, first, last, out.stale)
    return out


def _redrive_status(
    rows: list[dict[str, Any]],
    per_object: dict[tuple[str, str], int],
    wanted: tuple[str, ...] | None,
    first: date | None,
    last: date | None,
    stale: list[str],
) -> dict[str, RedriveStatus]:
    status: dict[str, RedriveStatus] = {}
    for (_, reason), n in per_object.items():
        status.setdefault(reason, RedriveStatus()).quarantined += n
    for row in sorted(rows, key=lambda r: str(r.get("source_key"))):
        origin = redrive_origin(str(row.get("source_key")))
        if origin is None:
            continue
        q_key, reason = origin
        day = day_of(q_key)
        if (wanted is not None and reason not in wanted) or day is None:
            continue
        if (first is not None and day < first) or (last is not None and day > last):
            continue
        s = status.setdefault(reason, RedriveStatus())
        s.redrive_objects += 1
        s.redriven += int(row.get("events_in") or 0)
        s.validated += int(row.get("validated") or 0)
        s.requarantined += int(row.get("quarantined_total") or 0)
        s.duplicates += int(row.get("duplicates") or 0)
        if int(row.get("events_in") or 0) > per_object.get((q_key, reason), 0):
            stale.append(str(row["source_key"]))
    return dict(sorted(status.items()))


def _top(counter: Counter[str], n: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
