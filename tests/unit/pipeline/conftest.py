"""Fixtures for the Plan and Commit steps: the state table and lake bucket in moto, and a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from clickstream.core.clock import SimulatedClock, set_clock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def sim_clock() -> Iterator[SimulatedClock]:
    """The pipeline's clock, set to ``T0`` and restored to the wall clock afterwards."""
    clock = SimulatedClock(T0)
    set_clock(clock)
    yield clock
    set_clock(None)


@pytest.fixture
def state(aws):
    from clickstream.adapters.state import DynamoStateStore

    return DynamoStateStore(aws.settings.state_table)


@pytest.fixture
def lake(aws):
    from clickstream.adapters.storage import S3ObjectStore

    return S3ObjectStore(aws.settings.lake_bucket)
