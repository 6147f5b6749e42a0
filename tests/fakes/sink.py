"""An in-memory :class:`clickstream.adapters.sink.RecordSink` (unit tests of the ingest domain)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MemorySink:
    """Collects records in memory."""

    records: list[bytes] = field(default_factory=list)

    def put_records(self, records: list[bytes]) -> None:
        self.records.extend(records)
