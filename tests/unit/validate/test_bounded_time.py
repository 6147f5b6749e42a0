"""Bounded time per event: caps at the edge of validation (truncated and flagged, never refused) and matching that
cannot backtrack. No test here measures time: the caps are checked by what they keep and flag, the matchers by
their construction (RE2) and by equality with the reference they replace."""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.core.schema import VALIDATED_COLUMN_NAMES
from clickstream.validate import web
from clickstream.validate.engine import judge_to_parquet
from clickstream.validate.judge import JudgeOptions
from clickstream.validate.text import TRUNCATED_KEY, URL_CAP, USER_AGENT_CAP
from clickstream.validate.useragent import _is_crawler, classify, crawler_patterns
from tests.unit.validate.helpers import CHROME_MAC, event, raw_object, record

OPTIONS = JudgeOptions(lookback=timedelta(hours=72))


def _rows(data: bytes, path: Path, min_bytes: int | None):
    judgement = judge_to_parquet(data, source_key="raw/k", options=OPTIONS, path=path, min_bytes=min_bytes)
    con = duckdb.connect()
    rows = [
        dict(zip(VALIDATED_COLUMN_NAMES, r, strict=True))
        for r in con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    ]
    return judgement, rows


@pytest.mark.parametrize("min_bytes", [None, 0], ids=["python", "duckdb"])
def test_long_urls_referrers_and_user_agents_are_truncated_and_flagged_not_refused(min_bytes, tmp_path):
    # Given a 5,000-character page URL, a 3,000-character referrer and a 16 KB user agent (one with 2-byte
    # characters across the cap), beside an ordinary record
    url = "https://shop.example.com/search?q=" + "a" * 4_966
    referrer = "https://ref.example.com/?from=" + "b" * 2_970
    agent = CHROME_MAC + " " + "é" * 8_000
    long_one = event(page={"url": url, "referrer": referrer, "title": "t"})
    data = raw_object(record([long_one], user_agent=agent), record([event()], anonymous_id="other"))
    # When judged
    judgement, rows = _rows(data, tmp_path / "v.parquet", min_bytes)
    # Then nothing is quarantined, and the long values are kept up to their caps
    assert (judgement.validated, judgement.quarantine) == (2, [])
    [row] = [r for r in rows if r["event_id"] == long_one["event_id"]]
    assert row["page_url"] == url[:URL_CAP] and row["page_referrer"] == referrer[:URL_CAP]
    kept = row["user_agent"].encode("utf-8")
    assert len(kept) <= USER_AGENT_CAP and agent.encode("utf-8").startswith(kept)
    assert len(kept) > USER_AGENT_CAP - 2  # cut on a character boundary, nothing more
    # And the row says what was cut, and how long it was
    assert json.loads(row["properties"])[TRUNCATED_KEY] == {
        "page_url": len(url),
        "page_referrer": len(referrer),
        "user_agent": len(agent.encode("utf-8")),
    }
    # And the parsers read the kept part (browser and OS come from the start of the string)
    assert (row["browser"], row["os"]) == ("Chrome", "Mac OS X")
    [other] = [r for r in rows if r["anonymous_id"] == "other"]
    assert other["properties"] is None


def test_a_cap_landing_inside_an_e_mail_address_or_a_secret_leaves_no_part_of_it():
    # Given URLs the cap would cut in the middle of an address, and of a token
    pad = "https://shop.example.com/?q=" + "x" * (URL_CAP - 28 - 16)
    address = web.parse_page_url(pad + "&u=jane.doe@example.com&" + "z" * 100)
    secret = web.parse_page_url(pad + "&access_token=" + "T" * 200)
    # When parsed / Then both were removed before the cut, and the stored values hold none of them
    assert address.truncated is not None and "jane" not in address.url and "@" not in address.url
    assert secret.truncated is None and "T" not in secret.url.split("?")[1]
    # And e-mail placeholders never push a stored URL past the cap (each is longer than the shortest address)
    many = web.parse_page_url("https://s.example/?" + "&".join(["e=a@b.cc"] * 400))
    assert len(many.url) == URL_CAP
    assert many.truncated == len("https://s.example/?" + "&".join(["e=[email]"] * 400))


