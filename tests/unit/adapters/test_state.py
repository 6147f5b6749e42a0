from datetime import UTC, datetime, timedelta

from clickstream.adapters.state import DynamoStateStore


def _row(key: str, at: datetime) -> dict:
    return {
        "source_key": key,
        "validated_at": at,
        "events_in": 3,
        "validated": 2,
        "quarantined": {"too_late": 1},
    }


def test_ledger_window_is_half_open_and_crosses_days(aws):
    # Given ledger rows validated on two consecutive days
    store = DynamoStateStore(aws.settings.state_table)
    t0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    for i in range(4):
        store.put_ledger(_row(f"raw/o{i}", t0 + timedelta(minutes=30 * i)))
    # When the Plan step asks for (t0, t0 + 1h]
    rows = store.ledger_between(t0, t0 + timedelta(hours=1))
    # Then it gets exactly the rows strictly after t0 up to and including t0 + 1h, in arrival order
    assert [r["source_key"] for r in rows] == ["raw/o1", "raw/o2"]
    assert rows[0]["quarantined"] == {"too_late": 1}
    # And with no watermark it starts at the first arrival
    assert [r["source_key"] for r in store.ledger_between(None, t0 + timedelta(hours=1))] == [
        "raw/o0",
        "raw/o1",
        "raw/o2",
    ]


def test_redelivered_ledger_row_is_overwritten_not_added(aws):
    store = DynamoStateStore(aws.settings.state_table)
    t0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    store.put_ledger(_row("raw/a", t0))
    store.put_ledger(_row("raw/a", t0 + timedelta(minutes=5)))
    assert len(list(store.all_ledger())) == 1
    assert store.ledger_between(None, t0 + timedelta(hours=1))[0]["validated_at"].startswith(
        "2026-03-01T10:05"
    )


def test_watermark_round_trip(aws):
    store = DynamoStateStore(aws.settings.state_table)
    assert store.get_watermark() is None
    t = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    store.set_watermark(t, "run-1")
    assert store.get_watermark() == t


def test_watermark_never_moves_backwards(aws):
    # Given a watermark at 10:00
    store = DynamoStateStore(aws.settings.state_table)
    t = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert store.set_watermark(t, "run-2") is True
    # When an older execution tries to commit 09:00, or the same instant again
    moved_back = store.set_watermark(t - timedelta(hours=1), "run-1")
    moved_same = store.set_watermark(t, "run-1")
    # Then nothing changes
    assert (moved_back, moved_same) == (False, False)
    assert store.get_watermark() == t
    assert store.watermark_run() == "run-2"
    # And a later one moves it
    assert store.set_watermark(t + timedelta(hours=1), "run-3") is True
