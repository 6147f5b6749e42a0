"""The validate step: one raw object in → validated Parquet, quarantine JSON lines and a ledger row out.

Outputs are named after the source object and its arrival hour (``clickstream.core.keys``), and the arrival hour
comes from the object itself, so a redelivered notification rewrites the same files and the same ledger row.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.adapters.state import StateStore
from clickstream.adapters.storage import ObjectStore
from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.errors import InputError
from clickstream.core.keys import RAW_PREFIX, quarantine_key, validated_key
from clickstream.core.observability import logger
from clickstream.core.times import iso, parse_instant
from clickstream.validate.engine import judge_to_parquet
from clickstream.validate.judge import Judgement, JudgeOptions
from clickstream.validate.keys import arrival_hour_of
from clickstream.validate.notifications import parse_notification
from clickstream.validate.writer import JSONL_CONTENT_TYPE, PARQUET_CONTENT_TYPE, quarantine_jsonl


@dataclass
class LedgerRow:
    """Per source object: events in = validated + quarantined (by reason) + duplicates."""

    source_key: str
    validated_key: str | None
    quarantine_key: str | None
    records: int
    events_in: int
    validated: int
    quarantined: dict[str, int] = field(default_factory=dict)
    quarantined_total: int = 0
    duplicates: int = 0
    validated_at: datetime = field(default_factory=clock.now)
    max_received_at: datetime | None = None
    arrival_hour: datetime | None = None
    etag: str | None = None
    size: int | None = None
    # Sticky: some validation of this object gave it valid rows. A later one that gives none must still reach the
    # sessionizer, so those rows leave the bucket state (``pipeline.plan`` counts such an object as one to take).
    had_valid: bool = False

    def as_item(self) -> dict[str, Any]:
        return asdict(self)


TOMBSTONE_TTL_SECONDS = 60.0
_tombstone_cache: dict[str, tuple[float, frozenset[str]]] = {}


def load_tombstones(state: StateStore, *, ttl_seconds: float = TOMBSTONE_TTL_SECONDS) -> frozenset[str]:
    """The tombstoned id hashes, read at most once per ``ttl_seconds`` per state table and process (a warm Lambda
    validates many objects; an erasure takes effect within the TTL)."""
    import time

    key = getattr(state, "table_name", None) or str(id(state))
    now = time.monotonic()
    cached = _tombstone_cache.get(key)
    if cached is not None and now - cached[0] < ttl_seconds:
        return cached[1]
    stones = state.tombstones()
    _tombstone_cache[key] = (now, stones)
    return stones


def options_from(settings: Settings, tombstones: frozenset[str] = frozenset()) -> JudgeOptions:
    return JudgeOptions(
        lookback=timedelta(hours=settings.lookback_hours),
        internal_networks=tuple(settings.internal_networks),
        tombstones=tombstones,
        sensitive_url_params=settings.sensitive_url_params,
    )


def validate_object(
    source_key: str,
    *,
    settings: Settings,
    raw_store: ObjectStore,
    lake_store: ObjectStore,
    state: StateStore,
    etag: str | None = None,
    size: int | None = None,
) -> LedgerRow:
    """Validate and enrich one raw object; write its outputs and its ledger row. Idempotent per object.

    The object is judged by the set-based engine (``engine.judge_to_parquet``: DuckDB, held equal to the
    event-by-event judge by the tests), which writes the validated Parquet to a temp file uploaded from there."""
    data = raw_store.get_bytes(source_key)
    options = options_from(settings, load_tombstones(state))
    with tempfile.TemporaryDirectory(prefix="clickstream-validate-") as tmp:
        parquet = Path(tmp) / "validated.parquet"
        judgement = judge_to_parquet(data, source_key=source_key, options=options, path=parquet)
        return _record_outcome(
            source_key,
            data,
            judgement,
            parquet,
            lake_store=lake_store,
            state=state,
            etag=etag,
            size=size,
        )


def _record_outcome(
    source_key: str,
    data: bytes,
    judgement: Judgement,
    parquet: Path,
    *,
    lake_store: ObjectStore,
    state: StateStore,
    etag: str | None,
    size: int | None,
) -> LedgerRow:
    """Upload the outputs of a judged object, remove stale ones, and write its ledger row."""
    previous = state.get_ledger(source_key)
    arrival = arrival_hour_of(source_key, judgement.max_received_at) or _previous_arrival(previous)
    if arrival is None:  # nothing in the object or its key tells its arrival: the pipeline clock does, once
        arrival = clock.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    validated_at = clock.now()

    v_key = validated_key(source_key, arrival) if judgement.validated else None
    q_key = quarantine_key(source_key, arrival) if judgement.quarantine else None
    _write_outputs(judgement, parquet, lake_store, v_key, q_key, quarantined_at=iso(validated_at))
    _remove_stale(previous, lake_store, keep={v_key, q_key})

    row = LedgerRow(
        source_key=source_key,
        validated_key=v_key,
        quarantine_key=q_key,
        records=judgement.records,
        events_in=judgement.events_in,
        validated=judgement.validated,
        quarantined=judgement.quarantined,
        quarantined_total=judgement.quarantined_total,
        duplicates=judgement.duplicates,
        validated_at=validated_at,
        max_received_at=judgement.max_received_at,
        arrival_hour=arrival,
        etag=etag or hashlib.md5(data, usedforsecurity=False).hexdigest(),
        size=size if size is not None else len(data),
        had_valid=bool(judgement.validated)
        or bool(previous and (previous.get("had_valid") or previous.get("validated_key"))),
    )
    state.put_ledger(row.as_item())
    logger.info(
        "validated object",
        extra={
            "source_key": source_key,
            "events_in": row.events_in,
            "validated": row.validated,
            "quarantined": row.quarantined,
            "duplicates": row.duplicates,
        },
    )
    return row


def _write_outputs(
    judgement: Judgement,
    parquet: Path,
    lake_store: ObjectStore,
    v_key: str | None,
    q_key: str | None,
    *,
    quarantined_at: str,
) -> None:
    if v_key is not None:
        lake_store.upload(parquet, v_key, content_type=PARQUET_CONTENT_TYPE)
    if q_key is not None:
        body = quarantine_jsonl(judgement.quarantine, quarantined_at)
        lake_store.put_bytes(q_key, body, content_type=JSONL_CONTENT_TYPE)


def _previous_arrival(previous: dict[str, Any] | None) -> datetime | None:
    value = (previous or {}).get("arrival_hour")
    if not isinstance(value, str):
        return None
    return parse_instant(value, field="arrival_hour")


def _remove_stale(previous: dict[str, Any] | None, lake_store: ObjectStore, *, keep: set[str | None]) -> None:
    """Delete outputs an earlier run of this object wrote and this run did not (e.g. after a schema fix)."""
    for name in ("validated_key", "quarantine_key"):
        old = (previous or {}).get(name)
        if isinstance(old, str) and old not in keep:
            lake_store.delete(old)


def process_notification(
    body: str | dict[str, Any], *, settings: Settings, adapters: Adapters | None = None
) -> list[LedgerRow]:
    """Validate every raw object an S3 notification (one SQS message body) names."""
    rows: list[LedgerRow] = []
    refs = parse_notification(body)
    stores = adapters or adapters_for(settings)
    for ref in refs:
        if ref.bucket != settings.raw_bucket:
            raise InputError(
                f"notification for bucket {ref.bucket!r}, expected the raw bucket {settings.raw_bucket!r}"
            )
        if not ref.key.startswith(RAW_PREFIX):
            logger.warning("ignoring an object outside raw/", extra={"key": ref.key})
            continue
        rows.append(
            validate_object(
                ref.key,
                settings=settings,
                raw_store=stores.raw,
                lake_store=stores.lake,
                state=stores.state,
                etag=ref.etag,
                size=ref.size,
            )
        )
    return rows
