"""User-agent table: real strings → device type, browser, OS, bot flag."""

from __future__ import annotations

import pytest

from clickstream.validate.useragent import classify

UA_TABLE = [
    # (label, user agent, device_type, browser, os, is_bot)
    (
        "desktop Chrome",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "desktop",
        "Chrome",
        "Windows",
        False,
    ),
    (
        "desktop Firefox",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "desktop",
        "Firefox",
        "Ubuntu",
        False,
    ),
    (
        "desktop Safari",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "desktop",
        "Safari",
        "Mac OS X",
        False,
    ),
    (
        "desktop Edge",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        "desktop",
        "Edge",
        "Windows",
        False,
    ),
    (
        "iPhone Safari",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "mobile",
        "Mobile Safari",
        "iOS",
        False,
    ),
    (
        "Android Chrome",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Chrome Mobile",
        "Android",
        False,
    ),
    (
        "iPad",
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "tablet",
        "Mobile Safari",
        "iOS",
        False,
    ),
    (
        "Android tablet",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "tablet",
        "Chrome",
        "Android",
        False,
    ),
    (
        "Googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "bot",
        "Googlebot",
        "Other",
        True,
    ),
    (
        "Bingbot",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        "bot",
        "bingbot",
        "Other",
        True,
    ),
    (
        "AhrefsBot",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "bot",
        "AhrefsBot",
        "Other",
        True,
    ),
    (
        "HeadlessChrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        "bot",
        "HeadlessChrome",
        "Linux",
        True,
    ),
    (
        "Lighthouse",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        "bot",
        "Chrome Mobile",
        "Android",
        True,
    ),
]


@pytest.mark.parametrize(
    ("label", "ua", "device", "browser", "os", "bot"), UA_TABLE, ids=[r[0] for r in UA_TABLE]
)
def test_user_agent_table(label, ua, device, browser, os, bot):
    # Given a real user-agent string / When classified
    info = classify(ua)
    # Then device type, browser, OS and bot flag are as a person reading the string would say
    assert (info.device_type, info.browser, info.os, info.is_bot) == (device, browser, os, bot), label


def test_missing_or_unknown_user_agent_is_other_not_a_crash():
    assert classify(None).device_type == "other"
    assert classify("").is_bot is False
    assert classify("curl/8.5.0").is_bot is True  # a script, flagged by the crawler list
    assert classify("SomethingNobodyKnows/1.0").device_type == "other"


def test_results_are_cached_per_distinct_string():
    # Given a cleared cache
    classify.cache_clear()
    ua = UA_TABLE[0][1]
    # When the same string is classified many times
    for _ in range(50):
        classify(ua)
    # Then it was parsed once
    info = classify.cache_info()
    assert (info.misses, info.hits) == (1, 49)
