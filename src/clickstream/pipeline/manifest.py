"""Payloads between the state machine's steps (``statemachine/pipeline.asl.json``).

The ASL passes each Lambda task ``{"execution_id", …}`` as shown below and keeps the task's answer under
``$.<step>.result``. Every step is idempotent: the same payload twice gives the same effect.

Files a run writes in the lake bucket (``core.keys``):
  runs/<run_id>/manifest.json                      Plan: the validated objects of this window
  runs/<run_id>/bucket=NNNN/events.parquet         Sessionize: every kept event of the affected visitors + session_id
  runs/<run_id>/bucket=NNNN/sessions.parquet       Sessionize: their sessions (all of them, recomputed)
  runs/<run_id>/bucket=NNNN/visitors.parquet       Sessionize: the affected anonymous_ids (whose rows get replaced)
  runs/<run_id>/bucket=NNNN/result.json            Sessionize: its answer (read by Load on the back-fill path)
  runs/<run_id>/items.json                         Plan (back-fill): the Distributed Map's items, one per bucket
  sessionized/bucket=NNNN/slice=SS/all.parquet     Sessionize: the bucket's current state (every row), in slices
  sessions/bucket=NNNN/slice=SS/sessions.parquet   Sessionize: the slice's sessions (the lake's sessions table)
  sessionized/bucket=NNNN/objects.parquet          Sessionize: which slices hold rows of each source object
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator

INCREMENTAL = "incremental"
FULL = "full"
BACKFILL = "backfill"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class PlanInput(_Model):
    execution_id: str
    execution_name: str
    started_at: str | None = None
    # The execution's own input: {"as_of": ISO-8601 (simulated clock; default now - settle delay),
    # "full": bool (re-read every arrived object, e.g. after a schema fix),
    # "backfill": {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"} (re-process the validated objects of those arrival
    # days through the Distributed Map; the watermark stays where it is)}
    input: dict = Field(default_factory=dict)


class BackfillRange(_Model):
    """Arrival days (the lake's ``dt=`` partitions, UTC), both included."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillRange:
        if self.end < self.start:
            raise ValueError(f"the back-fill ends ({self.end}) before it starts ({self.start})")
        return self


class ManifestObject(_Model):
    source_key: str
    validated_key: str | None = None  # None when the object had no valid event
    validated_at: str
    had_valid: bool = False  # an earlier validation gave it valid rows (they must leave the state)

    @property
    def to_sessionize(self) -> bool:
        """The run must sessionize this object: it has valid rows now, or had some that must go."""
        return self.validated_key is not None or self.had_valid


class Manifest(_Model):
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


class PlanResult(_Model):
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


class SessionizeInput(_Model):
    run_id: str
    bucket: int
    # The execution that runs the step (the state machine passes Plan's): when given, the step checks that it still
    # holds the pipeline lease before it writes the bucket state (``pipeline.lease.hold_pipeline_lease``).
    execution_id: str | None = None


class SessionizeResult(_Model):
    run_id: str
    bucket: int
    n_new_events: int = 0  # validated rows of this window that fall in the bucket
    n_visitors: int = 0  # affected visitors
    n_events: int = 0  # kept events of the affected visitors (after dedupe)
    n_sessions: int = 0
    n_duplicates: int = 0  # cross-object duplicates in the state slices this run rewrote
    n_conflicts: int = 0  # duplicate_conflict in the state slices this run rewrote
    n_slices: int = 0  # state slices read and rewritten
    events_key: str | None = None
    sessions_key: str | None = None
    visitors_key: str | None = None


class LoadInput(_Model):
    execution_id: str
    plan: PlanResult
    # The inline Map's answers; on the back-fill path empty, and Load reads each bucket's result.json instead.
    buckets: list[SessionizeResult] = Field(default_factory=list)


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
    lease_released: bool = False  # False when the lease was no longer this execution's (it had expired)


class ReleaseInput(_Model):
    """The failure path's call of the Commit function: give the pipeline lease back, touch nothing else."""

    action: str = Field(pattern="^release$")
    execution_id: str


class ReleaseResult(_Model):
    execution_id: str
    # False when this execution did not hold the lease (never took it, or already gave it back).
    released: bool
