"""User agent → device type, browser, OS and a bot flag (ua-parser + crawlerdetect), cached per distinct string.

Real traffic carries few distinct user-agent strings, so each is parsed once per process. Both parsers run in time
linear in the string, and the string is capped first (``text.USER_AGENT_CAP`` bytes, by the caller): ua-parser
matches with its Rust backend (``ua-parser[regex]``), and crawlerdetect's patterns are matched by RE2 here rather
than by the package's own Python ``re`` alternation, which backtracks (21 s on a 16 KB string). The patterns, the
exclusions and the decision are crawlerdetect's; the one pattern RE2 cannot read (a lookahead,
``Yandex(?!Search)``) is matched on its own by Python's ``re``, where it is linear (a literal, then a fixed-length
check).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
        "Arch Linux",
        "Mint",
        "Red Hat",
        "openSUSE",
        "Gentoo",
    }
)
MOBILE_OS = frozenset(
    {
        "iOS",
        "Android",
        "Windows Phone",
        "BlackBerry OS",
        "KaiOS",
        "Firefox OS",
        "Symbian OS",
        "HarmonyOS",
        "Tizen",
    }
)
TABLET_HINTS = ("ipad", "tablet", "kindle", "playbook", "nexus 7", "nexus 9", "nexus 10", "sm-t", "sm-x")


class UserAgentInfo(NamedTuple):
    device_type: str  # desktop | mobile | tablet | bot | other
    browser: str
    os: str
    is_bot: bool


class CrawlerPatterns(NamedTuple):
    exclusions: Any  # an RE2 pattern (google-re2 ships no types): removed from the string first
    crawlers: Any  # an RE2 pattern: any match means a crawler
    python_only: tuple[re.Pattern[str], ...]  # the patterns RE2 cannot read, matched one by one


def _re2_options() -> Any:
    import re2

    options = re2.Options()
    options.case_sensitive = False  # crawlerdetect compiles with re.IGNORECASE
    options.log_errors = False  # a pattern RE2 refuses is expected (see python_only), not an error to log
    return options


@lru_cache(maxsize=1)
def crawler_patterns() -> CrawlerPatterns:
    """crawlerdetect's crawler and exclusion patterns, compiled for RE2 (and Python ``re`` for what RE2 refuses)."""
    import re2
    from crawlerdetect.providers.crawlers import data as crawlers
    from crawlerdetect.providers.exclusions import data as exclusions

    options = _re2_options()
    readable, refused = [], []
    for pattern in crawlers:
        try:
            re2.compile(pattern, options)
        except re2.error:
            refused.append(pattern)
        else:
            readable.append(pattern)
    return CrawlerPatterns(
        exclusions=re2.compile("(?:" + "|".join(exclusions) + ")", options),
        crawlers=re2.compile("(?:" + "|".join(readable) + ")", options),
        python_only=tuple(re.compile(p, re.IGNORECASE) for p in refused),
    )


def _is_crawler(user_agent: str) -> bool:
    """crawlerdetect's ``CrawlerDetect().is_crawler``: the string stripped, its exclusions removed, then any
    crawler pattern found in what is left."""
    user_agent = user_agent.strip()
    if not user_agent:
        return False
    patterns = crawler_patterns()
    agent = patterns.exclusions.sub("", user_agent)
    if not agent:
        return False
    if patterns.crawlers.search(agent) is not None:
        return True
    return any(p.search(agent) is not None for p in patterns.python_only)


@lru_cache(maxsize=8192)
def classify(user_agent: str | None) -> UserAgentInfo:
    """Device type, browser family, OS family and bot flag of a User-Agent header (``None``/empty: other).

    The caller caps the string (``text.cap_utf8``): every parser here reads at most that much."""
    if not user_agent:
        return UserAgentInfo("other", "Other", "Other", False)
    import ua_parser

    parsed = ua_parser.parse(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else "Other"
    os_family = parsed.os.family if parsed.os else "Other"
    device_family = parsed.device.family if parsed.device else ""
    brand = (parsed.device.brand or "") if parsed.device else ""
    is_bot = device_family == "Spider" or "spider" in browser.lower() or _is_crawler(user_agent)
    if is_bot:
        return UserAgentInfo("bot", browser, os_family, True)
    return UserAgentInfo(_device_type(user_agent, os_family, device_family, brand), browser, os_family, False)


def _device_type(user_agent: str, os_family: str, device_family: str, brand: str) -> str:
    lowered_device = f"{device_family} {brand}".lower()
    if any(hint in lowered_device for hint in TABLET_HINTS):
        return "tablet"
    if os_family == "Android":
        # Android phones announce "Mobile"; tablets do not (Google's guidance for Android browsers).
        return "mobile" if "Mobile" in user_agent else "tablet"
    if os_family in MOBILE_OS or device_family in ("iPhone", "iPod") or "Mobi" in user_agent:
        return "mobile"
    if os_family in DESKTOP_OS:
        return "desktop"
    return "other"
