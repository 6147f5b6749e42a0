"""Re-drive: after a schema fix, send quarantined events through the validate step again.

The entries of one reason in one quarantine object become one redrive object in the raw bucket, named by
``operations.quarantine.redrive_key``, and are validated by the validate step itself; see ``operations.quarantine``
for the naming and the accounting that keeps the ledger balanced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from clickstream.adapters.factory import Adapters
from clickstream.operations.quarantine import (
    DEFAULT_REDRIVE_REASONS,
    check_reasons,
    is_redrive,
    quarantine_keys,
    read_entries,
    redrive_key,
)
from clickstream.validate.step import validate_object


def redrive_body(entries: Iterable[dict[str, Any]], reason: str) -> bytes:
    """The raw object re-driving ``reason``'s entries: a record per original record (envelope as quarantined,
    those events in their order), an unparseable record's text as it was. Deterministic."""
    lines: list[str] = []
    current: tuple[int, str] | None = None
    events: list[Any] = []
    envelope: dict[str, Any] = {}

    def flush() -> None:
        if current is not None:
            lines.append(
                json.dumps({**envelope, "events": events}, ensure_ascii=False, separators=(",", ":"))
            )

    for entry in entries:
        if entry.get("reason") != reason:
            continue
        if entry.get("position") is None:  # a whole record that could not be read: its text as stored
            flush()
            current, events, envelope = None, [], {}
            text = entry.get("event")
            if isinstance(text, str) and text.strip():
                lines.append(text.replace("\n", " ").strip())
            continue
        if not isinstance(entry.get("envelope"), dict):
            continue  # nothing to rebuild a record from (only erased entries lack both, and never come here)
        place = (int(entry["source_line"]), str(entry.get("source_object")))
        if place != current:
            flush()
            current, events = place, []
            envelope = {k: v for k, v in entry["envelope"].items() if k != "events"}
        events.append(entry.get("event"))
    flush()
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


@dataclass
class RedriveItem:
    """One redrive object: ``reason``'s entries of one quarantine object."""

    quarantine_key: str
    reason: str
    redrive_key: str
    entries: int
    exists: bool  # written by an earlier re-drive: validated again as it is
    body_digest: str
    event_ids: list[str] = field(default_factory=list)
    outcome: dict[str, Any] | None = None  # the ledger row, once validated

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_redrive(
    adapters: Adapters,
    *,
    reasons: Iterable[str] = DEFAULT_REDRIVE_REASONS,
    first: date | None = None,
    last: date | None = None,
) -> list[RedriveItem]:
    """What a re-drive of ``reasons`` over the quarantine objects that arrived in ``[first, last]`` would do."""
    chosen = check_reasons(reasons)
    lake, raw = adapters.lake, adapters.raw
    items: list[RedriveItem] = []
    for key in quarantine_keys(lake, first, last):
        entries = read_entries(lake, key)
        if not entries or is_redrive(entries[0].get("source_object")):
            continue  # a redrive object's own outcome: re-driving its quarantine object again covers it
        for reason in chosen:
            chosen_entries = [e for e in entries if e["reason"] == reason]
            if not chosen_entries:
                continue
            body = redrive_body(chosen_entries, reason)
            if not body:
                continue
            r_key = redrive_key(key, reason)
            items.append(
                RedriveItem(
                    quarantine_key=key,
                    reason=reason,
                    redrive_key=r_key,
                    entries=len(chosen_entries),
                    exists=raw.exists(r_key),
                    body_digest=hashlib.sha256(body).hexdigest(),
                    event_ids=[str(e["event_id"]) for e in chosen_entries if e.get("event_id")],
                )
            )
    return items


def run_redrive(items: list[RedriveItem], adapters: Adapters, *, validate: bool = True) -> list[RedriveItem]:
    """Write each redrive object not written yet and validate it with the validate step (its own outputs and
    ledger row, rewritten on every run). ``validate=False`` only writes them (the stack's raw-bucket
    notification then has the validate function do it)."""
    lake, raw = adapters.lake, adapters.raw
    for item in items:
        if not item.exists:
            body = redrive_body(read_entries(lake, item.quarantine_key), item.reason)
            raw.put_bytes(item.redrive_key, body, content_type="application/x-ndjson")
            item.exists = True
        if validate:
            row = validate_object(
                item.redrive_key,
                settings=adapters.settings,
                raw_store=raw,
                lake_store=lake,
                state=adapters.state,
            )
            item.outcome = {
                "events_in": row.events_in,
                "validated": row.validated,
                "quarantined": row.quarantined,
                "duplicates": row.duplicates,
                "validated_key": row.validated_key,
                "quarantine_key": row.quarantine_key,
            }
    return items
