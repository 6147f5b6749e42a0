"""Default channel grouping: a table of UTM parameters and referrers → channel."""

from __future__ import annotations

import pytest

from clickstream.validate.channel import CHANNELS, default_channel, same_site

SITE = "shop.example.com"

CHANNEL_TABLE = [
    # (label, utm_source, utm_medium, utm_campaign, referrer_host, expected)
    ("google organic (referrer only)", None, None, None, "www.google.com", "Organic Search"),
    ("google.co.uk organic", None, None, None, "www.google.co.uk", "Organic Search"),
    ("bing organic", None, None, None, "www.bing.com", "Organic Search"),
    ("duckduckgo organic", None, None, None, "duckduckgo.com", "Organic Search"),
    ("utm organic", "google", "organic", None, None, "Organic Search"),
    ("google cpc", "google", "cpc", "spring-sale", "www.google.com", "Paid Search"),
    ("bing ppc", "bing", "ppc", None, None, "Paid Search"),
    ("facebook organic (referrer)", None, None, None, "l.facebook.com", "Organic Social"),
    ("t.co organic", None, None, None, "t.co", "Organic Social"),
    ("facebook utm social", "facebook", "social", None, None, "Organic Social"),
    ("facebook paid", "facebook", "paid_social", "retarget-q2", None, "Paid Social"),
    ("instagram cpc", "instagram", "cpc", None, None, "Paid Social"),
    ("newsletter email", "newsletter", "email", "march", None, "Email"),
    ("webmail referrer", None, None, None, "mail.google.com", "Email"),
    ("affiliate", "techdeals", "affiliate", None, "techdeals.example.net", "Affiliates"),
    ("display banner", "dv360", "display", None, None, "Display"),
    ("display cpm", "adnetwork", "cpm", None, None, "Display"),
    ("direct (no referrer)", None, None, None, None, "Direct"),
    ("direct utm", "(direct)", "(none)", None, None, "Direct"),
    ("referral", None, None, None, "www.laptopreviews.example.org", "Referral"),
    ("utm referral", "partner-blog", "referral", None, None, "Referral"),
    ("same-site referrer", None, None, None, "shop.example.com", "Direct"),
    ("same-site www referrer", None, None, None, "www.shop.example.com", "Direct"),
    ("unknown utm", "flyer", "print", None, None, "Unassigned"),
    ("cross-network campaign", "google", "cpc", "cross-network pmax", None, "Unassigned"),
]


@pytest.mark.parametrize(
    ("label", "source", "medium", "campaign", "referrer", "expected"),
    CHANNEL_TABLE,
    ids=[r[0] for r in CHANNEL_TABLE],
)
def test_channel_table(label, source, medium, campaign, referrer, expected):
    # Given a hit's UTM fields and referrer on the store's site / When grouped
    channel = default_channel(source, medium, campaign, referrer, SITE)
    # Then it lands in the expected GA4-style channel
    assert channel == expected, label
    assert channel in CHANNELS


def test_utm_beats_referrer_and_case_is_ignored():
    # A campaign link clicked on a social site is attributed to the campaign, whatever the case
    assert default_channel("Newsletter", "EMAIL", None, "l.facebook.com", SITE) == "Email"


def test_same_site():
    assert same_site("www.shop.example.com", "shop.example.com")
    assert same_site("blog.shop.example.com", "shop.example.com")
    assert not same_site("shop.example.com.evil.net", "shop.example.com")
    assert not same_site("www.google.com", "shop.example.com")
    assert not same_site("www.google.com", None)
