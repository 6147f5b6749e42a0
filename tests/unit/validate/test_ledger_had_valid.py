"""The ledger remembers that an object once had valid rows, so a re-validation that leaves it none still reaches the
sessionizer (which removes those rows from the bucket state)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core import clock
from clickstream.validate.step import validate_object
from tests.unit.validate.helpers import event, raw_object, record

KEY = "raw/dt=2026-03-02/hr=10/clickstream-events-1-2026-03-02-10-05-00-abc"


@pytest.fixture
def sim_clock():
    clock.set_clock(clock.SimulatedClock(datetime(2026, 3, 2, 10, 7, tzinfo=UTC)))
    yield
    clock.set_clock(None)


def _validate(aws, body: bytes):
    s = aws.settings
    raw, lake, state = (
        S3ObjectStore(s.raw_bucket),
        S3ObjectStore(s.lake_bucket),
        DynamoStateStore(s.state_table),
    )
    raw.put_bytes(KEY, body)
    validate_object(KEY, settings=s, raw_store=raw, lake_store=lake, state=state)
    return state.get_ledger(KEY)


def test_an_object_never_valid_has_no_valid_past(aws, sim_clock):
    # Given an object whose only event is invalid
    # When it is validated
    row = _validate(aws, raw_object(record([event(event_id="bad")])))
    # Then its ledger row says it never had valid rows
    assert row["validated"] == 0 and row["had_valid"] is False


def test_the_valid_past_survives_re_validations_that_leave_nothing(aws, sim_clock):
    # Given an object validated once with a valid event
    assert _validate(aws, raw_object(record([event()])))["had_valid"] is True
    # When it is re-validated twice, each time with nothing valid left
    first = _validate(aws, raw_object(record([event(event_id="bad")])))
    second = _validate(aws, raw_object(record([event(event_id="bad")])))
    # Then both ledger rows keep the valid past, with no validated file
    for row in (first, second):
        assert row["had_valid"] is True and row.get("validated_key") is None
