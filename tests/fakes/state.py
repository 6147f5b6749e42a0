"""An in-memory :class:`clickstream.adapters.state.StateStore`, for property tests of Plan and Commit.

It follows the adapter's documented contract (a ledger window is ``after < validated_at <= until``, the watermark
only moves forward, a lease is held until it expires or its owner gives it back); the DynamoDB adapter itself is
tested against moto.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clickstream.core import clock
from clickstream.core.times import iso, parse_instant


@dataclass
class MemoryStateStore:
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)
    stones: dict[str, str] = field(default_factory=dict)  # id hash -> kind
    watermark: tuple[str, str] | None = None  # (ISO instant, run id)

    def put_ledger(self, row: Mapping[str, Any]) -> None:
        self.ledger[row["source_key"]] = {
            **{k: v for k, v in row.items() if v is not None},
            "validated_at": iso(row["validated_at"]),
        }

    def get_ledger(self, source_key: str) -> dict[str, Any] | None:
        row = self.ledger.get(source_key)
        return dict(row) if row else None

    def all_ledger(self) -> Iterator[dict[str, Any]]:
        yield from (dict(row) for row in self.ledger.values())

    def ledger_between(self, after: datetime | None, until: datetime) -> list[dict[str, Any]]:
        lo = iso(after) if after is not None else ""
        rows = [r for r in self.all_ledger() if lo < r["validated_at"] <= iso(until)]
        return sorted(rows, key=lambda r: (r["validated_at"], r["source_key"]))

    def get_watermark(self) -> datetime | None:
        return parse_instant(self.watermark[0]) if self.watermark else None

    def watermark_run(self) -> str | None:
        return self.watermark[1] if self.watermark else None

    def set_watermark(self, ts: datetime, run_id: str) -> bool:
        if self.watermark is not None and self.watermark[0] >= iso(ts):
            return False
        self.watermark = (iso(ts), run_id)
        return True

    def put_run(self, record: Mapping[str, Any]) -> None:
        self.runs[record["run_id"]] = {k: v for k, v in record.items() if v is not None}

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        run = self.runs.get(run_id)
        return dict(run) if run else None

    def put_tombstone(self, kind: str, id_hash: str, created_at: datetime | None = None) -> None:
        self.stones.setdefault(id_hash, kind)

    def tombstones(self) -> frozenset[str]:
        return frozenset(self.stones)

    def acquire_lease(self, name: str, owner: str, until: datetime, *, now: datetime | None = None) -> bool:
        held = self.leases.get(name)
        if held and held["owner"] != owner and held["until"] > iso(now or clock.now()):
            return False
        self.leases[name] = {"owner": owner, "until": iso(until)}
        return True

    def release_lease(self, name: str, owner: str) -> bool:
        held = self.leases.get(name)
        if not held or held["owner"] != owner:
            return False
        del self.leases[name]
        return True

    def get_lease(self, name: str) -> dict[str, Any] | None:
        held = self.leases.get(name)
        return dict(held) if held else None
