"""User agent → device type, browser, OS and a bot flag (ua-parser + crawlerdetect), cached per distinct string.

Real traffic carries few distinct user-agent strings, so each is parsed once per process.
"""

from __future__ import annotations

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


@lru_cache(maxsize=1)
def _crawler_detect() -> Any:
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


def _is_crawler(user_agent: str) -> bool:
    return bool(user_agent) and bool(_crawler_detect().isCrawler(user_agent))


@lru_cache(maxsize=8192)
def classify(user_agent: str | None) -> UserAgentInfo:
    """Device type, browser family, OS family and bot flag of a User-Agent header (``None``/empty: other)."""
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