def test_a_client_property_named_like_the_flag_is_kept_beside_it():
    # Given an event with its own "_truncated" property and a URL over the cap
    ev = event(page={"url": "https://s.example/?" + "q" * 3000}, properties={"_truncated": "mine"})
    from tests.unit.validate.helpers import judge

    [row] = judge(raw_object(record([ev]))).rows
    props = json.loads(row[VALIDATED_COLUMN_NAMES.index("properties")])
    # Then the flag is the step's and the client's value moved under the unknown-field prefix
    assert props == {"_truncated": {"page_url": 3019}, "_event._truncated": "mine"}


# -- e-mail scrubbing: RE2, equal to the backtracking pattern it replaces -----------------------------------------
REFERENCE = re.compile(web.EMAIL_PATTERN, re.IGNORECASE)


def _reference_scrub(text: str) -> str:
    if "@" not in text and "%40" not in text:
        return text
    return REFERENCE.sub(web.EMAIL_PLACEHOLDER, text)


def test_e_mail_scrubbing_runs_on_a_non_backtracking_engine():
    # Then the compiled matcher is RE2's (automata: time linear in the text, whatever the text)
    assert isinstance(web._EMAIL, re2._Regexp)
    assert web._EMAIL.pattern == "(?i)" + web.EMAIL_PATTERN


_EMAILISH = st.text(alphabet="aZ9._%+-@4013.com/?&=é ", max_size=80)


@settings(max_examples=400, deadline=None)
@given(text=_EMAILISH)
def test_e_mail_scrubbing_equals_the_reference_pattern(text):
    # Given any text made of e-mail-ish characters / Then RE2 scrubs exactly what Python's re would
    assert web.scrub_emails(text) == _reference_scrub(text)


def test_e_mail_scrubbing_is_linear_on_the_quadratic_input():
    # Given the input that made the backtracking pattern quadratic, 100,000 characters long
    text = "https://shop.example.com/" + "a" * 100_000 + "@"
    # When scrubbed / Then the answer is the reference's (no address), computed by the linear engine
    assert web.scrub_emails(text) == text


# -- crawler detection: crawlerdetect's patterns and decision, matched by RE2 -------------------------------------
def test_crawler_patterns_run_on_re2_but_for_the_one_lookahead():
    patterns = crawler_patterns()
    assert isinstance(patterns.crawlers, re2._Regexp) and isinstance(patterns.exclusions, re2._Regexp)
    # Only patterns RE2 cannot read are matched by Python's re, and each is linear: a literal, then a lookahead
    # of a literal (a crawlerdetect update adding another must be looked at before it ships)
    assert [p.pattern for p in patterns.python_only] == ["Yandex(?!Search)"]


def _agents(n: int, seed: int) -> list[str]:
    from crawlerdetect.providers.crawlers import data as crawlers

    rng = random.Random(seed)
    words = [w for p in crawlers for w in re.findall(r"[A-Za-z][A-Za-z0-9 ./_-]{2,}", p)]
    base = [
        CHROME_MAC,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; YandexBot/3.0)",
        "YandexSearch/1.0",
        " ",
    ]
    out = []
    for _ in range(n):
        agent = rng.choice(base)
        for _ in range(rng.randint(0, 3)):
            at = rng.randint(0, len(agent))
            agent = agent[:at] + rng.choice(["", " ", "/", "; "]) + rng.choice(words) + agent[at:]
        out.append(agent)
    return out


def test_crawler_detection_equals_crawlerdetect():
    # Given real-looking agents with crawler names and excluded tokens spliced in anywhere
    from crawlerdetect import CrawlerDetect

    reference = CrawlerDetect()
    agents = _agents(3_000, seed=11)
    # Then the RE2 matcher decides as the package does, agent by agent
    assert [_is_crawler(a) for a in agents] == [reference.is_crawler(a) for a in agents]
    assert 0 < sum(map(_is_crawler, agents)) < len(agents)


@settings(max_examples=200, deadline=None)
@given(
    agent=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ./;()-_+", max_size=60
    )
)
def test_crawler_detection_equals_crawlerdetect_on_any_text(agent):
    from crawlerdetect import CrawlerDetect

    assert _is_crawler(agent) == CrawlerDetect().is_crawler(agent)


def test_user_agent_parsing_uses_a_linear_backend():
    # ua-parser picks its best resolver: the Rust regex one (``ua-parser[regex]``), never the Python re one
    import ua_parser

    assert ua_parser.BestAvailableResolver is not ua_parser.BasicResolver
    assert classify(CHROME_MAC).browser == "Chrome"
