"""The window passes partition by a visitor's 64-bit hash; when two visitors share a hash, the visitor itself is the
partition key, and the result must be the same."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from clickstream.sessionize.files import RID, load_parquet, sessionize_files
from clickstream.sessionize.rule import Sessionizer, SessionRules, connect
from tests.unit.sessionize import reference
from tests.unit.sessionize.data import TIMEOUT, boundary_stream, read_parquet, write_parquet

S = timedelta(seconds=1)


def rich_rows(seed: int) -> list[dict]:
    """The boundary stream with page views, pings, purchases, campaigns and user ids mixed in, so every session
    field depends on which events a session holds and in what order."""
    rng = random.Random(seed)
    rows = boundary_stream(seed=seed).rows
    for row in rows:
        row["event_type"] = rng.choice(["page_view", "page_ping", "page_ping", "view_item", "purchase"])
        row["page_path"] = f"/p/{rng.randrange(5)}"
        row["occurred_at"] = row["event_ts"] - rng.randrange(0, 30) * S
        row["user_id"] = rng.choice([None, None, f"u-{row['anonymous_id']}"])
        row["utm_source"] = rng.choice([None, None, "google", "newsletter"])
        row["transaction_id"] = f"t{rng.randrange(3)}" if row["event_type"] == "purchase" else None
        row["value"] = float(rng.randrange(1, 100)) if row["event_type"] == "purchase" else None
    return rows


def outputs(tmp: Path, rows: list[dict], rules: SessionRules) -> tuple[list[tuple], list[tuple]]:
    src = write_parquet(tmp / "in.parquet", rows)
    sessionize_files([src], tmp / "out", rules)
    events = sorted(tuple(sorted(e.items())) for e in read_parquet(tmp / "out" / "events.parquet"))
    sessions = sorted(tuple(sorted(s.items())) for s in read_parquet(tmp / "out" / "sessions.parquet"))
    return events, sessions


@pytest.mark.parametrize("visitor_hash", ["hash({}) % 2", "0"])
@pytest.mark.parametrize(
    "rules",
    [SessionRules(), SessionRules(max_session_hours=2), SessionRules(split_at_midnight="Europe/Berlin")],
    ids=["default", "short-cap", "midnight"],
)
def test_colliding_visitor_hashes_give_the_same_events_and_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, visitor_hash: str, rules: SessionRules
) -> None:
    # Given events of many visitors with every session field in play
    rows = rich_rows(seed=11)
    # When sessionized with the default hash, and with visitors forced to share hashes (2 values, or just 1)
    want = outputs(tmp_path / "default", rows, rules)
    monkeypatch.setattr(Sessionizer, "VISITOR_HASH", visitor_hash)
    got = outputs(tmp_path / "shared", rows, rules)
    # Then every event and every session field is the same
    assert got == want


def test_colliding_hashes_match_the_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the boundary stream, all visitors sharing one hash
    rows = boundary_stream(seed=5).rows
    monkeypatch.setattr(Sessionizer, "VISITOR_HASH", "0")
    # When sessionized
    src = write_parquet(tmp_path / "in.parquet", rows)
    sessionize_files([src], tmp_path / "out")
    # Then every event lands in the reference's session
    events = read_parquet(tmp_path / "out" / "events.parquet")
    want_assigned, _, _ = reference.sessionize(rows, TIMEOUT, timedelta(hours=24))
    assert {reference.row_key(e): e["session_id"] for e in events} == want_assigned


@pytest.mark.parametrize(
    ("visitor_hash", "key"), [("hash({})", "hash(s.anonymous_id)"), ("0", "s.anonymous_id")]
)
def test_the_partition_key_is_the_hash_only_without_collisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, visitor_hash: str, key: str
) -> None:
    # Given two visitors
    rows = boundary_stream(seed=5).rows
    src = write_parquet(tmp_path / "in.parquet", rows)
    con = connect()
    load_parquet(con, [src], "_in")
    monkeypatch.setattr(Sessionizer, "VISITOR_HASH", visitor_hash)
    engine = Sessionizer(con, "_in", ["anonymous_id"], rid=RID)
    # When the engine picks the window partition key
    got = engine.visitor_key("_in")
    # Then it is the hash when visitors' hashes differ, and the visitor itself when they collide
    assert len({r["anonymous_id"] for r in rows}) > 1
    assert got == key
