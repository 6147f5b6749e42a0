"""GA4-style default channel grouping from UTM parameters and the referrer. Pure functions, no I/O.

The rules follow GA4's default channel group, in its order, restricted to this project's channels: Direct,
Paid Search, Paid Social, Display, Organic Social, Organic Search, Referral, Email, Affiliates, else Unassigned.
Without UTM parameters, the referrer decides: a search engine is organic search, a social site organic social,
a web-mail site e-mail, another site a referral; no referrer (or one from the same site) is direct.
"""

from __future__ import annotations

import re
from functools import lru_cache

DIRECT = "Direct"
PAID_SEARCH = "Paid Search"
PAID_SOCIAL = "Paid Social"
DISPLAY = "Display"
ORGANIC_SOCIAL = "Organic Social"
ORGANIC_SEARCH = "Organic Search"
REFERRAL = "Referral"
EMAIL = "Email"
AFFILIATES = "Affiliates"
UNASSIGNED = "Unassigned"

CHANNELS = (
    DIRECT,
    PAID_SEARCH,
    PAID_SOCIAL,
    DISPLAY,
    ORGANIC_SOCIAL,
    ORGANIC_SEARCH,
    REFERRAL,
    EMAIL,
    AFFILIATES,
    UNASSIGNED,
)

SEARCH_ENGINES = frozenset(
    {
        "google",
        "bing",
        "yahoo",
        "duckduckgo",
        "baidu",
        "yandex",
        "ecosia",
        "ask",
        "naver",
        "seznam",
        "qwant",
        "startpage",
        "aol",
        "sogou",
        "brave",
    }
)
SOCIAL_SITES = frozenset(
    {
        "facebook",
        "fb",
        "instagram",
        "ig",
        "twitter",
        "x",
        "linkedin",
        "lnkd",
        "pinterest",
        "reddit",
        "tiktok",
        "youtube",
        "youtu",
        "snapchat",
        "threads",
        "whatsapp",
        "telegram",
        "quora",
        "tumblr",
        "vk",
        "weibo",
        "discord",
        "mastodon",
        "meta",
    }
)
SOCIAL_HOSTS = frozenset({"t.co", "x.com", "lnkd.in", "fb.me", "m.me", "youtu.be"})
WEBMAIL_HOSTS = frozenset(
    {"mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com", "mail.yahoo.com"}
)
PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
DISPLAY_MEDIA = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIA = frozenset({"social", "social-network", "social-media", "sm", "social network", "social media"})
EMAIL_NAMES = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})
DIRECT_SOURCES = frozenset({"(direct)", "direct"})
NONE_MEDIA = frozenset({"", "(none)", "(not set)", "none"})


def _labels(name: str) -> set[str]:
    return set(re.split(r"[.\s_-]+", name)) if name else set()


def _is_search(source: str) -> bool:
    return source not in WEBMAIL_HOSTS and bool(_labels(source) & SEARCH_ENGINES)


def _is_social(source: str) -> bool:
    # "x" alone names X (Twitter) as a utm_source; as a host label it is too generic ("x.com" is listed).
    return source in SOCIAL_HOSTS or source == "x" or bool(_labels(source) & (SOCIAL_SITES - {"x"}))


def _bare(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def same_site(referrer_host: str | None, page_host: str | None) -> bool:
    """True when the referrer is the page's own site (same host, or one a subdomain of the other)."""
    if not referrer_host or not page_host:
        return False
    ref, page = _bare(referrer_host), _bare(page_host)
    return ref == page or ref.endswith("." + page) or page.endswith("." + ref)


def referrer_source(referrer_host: str) -> tuple[str, str]:
    """``(source, medium)`` GA4 would attribute to a visit from ``referrer_host`` without UTM parameters."""
    host = _bare(referrer_host)
    if host in WEBMAIL_HOSTS:
        return host, "email"
    engines = sorted(_labels(host) & SEARCH_ENGINES)
    if engines:
        return engines[0], "organic"
    return host, "referral"


@lru_cache(maxsize=65536)
def default_channel(
    utm_source: str | None,
    utm_medium: str | None,
    utm_campaign: str | None = None,
    referrer_host: str | None = None,
    page_host: str | None = None,
) -> str:
    """The GA4-style default channel of one hit."""
    source = (utm_source or "").strip().lower()
    medium = (utm_medium or "").strip().lower()
    campaign = (utm_campaign or "").strip().lower()
    if not source and not medium:
        if not referrer_host or same_site(referrer_host, page_host):
            return DIRECT
        source, medium = referrer_source(referrer_host)
    if source in DIRECT_SOURCES and medium in NONE_MEDIA:
        return DIRECT
    if "cross-network" in campaign:  # GA4's Cross-network channel, which this project does not report apart
        return UNASSIGNED
    search, social = _is_search(source), _is_social(source)
    paid = bool(PAID_MEDIUM.match(medium))
    if search and paid:
        return PAID_SEARCH
    if social and paid:
        return PAID_SOCIAL
    if medium in DISPLAY_MEDIA:
        return DISPLAY
    if social or medium in SOCIAL_MEDIA:
        return ORGANIC_SOCIAL
    if search or medium == "organic":
        return ORGANIC_SEARCH
    if medium == "referral":
        return REFERRAL
    if source in EMAIL_NAMES or medium in EMAIL_NAMES:
        return EMAIL
    if medium in ("affiliate", "affiliates"):
        return AFFILIATES
    return UNASSIGNED
