"""The optional splits: midnight in the site's time zone, and a change of campaign (direct never overrides)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clickstream.core.config import Settings
from clickstream.pipeline.sessionize import session_rules
from clickstream.sessionize.files import sessionize_files
from clickstream.sessionize.rule import SessionRules
from clickstream_cli.main import main
from tests.unit.sessionize import reference
from tests.unit.sessionize.data import MIN, T0, Stream, boundary_stream, read_parquet, write_parquet

BERLIN = "Europe/Berlin"


def sessions_of(tmp: Path, rows: list[dict], rules: SessionRules) -> dict[tuple, str]:
    sessionize_files([write_parquet(tmp / "in.parquet", rows)], tmp / "out", rules)
    return {reference.row_key(e): e["session_id"] for e in read_parquet(tmp / "out" / "events.parquet")}


def test_midnight_in_the_site_time_zone_starts_a_new_session(tmp_path: Path) -> None:
    # Given a visitor active 22:50 → 23:10 UTC, which is 23:50 → 00:10 in Berlin (UTC+1 in March)
    s = Stream()
    before = s.add("v", datetime(2026, 3, 2, 22, 50, tzinfo=UTC))
    after = s.add("v", datetime(2026, 3, 2, 23, 10, tzinfo=UTC))
    later = s.add("v", datetime(2026, 3, 2, 23, 20, tzinfo=UTC))
    key = reference.row_key
    # When sessionized with and without the midnight split in Berlin
    plain = sessions_of(tmp_path / "plain", s.rows, SessionRules())
    split = sessions_of(tmp_path / "split", s.rows, SessionRules(split_at_midnight=BERLIN))
    utc = sessions_of(tmp_path / "utc", s.rows, SessionRules(split_at_midnight="UTC"))
    # Then only the Berlin split cuts at Berlin's midnight; UTC's midnight is not crossed
    assert len(set(plain.values())) == 1 and len(set(utc.values())) == 1
    assert split[key(before)] != split[key(after)] == split[key(later)]
    assert split[key(after)] == reference.session_id_of("v", after["event_ts"])


def test_campaign_change_splits_and_direct_never_overrides(tmp_path: Path) -> None:
    # Given a visit from a google campaign, a direct page view, the same campaign again, then a newsletter
    s = Stream()
    google = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"}
    a = s.add("v", T0, **google)
    b = s.add("v", T0 + 5 * MIN)  # direct (no utm): keeps the campaign
    c = s.add("v", T0 + 10 * MIN, **google)  # same campaign: same session
    d = s.add("v", T0 + 15 * MIN, utm_source="newsletter", utm_medium="email", utm_campaign="spring")
    e = s.add("v", T0 + 20 * MIN)  # direct again: stays with the newsletter session
    f = s.add("v", T0 + 25 * MIN, utm_source="google", utm_medium="cpc", utm_campaign="summer")
    key = reference.row_key
    # When sessionized with the campaign split
    got = sessions_of(tmp_path, s.rows, SessionRules(split_on_campaign=True))
    # Then sessions change exactly where another campaign arrives
    assert got[key(a)] == got[key(b)] == got[key(c)]
    assert got[key(c)] != got[key(d)] == got[key(e)]
    assert got[key(e)] != got[key(f)]
    sessions = read_parquet(tmp_path / "out" / "sessions.parquet")
    assert [(x["utm_source"], x["n_events"]) for x in sessions] == [
        ("google", 3),
        ("newsletter", 2),
        ("google", 1),
    ]


def test_direct_start_then_a_campaign_splits_but_not_at_the_same_instant(tmp_path: Path) -> None:
    # Given a direct visit, a campaign event at the same microsecond, then a later campaign event
    s = Stream()
    a = s.add("v", T0, event_id="a")
    b = s.add("v", T0, event_id="b", utm_source="google")
    c = s.add("v", T0 + MIN, event_id="c", utm_source="newsletter")
    key = reference.row_key
    # When sessionized with the campaign split
    got = sessions_of(tmp_path, s.rows, SessionRules(split_on_campaign=True))
    # Then the tie never splits (two sessions cannot share a start), the later change does
    assert got[key(a)] == got[key(b)] != got[key(c)]


@pytest.mark.parametrize("seed", [3, 8])
def test_splits_match_the_reference_on_boundary_streams(tmp_path: Path, seed: int) -> None:
    # Given the boundary stream with random campaigns sprinkled over it
    rows = boundary_stream(seed=seed).rows
    rng = random.Random(seed)
    for row in rows:
        if rng.random() < 0.15:
            row["utm_source"] = rng.choice(["google", "newsletter"])
            row["utm_campaign"] = rng.choice([None, "spring"])
    rules = SessionRules(split_at_midnight="America/New_York", split_on_campaign=True)
    # When the engine and the reference sessionize with both splits
    got = sessions_of(tmp_path, rows, rules)
    want, _, _ = reference.sessionize(rows, midnight_tz="America/New_York", on_campaign=True)
    # Then every event is in the reference's session
    assert got == want
    assert len(set(want.values())) > len(set(reference.sessionize(rows)[0].values()))


def test_cli_flags_for_the_splits(tmp_path: Path, capsys) -> None:
    # Given two events either side of midnight in Berlin, of two campaigns, 10 minutes apart
    s = Stream()
    s.add("v", datetime(2026, 3, 2, 22, 55, tzinfo=UTC), utm_source="google")
    s.add("v", datetime(2026, 3, 2, 23, 5, tzinfo=UTC), utm_source="google")
    s.add("v", datetime(2026, 3, 2, 23, 6, tzinfo=UTC), utm_source="newsletter")
    src = write_parquet(tmp_path / "in.parquet", s.rows)
    # When the CLI runs with each flag, both, and neither
    counts = {}
    for name, flags in {
        "none": [],
        "midnight": ["--split-at-midnight", BERLIN],
        "campaign": ["--split-on-campaign"],
        "both": ["--split-at-midnight", BERLIN, "--split-on-campaign"],
    }.items():
        assert main(["sessionize", str(src), "--out", str(tmp_path / name), *flags]) == 0
        counts[name] = len(read_parquet(tmp_path / name / "sessions.parquet"))
    # Then each split adds its boundary
    assert counts == {"none": 1, "midnight": 2, "campaign": 2, "both": 3}
    # And an unknown zone is refused by the parser
    with pytest.raises(SystemExit):
        main(["sessionize", str(src), "--out", str(tmp_path / "x"), "--split-at-midnight", "Mars/Olympus"])


def test_settings_give_the_rules_with_the_site_time_zone() -> None:
    # Given the stack's settings as the template passes them
    env = {"SPLIT_AT_MIDNIGHT": "true", "SPLIT_ON_CAMPAIGN": "false", "SITE_TIMEZONE": BERLIN}
    # When the step builds its rules / Then midnight is the site's, the campaign split off, the defaults kept
    assert session_rules(Settings.from_env(env)) == SessionRules(split_at_midnight=BERLIN)
    assert session_rules(Settings.from_env({})) == SessionRules()
