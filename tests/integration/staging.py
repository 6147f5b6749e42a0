"""Validated objects as the validate step leaves them, for the pipeline's integration tests: the object's Parquet in
the lake and its ledger row (what Plan reads to find the objects of a window)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from tests.unit.sessionize.data import Stream, write_parquet


def stage_validated(
    lake: S3ObjectStore, state: DynamoStateStore, stream: Stream, key: str, validated_at: datetime, tmp: Path
) -> None:
    """The stream's rows at ``key`` in the lake, and the ledger row of its source object (``stream.source_object``)
    validated at ``validated_at`` with valid rows."""
    name = stream.source_object.rsplit("/", 1)[-1]
    lake.upload(write_parquet(tmp / f"{name}.parquet", stream.rows), key)
    state.put_ledger(
        {
            "source_key": stream.source_object,
            "validated_at": validated_at,
            "validated_key": key,
            "had_valid": True,
        }
    )
