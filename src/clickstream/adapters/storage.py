"""Object storage: S3 buckets, and a local copy of one (read-only). Data moves between S3 and the engines through
files in /tmp, never engine S3 clients."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clickstream.adapters.aws import client
from clickstream.core.errors import DomainError, InputError


class ObjectChanged(DomainError):
    """A conditional write found the object other than the caller read it (another writer replaced, created or
    deleted it since): nothing was written."""

    code = "object_changed"


class ObjectStore(Protocol):
    bucket: str

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_tagged(self, key: str) -> tuple[bytes, str]: ...
    def put_bytes_if(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str) -> Iterator[str]: ...
    def download(self, key: str, path: Path) -> Path: ...
    def upload(self, path: Path, key: str, content_type: str = "application/octet-stream") -> None: ...
    def delete(self, key: str) -> None: ...


@dataclass
class S3ObjectStore:
    bucket: str

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        client("s3").put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        data: bytes = client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its ETag (what :meth:`put_bytes_if` compares with)."""
        got = client("s3").get_object(Bucket=self.bucket, Key=key)
        return got["Body"].read(), str(got["ETag"])

    def put_bytes_if(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        """Write only if the object still has ``etag`` (None: only if it does not exist), an S3 conditional write
        (``If-Match`` / ``If-None-Match: *``); raise :class:`ObjectChanged` otherwise. Returns the new ETag."""
        s3 = client("s3")
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            put = s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type or "application/octet-stream",
                **condition,
            )
        except s3.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404"):
                raise ObjectChanged(
                    f"s3://{self.bucket}/{key} changed since it was read ({code}): not written"
                ) from exc
            raise
        return str(put["ETag"])

    def exists(self, key: str) -> bool:
        s3 = client("s3")
        try:
            s3.head_object(Bucket=self.bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        client("s3").download_file(self.bucket, key, str(path))
        return path

    def upload(self, path: Path, key: str, content_type: str = "application/octet-stream") -> None:
        client("s3").upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def delete(self, key: str) -> None:
        client("s3").delete_object(Bucket=self.bucket, Key=key)


@dataclass
class DirectoryObjectStore:
    """A local copy of a bucket (``aws s3 sync s3://<lake> DIR``): keys are paths under ``root``. Read-only."""

    root: Path
    bucket: str = "local"

    def get_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, hashlib.md5(data, usedforsecurity=False).hexdigest()

    def put_bytes_if(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        raise InputError("a local lake copy is read-only")

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                yield key

    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.get_bytes(key))
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        raise InputError("a local lake copy is read-only")

    def upload(self, path: Path, key: str, content_type: str = "") -> None:
        raise InputError("a local lake copy is read-only")

    def delete(self, key: str) -> None:
        raise InputError("a local lake copy is read-only")
