"""An in-memory :class:`clickstream.adapters.storage.ObjectStore` (a bucket as a dict). Every read goes through
:meth:`MemoryObjectStore.get_bytes`, so a subclass that watches reads (the history benchmark's) overrides that one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clickstream.adapters.storage import ObjectChanged


@dataclass
class MemoryObjectStore:
    bucket: str = "memory"
    objects: dict[str, bytes] = field(default_factory=dict)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = bytes(data)

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, hashlib.md5(data, usedforsecurity=False).hexdigest()

    def put_bytes_if(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        current = self.objects.get(key)
        now = None if current is None else hashlib.md5(current, usedforsecurity=False).hexdigest()
        if now != etag:
            raise ObjectChanged(f"{key} changed since it was read: not written")
        self.objects[key] = bytes(data)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list_keys(self, prefix: str) -> Iterator[str]:
        # a snapshot of the keys: the step lists while its transfer threads write
        yield from sorted(k for k in list(self.objects) if k.startswith(prefix))

    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.get_bytes(key))
        return path

    def upload(self, path: Path, key: str, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = path.read_bytes()

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
