"""The record sink ingest writes to: Kinesis Data Firehose, PutRecordBatch with the service's limits, re-sending only
failed records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from clickstream.adapters.aws import client
from clickstream.core.errors import TransientError

MAX_RECORD_BYTES = 1_000 * 1024  # Firehose: 1,000 KiB per record
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024


class RecordSink(Protocol):
    def put_records(self, records: list[bytes]) -> None: ...


@dataclass
class FirehoseSink:
    stream_name: str
    max_attempts: int = 3

    def put_records(self, records: list[bytes]) -> None:
        for batch in _batches(records):
            self._put_batch(batch)

    def _put_batch(self, batch: list[bytes]) -> None:
        pending = batch
        for _ in range(self.max_attempts):
            resp = client("firehose").put_record_batch(
                DeliveryStreamName=self.stream_name, Records=[{"Data": r} for r in pending]
            )
            if not resp.get("FailedPutCount"):
                return
            pending = [
                r for r, res in zip(pending, resp["RequestResponses"], strict=True) if res.get("ErrorCode")
            ]
        raise TransientError(f"Firehose refused {len(pending)} record(s) after {self.max_attempts} attempts")


def _batches(records: list[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    cur: list[bytes] = []
    size = 0
    for r in records:
        if len(r) > MAX_RECORD_BYTES:
            raise ValueError(f"record of {len(r)} bytes exceeds Firehose's {MAX_RECORD_BYTES}")
        if cur and (len(cur) >= MAX_BATCH_RECORDS or size + len(r) > MAX_BATCH_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(r)
        size += len(r)
    if cur:
        out.append(cur)
    return out
