"""Builders of raw records and objects as the ingest function writes them (clickstream/raw/1 JSON lines)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.core.schema import RAW_SCHEMA_VERSION
from clickstream.validate.judge import Judgement, JudgeOptions, judge_object

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(n: int | None = None) -> str:
    return str(uuid.UUID(int=n)) if n is not None else str(uuid.uuid4())


def event(event_type: str = "page_view", *, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    """A valid event of ``event_type`` (items, money and transaction id filled in where the type needs them)."""
    body: dict[str, Any] = {
        "event_id": new_id(),
        "event_type": event_type,
        "occurred_at": iso(at),
        "page": {
            "url": "https://shop.example.com/laptops/zenbook-14",
            "referrer": None,
            "title": "Zenbook 14",
        },
    }
    if event_type in ("view_item", "add_to_cart", "remove_from_cart", "begin_checkout", "purchase"):
        body["items"] = [
            {
                "product_id": "LAP-001",
                "name": "Zenbook 14",
                "category": "Laptops",
                "brand": "Asus",
                "price": 1099.0,
                "quantity": 1,
            }
        ]
    if event_type in ("purchase", "refund"):
        body.update(value=1099.0, currency="USD", transaction_id="T-1001")
    body.update(fields)
    return body


def record(
    events: list[Any],
    *,
    received_at: datetime = T0 + timedelta(seconds=2),
    sent_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A raw record (one accepted request) holding ``events``; sent_at defaults to received_at (no skew)."""
    body: dict[str, Any] = {
        "schema": RAW_SCHEMA_VERSION,
        "request_id": new_id(),
        "source": "native",
        "received_at": iso(received_at),
        "user_id": None,
        "ip": "198.51.100.23",
        "user_agent": CHROME_MAC,
        "internal": False,
        "app_id": "shop-web",
        "sent_at": iso(sent_at or received_at),
        "anonymous_id": "anon-1",
        "context": {"locale": "en-US"},
        "events": events,
    }
    body.update(fields)
    return body


def raw_object(*records: dict[str, Any] | str) -> bytes:
    """JSON lines (a string is written as is: a corrupt line)."""
    lines = [r if isinstance(r, str) else json.dumps(r, separators=(",", ":")) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


def judge(
    data: bytes, *, lookback_hours: int = 72, networks: tuple[str, ...] = (), key: str = "raw/obj"
) -> Judgement:
    return judge_object(
        data,
        source_key=key,
        options=JudgeOptions(lookback=timedelta(hours=lookback_hours), internal_networks=networks),
    )


def load_validate_handler():
    """functions/validate/app.py as a module (each function's module is called ``app``, so load it by path)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "functions" / "validate" / "app.py"
    spec = importlib.util.spec_from_file_location("validate_function_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(*bodies: str) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it, one message per body."""
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"handle-{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:raw-objects",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def s3_notification(bucket: str, key: str, *, event_name: str = "ObjectCreated:Put") -> str:
    """An S3 event notification body (key URL-encoded as S3 sends it)."""
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventName": event_name,
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": quote_plus(key), "size": 1, "eTag": "abc"},
                    },
                }
            ]
        }
    )
