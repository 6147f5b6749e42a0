"""Judging one raw object: every event ends validated (a row), quarantined (with a reason) or a duplicate.

Pure: bytes in, rows and quarantine entries out, no I/O. A record of a person under erasure (its anonymous_id or
user_id hashes to a tombstone) is quarantined as ``erased`` before anything else, keeping only the id's hash and
the event's place, never the event. Order of judgement for each other event: schema / size (alone) → too late (alone) → in-object dedupe among the events still standing. The first copy of an
event id wins (earliest received_at, then event_ts, then record ordinal, then position in the record); a later copy
with the same client payload is a duplicate (counted, dropped), one with a different payload is quarantined as
``duplicate_conflict``. Invariant: events_in == validated + quarantined + duplicates.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from clickstream.core.config import SENSITIVE_URL_PARAMS
from clickstream.core.ids import erased_id
from clickstream.validate.enrich import (
    RecordContext,
    build_row,
    corrected_time,
    payload_hash,
    record_context,
    utc_iso,
)
from clickstream.validate.models import (
    ENVELOPE_ADAPTER,
    EVENT_ADAPTER,
    PAGE_REQUIRED,
    first_error,
)
from clickstream.validate.models import (
    MAX_EVENT_BYTES as MAX_EVENT_BYTES,
)
from clickstream.validate.reader import RawLine, decode_object, read_records
from clickstream.validate.web import SensitiveParams, ip_prefix, sensitive_params

SCHEMA_VIOLATION = "schema_violation"
SIZE_VIOLATION = "size_violation"
TOO_LATE = "too_late"
DUPLICATE_CONFLICT = "duplicate_conflict"
UNPARSEABLE_RECORD = "unparseable_record"
ERASED = "erased"
# Every reason a quarantined event can carry (the quarantine's and the ledger's vocabulary).
QUARANTINE_REASONS = (
    SCHEMA_VIOLATION,
    SIZE_VIOLATION,
    TOO_LATE,
    DUPLICATE_CONFLICT,
    UNPARSEABLE_RECORD,
    ERASED,
)


class AccountingError(AssertionError):
    """The ledger does not balance: a bug, never data (events_in != validated + quarantined + duplicates)."""


@dataclass(frozen=True, slots=True)
class JudgeOptions:
    lookback: timedelta
    internal_networks: tuple[str, ...] = ()
    tombstones: frozenset[str] = frozenset()  # sha256 of ids under erasure (adapters.state.tombstones())
    sensitive_url_params: str = (
        SENSITIVE_URL_PARAMS  # removed from page URLs and referrers (web.strip_sensitive)
    )

    @property
    def sensitive(self) -> SensitiveParams:
        return sensitive_params(self.sensitive_url_params)


@dataclass(slots=True)
class _Candidate:
    event: dict[str, Any]
    ctx: RecordContext
    line: RawLine
    position: int
    event_id: str
    event_ts: datetime
    occurred_at_iso: str
    clamped: bool
    hash_: str

    def rank(self) -> tuple[datetime, datetime, int, int]:
        return (self.ctx.received_at, self.event_ts, self.line.ordinal, self.position)


@dataclass
class Judgement:
    """The outcome for one object. ``rows`` follow VALIDATED_COLUMNS; quarantine entries lack quarantined_at."""

    source_key: str
    records: int = 0
    events_in: int = 0
    duplicates: int = 0
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    max_received_at: datetime | None = None
    validated_count: int | None = None  # set when the rows went straight to a file instead of ``rows``
    engine: str = "python"  # which path judged the object: "python" (event by event) or "duckdb" (set-based)

    @property
    def validated(self) -> int:
        return len(self.rows) if self.validated_count is None else self.validated_count

    @property
    def quarantined(self) -> dict[str, int]:
        return dict(sorted(Counter(q["reason"] for q in self.quarantine).items()))

    @property
    def quarantined_total(self) -> int:
        return len(self.quarantine)

    def check_balance(self) -> None:
        if self.events_in != self.validated + self.quarantined_total + self.duplicates:
            raise AccountingError(
                f"{self.source_key}: events_in={self.events_in} != validated={self.validated} + "
                f"quarantined={self.quarantined_total} + duplicates={self.duplicates}"
            )


def judge_object(data: bytes, *, source_key: str, options: JudgeOptions) -> Judgement:
    """Judge every event of a raw object (gzip or plain JSON lines), event by event: the specification
    ``engine.judge_with_engine`` is tested against."""
    return judge_payload(decode_object(data), source_key=source_key, options=options)


def judge_payload(payload: bytes, *, source_key: str, options: JudgeOptions) -> Judgement:
    """``judge_object`` of an object already decoded (gunzipped when it was gzip)."""
    judge = _Judge(source_key, options)
    for line in read_records(payload):
        judge.add_line(line)
    return judge.finish()


class _Judge:
    def __init__(self, source_key: str, options: JudgeOptions) -> None:
        self.options = options
        self.out = Judgement(source_key)
        self.candidates: list[_Candidate] = []
        self._originals: dict[int, Any] = {}

    def _original(self, line: RawLine) -> Any:
        """The record as it arrived (decoded once per record, only when one of its events is quarantined)."""
        if line.ordinal not in self._originals:
            self._originals[line.ordinal] = line.original()
        return self._originals[line.ordinal]

    # -- per record ----------------------------------------------------------------------------------------
    def add_line(self, line: RawLine) -> None:
        self.out.records += 1
        doc = line.record if line.record is not None else line.loose
        if isinstance(doc, dict) and isinstance(doc.get("events"), list) and self._erased(line, doc):
            return
        if line.record is not None:
            ctx = self._context(line.record)
            for position, event in enumerate(line.record["events"]):
                self.out.events_in += 1
                self._judge_valid(event, ctx, line, position)
            return
        doc = line.loose
        if line.text is not None or not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
            self.out.events_in += 1
            detail = (
                "not JSON" if line.text is not None else "not a raw record (an object with an events list)"
            )
            self._quarantine(UNPARSEABLE_RECORD, detail, line, None, line.raw, envelope=None)
            return
        self._add_loose(doc, line)

    def _erased(self, line: RawLine, doc: dict[str, Any]) -> bool:
        """Quarantine every event of a record whose person is under erasure, keeping only the id's hash."""
        erased = erased_id(
            self.options.tombstones, {"anonymous_id": doc.get("anonymous_id"), "user_id": doc.get("user_id")}
        )
        if erased is None:
            return False
        name, digest = erased
        for position in range(len(doc["events"])):
            self.out.events_in += 1
            self.out.quarantine.append(
                {
                    "reason": ERASED,
                    "detail": f"{name} under erasure",
                    "source_object": self.out.source_key,
                    "source_line": line.ordinal,
                    "position": position,
                    "event_id": None,
                    "event": None,
                    "envelope": None,
                    "id_hash": digest,
                }
            )
        return True

    def add_positions(self, line: RawLine, positions: list[int]) -> None:
        """Judge only the events at ``positions`` of a record whose other events were judged elsewhere."""
        self._add_loose(line.loose, line, only=positions)

    def _add_loose(self, doc: dict[str, Any], line: RawLine, only: list[int] | None = None) -> None:
        """A record that failed validation as a whole: judge its envelope, then each event on its own."""
        envelope_doc = {k: v for k, v in doc.items() if k != "events"}
        events = doc["events"]
        pairs = list(enumerate(events)) if only is None else [(p, events[p]) for p in only]
        try:
            envelope = ENVELOPE_ADAPTER.validate_json(json.dumps({**envelope_doc, "events": []}))
        except (ValidationError, ValueError) as exc:
            detail = _detail(exc, prefix="envelope")
            for position, event in pairs:
                self.out.events_in += 1
                self._quarantine(SCHEMA_VIOLATION, detail, line, position, event, envelope=envelope_doc)
            return
        ctx = self._context(envelope)
        for position, event in pairs:
            self.out.events_in += 1
            if not isinstance(event, dict):
                self._quarantine(
                    SCHEMA_VIOLATION, "event: must be a JSON object", line, position, event, ctx=ctx
                )
                continue
            try:
                text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            except ValueError as exc:  # pragma: no cover - json.loads output always serialises
                self._quarantine(SCHEMA_VIOLATION, f"event: {exc}", line, position, event, ctx=ctx)
                continue
            if len(text.encode("utf-8")) > MAX_EVENT_BYTES:
                detail = f"event: {len(text.encode('utf-8'))} bytes serialized, limit {MAX_EVENT_BYTES}"
                self._quarantine(SIZE_VIOLATION, detail, line, position, event, ctx=ctx)
                continue
            try:
                validated = EVENT_ADAPTER.validate_json(text)
            except ValidationError as exc:
                kind, path, message = first_error(exc)
                reason = SIZE_VIOLATION if kind == "size" else SCHEMA_VIOLATION
                self._quarantine(reason, f"{path or 'event'}: {message}", line, position, event, ctx=ctx)
                continue
            self._judge_valid(validated, ctx, line, position)

    def _context(self, envelope: dict[str, Any]) -> RecordContext:
        ctx = record_context(envelope, self.options.internal_networks)
        if self.out.max_received_at is None or ctx.received_at > self.out.max_received_at:
            self.out.max_received_at = ctx.received_at
        return ctx

    # -- per event -----------------------------------------------------------------------------------------
    def _judge_valid(self, event: dict[str, Any], ctx: RecordContext, line: RawLine, position: int) -> None:
        """An event that passed its schema: page rule, lateness, then it becomes a dedupe candidate."""
        if event["event_type"] in PAGE_REQUIRED and not (event.get("page") or ctx.context_page.get("url")):
            self._quarantine_original(
                SCHEMA_VIOLATION, f"page.url: required for {event['event_type']}", line, position, ctx
            )
            return
        if not event.get("page") and ctx.context_page.get("url") is not None:
            url = ctx.context_page["url"]
            if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
                self._quarantine_original(
                    SCHEMA_VIOLATION, "context.page.url: must be an absolute http(s) URL", line, position, ctx
                )
                return
        event_ts, clamped, lateness = corrected_time(ctx, event["occurred_at"])
        if lateness > self.options.lookback.total_seconds():
            hours = self.options.lookback.total_seconds() / 3600
            detail = f"received {lateness / 3600:.1f} h after it occurred (lookback {hours:g} h)"
            self._quarantine_original(TOO_LATE, detail, line, position, ctx)
            return
        occurred_at_iso = utc_iso(event["occurred_at"])
        self.candidates.append(
            _Candidate(
                event=event,
                ctx=ctx,
                line=line,
                position=position,
                event_id=event["event_id"].lower(),
                event_ts=event_ts,
                occurred_at_iso=occurred_at_iso,
                clamped=clamped,
                hash_=payload_hash(event, occurred_at_iso),
            )
        )

    def candidate_rows(self) -> list[tuple[tuple[Any, ...], int]]:
        """Each candidate (an event that passed schema, size and lateness) as ``(row, position)``, undeduped."""
        return [(self._row(c), c.position) for c in self.candidates]

    def quarantine_conflict(self, line: RawLine, position: int, detail: str) -> None:
        """A later copy of an event id with a different payload (found by the engine's dedupe)."""
        self._quarantine(
            DUPLICATE_CONFLICT, detail, line, position, line.original()["events"][position], ctx=True
        )

    # -- dedupe and rows -----------------------------------------------------------------------------------
    def _row(self, c: _Candidate) -> tuple[Any, ...]:
        """The validated row of a candidate, named after this object and the candidate's line."""
        return build_row(
            c.event,
            c.ctx,
            event_ts=c.event_ts,
            occurred_at_iso=c.occurred_at_iso,
            clamped=c.clamped,
            hash_=c.hash_,
            source_object=self.out.source_key,
            source_line=c.line.ordinal,
            sensitive=self.options.sensitive,
        )

    def finish(self) -> Judgement:
        winners: dict[str, _Candidate] = {}
        losers: list[_Candidate] = []
        for cand in self.candidates:
            best = winners.get(cand.event_id)
            if best is None:
                winners[cand.event_id] = cand
            elif cand.rank() < best.rank():
                winners[cand.event_id] = cand
                losers.append(best)
            else:
                losers.append(cand)
        for loser in sorted(losers, key=_Candidate.rank):
            winner = winners[loser.event_id]
            if loser.hash_ == winner.hash_:
                self.out.duplicates += 1
            else:
                detail = conflict_detail(loser.event_id, winner.line.ordinal, winner.position)
                self._quarantine_original(DUPLICATE_CONFLICT, detail, loser.line, loser.position, loser.ctx)
        keep = sorted(winners.values(), key=lambda c: (c.line.ordinal, c.position))
        self.out.rows = [self._row(c) for c in keep]
        self.out.quarantine.sort(
            key=lambda q: (q["source_line"], -1 if q["position"] is None else q["position"])
        )
        self.out.check_balance()
        return self.out

    # -- quarantine ----------------------------------------------------------------------------------------
    def _quarantine_original(
        self, reason: str, detail: str, line: RawLine, position: int, ctx: RecordContext
    ) -> None:
        """Quarantine an event that had been validated: store it as it arrived, not as parsed."""
        original = self._original(line)
        event = original["events"][position] if isinstance(original, dict) else None
        self._quarantine(reason, detail, line, position, event, ctx=ctx)

    def _quarantine(
        self,
        reason: str,
        detail: str,
        line: RawLine,
        position: int | None,
        event: Any,
        *,
        ctx: RecordContext | bool | None = None,
        envelope: dict[str, Any] | None = None,
    ) -> None:
        if ctx is not None and envelope is None:
            original = self._original(line)
            envelope = (
                {k: v for k, v in original.items() if k != "events"} if isinstance(original, dict) else None
            )
        if envelope is not None and "ip" in envelope:
            envelope = {
                **envelope,
                "ip": ip_prefix(envelope["ip"]) if isinstance(envelope["ip"], str) else None,
            }
        event_id = event.get("event_id") if isinstance(event, dict) else None
        self.out.quarantine.append(
            {
                "reason": reason,
                "detail": detail,
                "source_object": self.out.source_key,
                "source_line": line.ordinal,
                "position": position,
                "event_id": event_id if isinstance(event_id, str) else None,
                "event": event,
                "envelope": envelope,
            }
        )


def conflict_detail(event_id: str, winner_line: int, winner_position: int) -> str:
    return (
        f"event_id {event_id} reused with a different payload "
        f"(first copy: record {winner_line}, position {winner_position})"
    )


def _detail(exc: Exception, *, prefix: str) -> str:
    if isinstance(exc, ValidationError):
        _, path, message = first_error(exc)
        return f"{prefix}.{path}: {message}" if path else f"{prefix}: {message}"
    return f"{prefix}: {exc}"
