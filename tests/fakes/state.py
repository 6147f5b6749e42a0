"""In-memory stand-ins for the state table and the lake bucket, for property tests of Plan and Commit.

They follow the adapters' documented contracts (``clickstream.adapters.state.StateStore``: a ledger window is
``after < validated_at <= until``); the DynamoDB and S3 adapters themselves are tested against moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clickstream.adapters.state import iso


@dataclass
class MemoryStateStore:
    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def put_item(self, pk: str, sk: str, attrs: dict[str, Any]) -> None:
        self.items[(pk, sk)] = {"pk": pk, "sk": sk, **{k: v for k, v in attrs.items() if v is not None}}

    def get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.items.get((pk, sk))
        return dict(item) if item else None

    def put_ledger(self, row: dict[str, Any]) -> None:
        self.put_item(
            f"ledger#{row['source_key']}", "ledger", {**row, "validated_at": iso(row["validated_at"])}
        )

    def get_ledger(self, source_key: str) -> dict[str, Any] | None:
        return self.get_item(f"ledger#{source_key}", "ledger")

    def all_ledger(self) -> Iterator[dict[str, Any]]:
        yield from (dict(v) for (_, sk), v in self.items.items() if sk == "ledger")

    def ledger_between(self, after: datetime | None, until: datetime) -> list[dict[str, Any]]:
        lo = iso(after) if after is not None else ""
        rows = [r for r in self.all_ledger() if lo < r["validated_at"] <= iso(until)]
        return sorted(rows, key=lambda r: (r["validated_at"], r["source_key"]))

    def get_watermark(self) -> datetime | None:
        item = self.get_item("watermark", "pipeline")
        return datetime.fromisoformat(item["value"].replace("Z", "+00:00")) if item else None

    def set_watermark(self, ts: datetime, run_id: str) -> None:
        self.put_item("watermark", "pipeline", {"value": iso(ts), "run_id": run_id})

    def acquire_lease(self, name: str, owner: str, until: datetime, *, now: datetime | None = None) -> bool:
        from clickstream.core import clock

        held = self.get_item(f"lease#{name}", "lease")
        if held and held["owner"] != owner and held["until"] > iso(now or clock.now()):
            return False
        self.put_item(f"lease#{name}", "lease", {"owner": owner, "until": iso(until)})
        return True

    def release_lease(self, name: str, owner: str) -> bool:
        held = self.get_item(f"lease#{name}", "lease")
        if not held or held["owner"] != owner:
            return False
        del self.items[(f"lease#{name}", "lease")]
        return True

    def get_lease(self, name: str) -> dict[str, Any] | None:
        held = self.get_item(f"lease#{name}", "lease")
        return {"owner": held["owner"], "until": held["until"]} if held else None


@dataclass
class MemoryObjectStore:
    bucket: str = "memory"
    objects: dict[str, bytes] = field(default_factory=dict)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = bytes(data)

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list_keys(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))

    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.objects[key])
        return path

    def upload(self, path: Path, key: str, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = path.read_bytes()

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
