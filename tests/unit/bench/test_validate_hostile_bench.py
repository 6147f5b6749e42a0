"""The worst-content benchmark's harness: both requests are what they claim to be and both are fully judged."""

from __future__ import annotations

import json
import re

import pytest

from bench.validate import hostile
from clickstream.validate.text import USER_AGENT_CAP


def test_the_worst_request_holds_the_hostile_content_and_matches_the_ordinary_ones_size():
    # Given both requests built at the same size
    ordinary, ordinary_agent = hostile.build_request("ordinary", 60_000)
    worst, worst_agent = hostile.build_request("worst", 60_000)
    sizes = [len(json.dumps(b, ensure_ascii=False).encode()) for b in (ordinary, worst)]
    # Then they are within 1 % of each other and of the target
    assert all(59_400 <= size <= 60_000 for size in sizes), sizes
    # And the worst one carries what made validation slow: URLs and referrers past the cap, '@'-heavy runs, control
    # characters in the free text, secrets to strip, a 16 KB user agent; the ordinary one none of it
    text = json.dumps(worst, ensure_ascii=False)
    from clickstream.validate.web import parse_page_url, parse_referrer

    assert any(
        parse_page_url(e["page"]["url"]).truncated for e in worst["events"]
    )  # past the cap once cleaned
    assert any(parse_referrer(e["page"]["referrer"]).truncated for e in worst["events"])
    assert "@" * 100 in text and "access_token=" in text and "X-Amz-Signature=" in text
    assert all(
        re.search(r"[\x00-\x1f\x85\u2028\u202e]", e["transaction_id"] + e["page"]["title"])
        for e in worst["events"]
    )
    assert len(worst_agent.encode()) > 16 * USER_AGENT_CAP
    assert len({e["page"]["url"] for e in worst["events"]}) == len(worst["events"])  # no cache helps
    assert not re.search(r"[\x00-\x1f]|@@|token=", json.dumps(ordinary) + ordinary_agent)


def test_a_small_run_reports_both_cases_on_both_paths_with_every_event_accounted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # When the benchmark runs once on small requests
    assert hostile.main(["--bytes", "40000", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    # Then each case is reported on the shipped path and the engine's, every event validated, and the ratios
    rows = re.findall(
        r": +(ordinary|worst): .*?(\d+) events: (\d+) validated, (\d+) quarantined .*\[(\w+)\]", out
    )
    assert sorted((kind, path) for kind, *_, path in rows) == [
        ("ordinary", "duckdb"),
        ("ordinary", "python"),
        ("worst", "duckdb"),
        ("worst", "python"),
    ]
    assert all(events == validated and quarantined == "0" for _, events, validated, quarantined, _ in rows)
    assert len(re.findall(r"worst / ordinary: [\d.]+x wall, [\d.]+x CPU \(goal <= 3x\)", out)) == 2
