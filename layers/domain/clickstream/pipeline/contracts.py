"""Payloads between the state machine's steps (``statemachine/pipeline.asl.json``).

The ASL passes each Lambda task ``{"execution_id", …}`` as shown below and keeps the task's answer under
``$.<step>.result``. Every step is idempotent: the same payload twice gives the same effect.

Files a run writes in the lake bucket (``core.keys``):
  runs/<run_id>/manifest.json                      Plan: the validated objects of this window
  runs/<run_id>/bucket=NNNN/events.parquet         Sessionize: every kept event of the affected visitors + session_id
  runs/<run_id>/bucket=NNNN/sessions.parquet       Sessionize: their sessions (all of them, recomputed)
  runs/<run_id>/bucket=NNNN/visitors.parquet       Sessionize: the affected anonymous_ids (whose rows get replaced)
  sessionized/bucket=NNNN/{events,sessions,dropped}.parquet   Sessionize: the bucket's current state
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PlanInput(_Model):
    execution_id: str
    execution_name: str
    started_at: str | None = None
    # The execution's own input: {"as_of": ISO-8601 (simulated clock; default now - settle delay),
    # "full": bool (re-read every arrived object, e.g. after a schema fix)}
    input: dict = Field(default_factory=dict)


class ManifestObject(_Model):
    source_key: str
    validated_key: str | None = None  # None when the object had no valid event
    validated_at: str


class Manifest(_Model):
    run_id: str
    watermark_from: str | None
    watermark_to: str
    n_buckets: int
    objects: list[ManifestObject]


class PlanResult(_Model):
    run_id: str
    execution_id: str
    watermark_from: str | None
    watermark_to: str
    n_objects: int
    n_buckets: int
    manifest_key: str
    buckets: list[int]


class SessionizeInput(_Model):
    run_id: str
    bucket: int


class SessionizeResult(_Model):
    run_id: str
    bucket: int
    n_new_events: int = 0  # validated rows of this window that fall in the bucket
    n_visitors: int = 0  # affected visitors
    n_events: int = 0  # kept events of the affected visitors (after dedupe)
    n_sessions: int = 0
    n_duplicates: int = 0  # cross-object duplicates in the bucket state (total)
    n_conflicts: int = 0  # duplicate_conflict in the bucket state (total)
    events_key: str | None = None
    sessions_key: str | None = None
    visitors_key: str | None = None


class LoadInput(_Model):
    execution_id: str
    plan: PlanResult
    buckets: list[SessionizeResult]


class LoadResult(_Model):
    run_id: str
    events_loaded: int
    sessions_loaded: int
    visitors_replaced: int
    affected_days: list[str]  # YYYY-MM-DD in the site time zone


class AggregateInput(_Model):
    execution_id: str
    plan: PlanResult
    loaded: LoadResult


class AggregateResult(_Model):
    run_id: str
    days_recomputed: list[str]
    report_key: str | None


class CommitInput(_Model):
    execution_id: str
    plan: PlanResult


class CommitResult(_Model):
    run_id: str
    watermark: str
    n_objects: int
    status: str = "SUCCEEDED"
