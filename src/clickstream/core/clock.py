"""One clock for the whole pipeline, so the local runner can simulate time.

Lambda uses the wall clock. The local runner installs a simulated clock with :func:`set_clock`, shared by
ingest (``requestTimeEpoch``), validation (arrival) and the pipeline (watermark).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_clock: Callable[[], datetime] | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _clock() if _clock is not None else datetime.now(UTC)


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Install a clock (a callable returning an aware UTC datetime); ``None`` restores the wall clock."""
    global _clock
    _clock = clock


class SimulatedClock:
    """A settable clock: ``clock.set(dt)`` / ``clock.advance(seconds)``; install it with ``set_clock(clock)``."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        from datetime import timedelta

        self._now = self._now + timedelta(seconds=seconds)
        return self._now
