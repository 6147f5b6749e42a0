"""What the pipeline's steps share: the run's plan, the window manifest, each bucket's answer, the run's files.

The steps (``plan``, ``sessionize``, ``load``, ``aggregate``, ``commit``) never import one another; what one writes
and another reads is defined here; each step's own Input (and a Result no other step reads) stands at the top of
its module. The state machine (``statemachine/pipeline.asl.json``) passes each Lambda task ``{"execution_id", …}``
and keeps the task's answer under ``$.<step>.result``: Plan's answer (:class:`PlanResult`, the run's plan) reaches
Load, Aggregate and Commit, each bucket's Sessionize answer (:class:`SessionizeResult`) reaches Load, and Load's
(:class:`LoadResult`) reaches Aggregate. Every step is idempotent: the same payload twice gives the same effect.

Files a run writes in the lake bucket (``core.keys``):
  runs/<run_id>/manifest.json                      Plan: the validated objects of this window
  runs/<run_id>/bucket=NNNN/events.parquet         Sessionize: the affected visitors' recomputed kept events + session_id
  runs/<run_id>/bucket=NNNN/sessions.parquet       Sessionize: their recomputed sessions (from replace_from on)
  runs/<run_id>/bucket=NNNN/visitors.parquet       Sessionize: the affected anonymous_ids, each with replace_from
                                                   (their sessions from that start on get replaced; null: all)
  runs/<run_id>/bucket=NNNN/users.parquet          Sessionize: their users links (frozen history's and new ones)
  runs/<run_id>/bucket=NNNN/result.json            Sessionize: its answer (read by Load on the back-fill path)
  runs/<run_id>/items.json                         Plan (back-fill): the Distributed Map's items, one per bucket
The bucket state the Sessionize step keeps between runs is laid out in ``sessionize.state``.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clickstream.adapters.storage import ObjectStore
from clickstream.core.keys import run_prefix
from clickstream.core.times import parse_instant

INCREMENTAL = "incremental"
FULL = "full"
BACKFILL = "backfill"

MANIFEST_NAME = "manifest.json"
ITEMS_NAME = "items.json"
RUN_EVENTS = "events.parquet"
RUN_SESSIONS = "sessions.parquet"
RUN_VISITORS = "visitors.parquet"
RUN_USERS = "users.parquet"
RUN_RESULT = "result.json"
_ARRIVAL_DAY = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/")


class Contract(BaseModel):
    """A payload between steps: unknown fields are ignored (the state machine adds its own), aliases accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class BackfillRange(Contract):
    """Arrival days (the lake's ``dt=`` partitions, UTC), both included."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillRange:
        if self.end < self.start:
            raise ValueError(f"the back-fill ends ({self.end}) before it starts ({self.start})")
        return self


class ManifestObject(Contract):
    source_key: str
    validated_key: str | None = None  # None when the object had no valid event
    validated_at: str
    had_valid: bool = False  # an earlier validation gave it valid rows (they must leave the state)

    @property
    def to_sessionize(self) -> bool:
        """The run must sessionize this object: it has valid rows now, or had some that must go."""
        return self.validated_key is not None or self.had_valid


class Manifest(Contract):
    """The window's objects, written by Plan and read by every Sessionize task of the run."""

    run_id: str
    watermark_from: str | None
    watermark_to: str
    n_buckets: int
    objects: list[ManifestObject]
    kind: str = INCREMENTAL  # incremental | full | backfill

    @property
    def n_to_sessionize(self) -> int:
        """How many of its objects the run must sessionize (``ManifestObject.to_sessionize``)."""
        return sum(1 for o in self.objects if o.to_sessionize)


class PlanResult(Contract):
    """The run's plan: Plan's answer, which the state machine hands to Load, Aggregate and Commit."""

    run_id: str
    execution_id: str
    watermark_from: str | None
    watermark_to: str
    # The objects whose rows this run sessionizes (valid rows now, or rows that must leave the state).
    n_objects: int
    n_buckets: int
    manifest_key: str
    buckets: list[int]  # the inline Map's items (empty on the back-fill path)
    kind: str = INCREMENTAL
    # Back-fill: the Distributed Map reads its items (one per bucket) from s3://<lake_bucket>/<items_key>.
    distributed: bool = False
    lake_bucket: str | None = None
    items_key: str | None = None


