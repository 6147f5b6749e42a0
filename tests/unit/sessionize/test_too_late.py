"""``too_late`` is decided by the event alone (validate's judge), so incremental runs and a full recompute agree."""

from __future__ import annotations

from datetime import timedelta

from clickstream.validate.enrich import row_as_dict
from tests.unit.validate.helpers import T0, event, judge, raw_object, record

LOOKBACK = timedelta(hours=72)
MS = timedelta(milliseconds=1)  # the tracker's timestamps carry milliseconds


def verdicts(events: list[dict], received_at, others: list[dict] = ()) -> dict[str, str]:
    """event_id -> "valid" or the quarantine reason, judging ``events`` (plus ``others``) in one object."""
    j = judge(raw_object(record([*events, *others], received_at=received_at, sent_at=received_at)))
    out = {row_as_dict(r)["event_id"]: "valid" for r in j.rows}
    out.update({q["event"]["event_id"]: q["reason"] for q in j.quarantine})
    return out


def test_lookback_boundary_exactly_stays_one_millisecond_more_is_too_late() -> None:
    # Given events received exactly 72 h, and 72 h + 1 ms, after they occurred (device clock right)
    received = T0 + timedelta(days=5)
    exact = event(at=received - LOOKBACK)
    over = event(at=received - LOOKBACK - MS)
    # When validate judges them
    got = verdicts([exact, over], received)
    # Then the exact lookback stays, one millisecond more is too_late
    assert got == {exact["event_id"]: "valid", over["event_id"]: "too_late"}


def test_verdict_does_not_depend_on_the_batch_or_its_neighbours() -> None:
    # Given the same late event delivered alone, and with fresh and older events in another object
    received = T0 + timedelta(days=5)
    late = event(at=received - LOOKBACK - MS)
    fine = event(at=received - timedelta(hours=1))
    fresh = event(at=received - timedelta(seconds=3))
    # When judged in either company
    alone = verdicts([late], received)
    crowded = verdicts([fine, late], received, others=[fresh])
    # Then its verdict is the same: a property of the event, not of the run that carries it
    assert alone[late["event_id"]] == crowded[late["event_id"]] == "too_late"
    assert crowded[fine["event_id"]] == crowded[fresh["event_id"]] == "valid"
