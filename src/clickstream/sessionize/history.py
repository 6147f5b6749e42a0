"""Frozen history: why a run may leave a visitor's old sessions alone, and the checks that make it exact.

The rule is causal: a kept event's session depends only on the visitor's earlier kept events in the rule's order
(event_ts, event_id). A slice of the bucket state keeps every session that starts before its **boundary** (a UTC
midnight) frozen, and every later one hot (``sessionize.state``). A run recomputes an affected visitor from the hot
rows, the window's rows, and a **tail** of what the rule needs from the frozen prefix; that equals one full
recompute when

1. every kept event after the prefix comes after every frozen kept event in the rule's order, and
2. the first of them starts a session given the tail: a gap over the timeout after the last frozen event, more than
   the maximum length after the last frozen session's start, or (with those splits on) another local day, or
   another campaign than the latest frozen one;
3. and no copy of an event decided in the frozen part changes rank: a window row with the same (visitor, event_id)
   as a frozen row (found through the frozen-id index, then read from the frozen rows) must rank after it.

Then the first event after the prefix starts a session in the full computation too, every later event sees the same
previous event, segment start and latest campaign (the tail seeds it), greedy cap cuts continue from a session start
exactly as from a segment start, and session ids, fields and drops come out the same. The window never brings an
event older than ``lookback`` before its arrival (``too_late``), so with the boundary at least ``lookback + maximum
session + timeout`` before the run's watermark these checks hold for what arrives in the ordinary way. What fails
them (a re-delivered or re-driven old object, whose rows must replace frozen ones; a copy ranking before its frozen
first copy; a late event landing before frozen events) **thaws** the visitor: the run reads the slice's frozen rows,
recomputes the visitor whole, and writes the slice's frozen part again. Exactness never rests on the horizon; only
the cost does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from clickstream.core import sql
from clickstream.sessionize.rule import SessionRules

_US_PER_S = 1_000_000


def boundary_for(watermark_to: datetime, rules: SessionRules, lookback_hours: float) -> date:
    """The boundary a run moves its slices to: the UTC midnight at or before ``watermark_to - (lookback + maximum
    session + timeout)``. A session starting before it cannot change through an event that is not ``too_late``."""
    horizon = timedelta(hours=lookback_hours, microseconds=rules.max_length_us + rules.timeout_us)
    return (watermark_to.astimezone(UTC) - horizon).date()


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def campaign_sql(alias: str) -> str:
    """A row's campaign as the rule compares it: [utm source, medium, campaign] when any is set, else null."""
    utm = ", ".join(f"{alias}.{sql.identifier(n)}" for n in ("utm_source", "utm_medium", "utm_campaign"))
    return f"CASE WHEN coalesce({utm}) IS NOT NULL THEN [{utm}] END"


def starts_after_tail_sql(rules: SessionRules, first: str = "f", tail: str = "t") -> str:
    """SQL that is true when the visitor's first event after the frozen prefix (``first``: ``_t`` in epoch µs,
    ``event_id``, ``event_ts`` and the campaign columns) comes after the tail's last event (``tail``) in the rule's
    order and starts a session given the tail (checks 1 and 2 of the module docstring)."""
    last = f"epoch_us({tail}.last_ts)"
    after = f"({first}._t > {last} OR ({first}._t = {last} AND {first}.event_id > {tail}.last_event_id))"
    starts = [
        f"{first}._t - {last} > {rules.timeout_us}",
        f"{first}._t - epoch_us({tail}.last_start) > {rules.max_length_us}",
    ]
    if rules.split_at_midnight:
        tz = sql.literal(rules.split_at_midnight)
        starts.append(
            f"({first}._t > {last} AND timezone({tz}, {first}.event_ts)::DATE <> timezone({tz}, {tail}.last_ts)::DATE)"
        )
    if rules.split_on_campaign:
        starts.append(
            f"({first}._t > {last} AND {campaign_sql(first)} IS NOT NULL"
            f" AND {campaign_sql(first)} IS DISTINCT FROM {tail}.last_campaign)"
        )
    return f"({after} AND ({' OR '.join(starts)}))"