class SessionizeResult(Contract):
    """One bucket's answer: what the Sessionize step wrote for Load (also left as the bucket's ``result.json``)."""

    run_id: str
    bucket: int
    n_new_events: int = 0  # validated rows of this window that fall in the bucket
    n_visitors: int = 0  # affected visitors
    n_events: int = 0  # kept events of the affected visitors (after dedupe)
    n_sessions: int = 0
    n_duplicates: int = 0  # cross-object duplicates in the state slices this run rewrote
    n_conflicts: int = 0  # duplicate_conflict in the state slices this run rewrote
    n_slices: int = 0  # state slices read and rewritten
    n_thawed_slices: int = 0  # slices whose frozen part the run read and wrote again (sessionize.history)
    n_thawed_visitors: int = 0  # visitors recomputed whole because what arrived reached their frozen history
    state_rows_read: int = 0  # hot rows and sessions, tail rows and users links of the touched slices
    index_rows_read: int = 0  # frozen-id index and object index rows
    id_rows_read: int = 0  # of index_rows_read, the frozen-id index's (a filter built from it)
    frozen_rows_read: int = 0  # frozen rows and sessions read (thaws, and copies of frozen events)
    state_bytes_read: int = 0  # every state file the run read
    state_rows_written: int = 0  # rows of every state file the run wrote
    events_key: str | None = None
    sessions_key: str | None = None
    visitors_key: str | None = None
    users_key: str | None = None


class LoadResult(Contract):
    """What Load wrote to the warehouse: Load's answer, which the state machine hands to Aggregate."""

    run_id: str
    events_loaded: int
    sessions_loaded: int
    visitors_replaced: int
    affected_days: list[str]  # YYYY-MM-DD in the site time zone


# -- the run's files ---------------------------------------------------------------------------------------------
def manifest_key(run_id: str) -> str:
    """Where a run's manifest lives in the lake bucket."""
    return f"{run_prefix(run_id)}{MANIFEST_NAME}"


def items_key(run_id: str) -> str:
    """Where a back-fill's Distributed Map items live in the lake bucket."""
    return f"{run_prefix(run_id)}{ITEMS_NAME}"


def run_bucket_prefix(run_id: str, bucket: int) -> str:
    """The folder of one bucket's outputs in a run."""
    return f"{run_prefix(run_id)}bucket={bucket:04d}/"


def run_result_key(run_id: str, bucket: int) -> str:
    """Where the Sessionize step leaves its answer for a bucket of a run."""
    return run_bucket_prefix(run_id, bucket) + RUN_RESULT


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest's canonical JSON: sorted keys, so the same window always gives the same bytes."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, indent=1).encode("utf-8")


def read_manifest(store: ObjectStore, run_id: str) -> Manifest:
    """The manifest a Plan step wrote for ``run_id`` (later steps read their objects from here)."""
    return Manifest.model_validate_json(store.get_bytes(manifest_key(run_id)))


# -- arrival days (a back-fill's unit) -----------------------------------------------------------------------------
def arrival_day(validated_key: str | None) -> date | None:
    """The arrival day of a validated object: its ``dt=`` partition in the lake."""
    match = _ARRIVAL_DAY.search(validated_key or "")
    return date.fromisoformat(match.group(1)) if match else None


def ledger_arrival_day(row: dict[str, Any]) -> date | None:
    """The arrival day of a ledger row's object: its validated object's partition, else (an object with no valid
    event) the arrival hour validation recorded, else the raw key's own ``dt=`` partition."""
    day = arrival_day(row.get("validated_key"))
    if day is None and row.get("arrival_hour"):
        day = parse_instant(row["arrival_hour"], field="arrival_hour").date()
    return day or arrival_day(row.get("source_key"))
