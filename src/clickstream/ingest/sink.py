"""The record sink ingest writes to: the settings' Firehose stream (``adapters.factory``), replaceable by a sink
installed with :func:`set_sink` (tests, and the laptop stack's emulation of Firehose's delivery buffer)."""

from __future__ import annotations

from clickstream.adapters.factory import adapters_for
from clickstream.adapters.sink import RecordSink
from clickstream.core.config import Settings

_override: RecordSink | None = None


def get_sink(settings: Settings) -> RecordSink:
    """The sink installed with :func:`set_sink`, else the Firehose stream named in ``settings``."""
    return _override if _override is not None else adapters_for(settings).sink


def set_sink(sink: RecordSink | None) -> None:
    """Install a sink for every following request (tests, local tools); ``None`` restores Firehose."""
    global _override
    _override = sink
