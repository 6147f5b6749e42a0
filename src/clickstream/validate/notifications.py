"""S3 event notifications as they arrive in SQS message bodies: which raw objects to validate.

Keys arrive URL-encoded (``+`` for spaces). ``s3:TestEvent`` messages (sent when the notification is configured)
and events other than ``ObjectCreated:*`` carry no work. A body that is not an S3 notification is an error: the
message is retried and then parked in the dead-letter queue, never silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from clickstream.core.errors import InputError


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    event_name: str = "ObjectCreated:Put"


def parse_notification(body: str | dict[str, Any]) -> list[ObjectRef]:
    """The created objects a notification names (empty for a test event or other event types)."""
    try:
        message = json.loads(body) if isinstance(body, str) else body
    except json.JSONDecodeError as exc:
        raise InputError(f"SQS message body is not JSON: {exc.msg}") from exc
    if not isinstance(message, dict):
        raise InputError("SQS message body is not an S3 event notification")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise InputError("SQS message body is not an S3 event notification (no Records)")
    refs: list[ObjectRef] = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise InputError("S3 notification record without eventSource aws:s3")
        event_name = str(record.get("eventName", ""))
        if not event_name.startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        key = obj.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise InputError("S3 notification record without bucket name or object key")
        size = obj.get("size")
        refs.append(
            ObjectRef(
                bucket=bucket,
                key=unquote_plus(key),
                etag=obj.get("eTag") or None,
                size=size if isinstance(size, int) else None,
                event_name=event_name,
            )
        )
    return refs
