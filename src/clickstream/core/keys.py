"""Object key naming in the raw and lake buckets. One place, so every stage agrees.

Raw (Firehose prefix, Hive-style by arrival): ``raw/dt=YYYY-MM-DD/hr=HH/<firehose object name>``.
Lake (by arrival hour of the source object, named after it so a re-run overwrites, never duplicates):
``validated/dt=…/hr=…/<stem>.parquet`` and ``quarantine/dt=…/hr=…/<stem>.jsonl``.
Sessionized state per user bucket and slice, split into hot and frozen history behind the bucket's ``state.json``:
``sessionized/bucket=NNNN/slice=SS/…`` (layout in ``clickstream.sessionize.state``), and the slice's sessions apart,
``sessions/bucket=NNNN/slice=SS/{hot,frozen-<run>}.parquet``, so the lake's sessions table (Glue) locates folders
that hold sessions only.
Per-run work files: ``runs/<run_id>/…``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

RAW_PREFIX = "raw/"
VALIDATED_PREFIX = "validated/"
QUARANTINE_PREFIX = "quarantine/"
SESSIONIZED_PREFIX = "sessionized/"
SESSIONS_PREFIX = "sessions/"
RUNS_PREFIX = "runs/"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def object_stem(source_key: str) -> str:
    """A file name derived from the source object key alone: readable tail plus a hash of the whole key."""
    tail = _UNSAFE.sub("_", source_key.rsplit("/", 1)[-1])[-80:] or "object"
    digest = hashlib.sha256(source_key.encode("utf-8")).hexdigest()[:16]
    return f"{tail}-{digest}"


def partition(ts: datetime) -> str:
    return f"dt={ts:%Y-%m-%d}/hr={ts:%H}"


def validated_key(source_key: str, arrival_hour: datetime) -> str:
    return f"{VALIDATED_PREFIX}{partition(arrival_hour)}/{object_stem(source_key)}.parquet"


def quarantine_key(source_key: str, arrival_hour: datetime) -> str:
    return f"{QUARANTINE_PREFIX}{partition(arrival_hour)}/{object_stem(source_key)}.jsonl"


def bucket_prefix(bucket: int) -> str:
    return f"{SESSIONIZED_PREFIX}bucket={bucket:04d}/"


def sessions_bucket_prefix(bucket: int) -> str:
    return f"{SESSIONS_PREFIX}bucket={bucket:04d}/"


def run_prefix(run_id: str) -> str:
    return f"{RUNS_PREFIX}{_UNSAFE.sub('_', run_id)}/"
