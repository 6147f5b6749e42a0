"""The record sink ingest writes to: Firehose in Lambda and locally (moto), replaceable in tests."""

from __future__ import annotations

from functools import lru_cache

from clickstream.adapters.sink import FirehoseSink, RecordSink
from clickstream.core.config import Settings

_override: RecordSink | None = None


@lru_cache(maxsize=8)
def _firehose(stream_name: str) -> FirehoseSink:
    return FirehoseSink(stream_name)


def get_sink(settings: Settings) -> RecordSink:
    """The sink installed with :func:`set_sink`, else the Firehose stream named in ``settings``."""
    return _override if _override is not None else _firehose(settings.delivery_stream)


def set_sink(sink: RecordSink | None) -> None:
    """Install a sink for every following request (tests, local tools); ``None`` restores Firehose."""
    global _override
    _override = sink
