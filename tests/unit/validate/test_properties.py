"""Property: for any mix of valid, invalid, late, duplicate and conflicting events, nothing is lost."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.validate.enrich import row_as_dict
from tests.unit.validate.helpers import T0, event, judge, new_id, raw_object, record

KINDS = ("valid", "invalid", "late", "duplicate", "conflict", "garbage")
TYPES = ("page_view", "view_item", "add_to_cart", "purchase", "custom:compare")
INVALID = (
    {"event_id": "x"},
    {"event_type": "nope"},
    {"occurred_at": "yesterday"},
    {"items": [{"price": 1.0}]},
    {"value": "12"},
)


@st.composite
def objects(draw):
    """A raw object as (lines, expectations): records of events drawn from KINDS, plus garbage lines."""
    originals: list[dict] = []
    lines: list[dict | str] = []
    expect = Counter()
    ids: set[str] = set()
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["{oops", "[]", '{"events": 3}', "null"])))
            expect["unparseable_record"] += 1
            continue
        events = []
        for _ in range(draw(st.integers(1, 6))):
            kind = draw(st.sampled_from(KINDS[:-1]))
            if kind in ("duplicate", "conflict") and not originals:
                kind = "valid"
            at = T0 - timedelta(seconds=draw(st.integers(0, 600)))
            if kind == "valid":
                ev = event(draw(st.sampled_from(TYPES)), at=at, event_id=new_id(draw(st.integers(0, 2**64))))
                if ev["event_id"] in ids:
                    continue
                ids.add(ev["event_id"])
                originals.append(ev)
            elif kind == "invalid":
                ev = {**event(at=at), **draw(st.sampled_from(INVALID))}
                expect["schema_violation"] += 1
            elif kind == "late":
                ev = event(at=T0 - timedelta(hours=draw(st.integers(73, 500))), event_id=new_id())
                expect["too_late"] += 1
            elif kind == "duplicate":
                ev = dict(draw(st.sampled_from(originals)))
            else:
                base = draw(st.sampled_from(originals))
                ev = dict(base, properties={"variant": draw(st.integers(0, 3))})
            events.append(ev)
        received = T0 + timedelta(seconds=draw(st.integers(0, 120)))
        lines.append(record(events, received_at=received, sent_at=received) if events else "{oops")
        if not events:
            expect["unparseable_record"] += 1
    return lines, expect, ids


def _events_in(lines) -> int:
    return sum(len(line["events"]) if isinstance(line, dict) else 1 for line in lines)


@settings(max_examples=120, deadline=None)
@given(objects())
def test_every_event_is_accounted_for_exactly_once(case):
    lines, expect, ids = case
    # Given any mix of events in a raw object / When it is judged
    j = judge(raw_object(*lines))
    rows = [row_as_dict(r) for r in j.rows]
    reasons = Counter(q["reason"] for q in j.quarantine)
    # Then events in = validated + quarantined + duplicates, and equals what was written
    assert j.events_in == _events_in(lines) == j.validated + j.quarantined_total + j.duplicates
    assert j.quarantined == dict(sorted(reasons.items()))
    # And reasons that depend on the event alone are exact
    for reason in ("schema_violation", "too_late", "unparseable_record"):
        assert reasons[reason] == expect[reason], reason
    # And every valid event id is validated exactly once; its other copies are duplicates or conflicts
    validated_ids = [r["event_id"] for r in rows]
    assert len(validated_ids) == len(set(validated_ids))
    assert set(validated_ids) == ids
    copies = sum(
        1 for line in lines if isinstance(line, dict) for e in line["events"] if e["event_id"] in ids
    )
    assert j.duplicates + reasons["duplicate_conflict"] == copies - len(ids)
    # And a conflict is always a reuse of a validated id
    assert {q["event"]["event_id"] for q in j.quarantine if q["reason"] == "duplicate_conflict"} <= ids
    # And no event time lies after its receipt
    ts = datetime.fromisoformat
    assert all(ts(row["event_ts"]) <= ts(row["received_at"]) for row in rows)
