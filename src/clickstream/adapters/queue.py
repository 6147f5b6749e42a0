"""An SQS queue messages are sent to (a back-fill re-drives raw objects through the validate queue)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from clickstream.adapters.aws import client

SQS_BATCH = 10  # SendMessageBatch takes at most ten entries


class QueueRefused(RuntimeError):
    """The queue did not take every message."""


class Queue(Protocol):
    @property
    def url(self) -> str: ...

    def send(self, bodies: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class SqsQueue:
    url: str

    def send(self, bodies: Sequence[str]) -> None:
        """Send every body, in batches of ten; raises :class:`QueueRefused` naming the first refusal."""
        sqs = client("sqs")
        for start in range(0, len(bodies), SQS_BATCH):
            batch = bodies[start : start + SQS_BATCH]
            entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(batch)]
            failed = sqs.send_message_batch(QueueUrl=self.url, Entries=entries).get("Failed") or []
            if failed:
                raise QueueRefused(f"the queue refused {len(failed)} message(s): {failed[0]}")
