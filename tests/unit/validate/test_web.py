"""URL, UTM, e-mail scrubbing and IP truncation helpers."""

from __future__ import annotations

import pytest

from clickstream.validate.web import context_utm, ip_in_networks, ip_prefix, parse_page_url, scrub_emails


@pytest.mark.parametrize(
    ("ip", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("10.0.0.1", "10.0.0.0/24"),
        ("2001:db8:abcd:12:34::1", "2001:db8:abcd::/48"),
        ("2a00:1450:4001:82b::200e", "2a00:1450:4001::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),  # IPv4-mapped IPv6 is an IPv4 caller
        ("not-an-ip", None),
        ("", None),
        (None, None),
    ],
)
def test_ip_prefix_truncates_v4_to_24_and_v6_to_48(ip, prefix):
    assert ip_prefix(ip) == prefix


def test_internal_networks():
    nets = ("10.0.0.0/8", "2001:db8::/32")
    assert ip_in_networks("10.200.1.1", nets)
    assert ip_in_networks("2001:db8:1::5", nets)
    assert not ip_in_networks("11.0.0.1", nets)
    assert not ip_in_networks("garbage", nets)
    assert not ip_in_networks("10.0.0.1", ())


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        (
            "https://shop.example.com/account?email=jane.doe@example.com&x=1",
            "https://shop.example.com/account?email=[email]&x=1",
        ),
        ("https://shop.example.com/?e=jane.doe%40example.co.uk", "https://shop.example.com/?e=[email]"),
        (
            "https://shop.example.com/u/bob+shop@mail.example.org/orders",
            "https://shop.example.com/u/[email]/orders",
        ),
        ("https://shop.example.com/laptops?sort=price", "https://shop.example.com/laptops?sort=price"),
        (None, None),
    ],
)
def test_email_addresses_are_scrubbed(text, clean):
    assert scrub_emails(text) == clean


def test_page_url_parts_and_utm():
    # Given a landing URL with UTM parameters and an e-mail in the query
    url = "https://shop.example.com/deals/laptops?utm_source=Newsletter&utm_medium=email&utm_campaign=march&who=a@b.io"
    # When parsed
    page = parse_page_url(url)
    # Then path, host and UTM come out, and the e-mail is gone from the URL
    assert (page.path, page.host) == ("/deals/laptops", "shop.example.com")
    assert page.utm == ("Newsletter", "email", "march", None, None)
    assert "a@b.io" not in page.url and "[email]" in page.url


def test_click_ids_imply_paid_search_and_plain_urls_have_no_utm():
    assert parse_page_url("https://shop.example.com/?gclid=abc").utm == ("google", "cpc", None, None, None)
    assert parse_page_url("https://shop.example.com/?msclkid=abc").utm == ("bing", "cpc", None, None, None)
    assert parse_page_url("https://shop.example.com/").utm is None
    assert parse_page_url("https://shop.example.com").path == "/"


def test_context_utm_shapes():
    assert context_utm({"utm": {"source": "fb", "medium": "paid_social"}})[:2] == ("fb", "paid_social")
    assert context_utm({"utm_source": "x", "utm_campaign": "c"}) == ("x", None, "c", None, None)
    assert context_utm({"campaign": {"source": "s", "term": "t"}}) == ("s", None, None, "t", None)
    assert context_utm(None) == (None, None, None, None, None)
