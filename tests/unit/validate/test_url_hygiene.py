"""Secrets in URLs are not stored: sensitive query and fragment parameters leave page URLs, referrers and what is
derived from them; the rest of each URL is kept as sent; the list is a setting."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from clickstream.core.config import Settings
from clickstream.core.schema import VALIDATED_COLUMN_NAMES
from clickstream.validate.engine import judge_with_engine
from clickstream.validate.judge import JudgeOptions, judge_object
from clickstream.validate.step import options_from
from clickstream.validate.web import parse_page_url, sensitive_params, strip_sensitive
from tests.unit.validate.helpers import event, raw_object, record

SECRETS = [
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "code",
    "state",
    "password",
    "pwd",
    "secret",
    "api_key",
    "key",
    "email",
    "sig",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "x-amz-security-token",
]


@pytest.mark.parametrize("name", SECRETS)
def test_each_sensitive_query_parameter_is_removed_and_the_rest_kept(name):
    url = f"https://shop.example.com/account/orders?sort=new&{name}=SECRET-VALUE&page=2#top"
    assert strip_sensitive(url) == "https://shop.example.com/account/orders?sort=new&page=2#top"


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        # OAuth implicit flow: the tokens ride in the fragment
        (
            "https://shop.example.com/callback#access_token=eyJ.x.y&token_type=Bearer&expires_in=3600",
            "https://shop.example.com/callback#token_type=Bearer&expires_in=3600",
        ),
        ("https://shop.example.com/cb#id_token=eyJ.a.b", "https://shop.example.com/cb"),
        # a hash route with its own query
        (
            "https://shop.example.com/#/callback?code=abc&state=xyz&next=%2Fcart",
            "https://shop.example.com/#/callback?next=%2Fcart",
        ),
        # names are matched case-insensitively and percent-decoded; a bare name is a parameter too
        ("https://s.example/?ACCESS%5FTOKEN=1&Password=2&token&q=laptops", "https://s.example/?q=laptops"),
        # nothing left: the ? goes too; an ordinary fragment stays
        ("https://s.example/p?code=1#reviews", "https://s.example/p#reviews"),
        # untouched when nothing is sensitive (byte for byte: order, encoding, empty values)
        ("https://s.example/p?b=2&a=%20&c=#x=1", "https://s.example/p?b=2&a=%20&c=#x=1"),
        # a parameter that merely contains a sensitive name stays
        (
            "https://s.example/p?tokens=3&monkey=1&codename=x",
            "https://s.example/p?tokens=3&monkey=1&codename=x",
        ),
    ],
)
def test_fragments_and_odd_spellings(url, clean):
    assert strip_sensitive(url) == clean


def test_derived_columns_come_from_the_cleaned_url():
    # Given a landing URL with UTM parameters and an OAuth code
    page = parse_page_url("https://shop.example.com/deals?code=abc&utm_source=news&utm_medium=email&state=s1")
    # Then the stored URL, its path and its UTM fields hold no secret
    assert page.url == "https://shop.example.com/deals?utm_source=news&utm_medium=email"
    assert (page.path, page.host) == ("/deals", "shop.example.com")
    assert page.utm == ("news", "email", None, None, None)


def _row(rows, event_id):
    [row] = [dict(zip(VALIDATED_COLUMN_NAMES, r, strict=True)) for r in rows if r[1] == event_id]
    return row


@pytest.mark.parametrize("judge", [judge_object, judge_with_engine], ids=["python", "duckdb"])
def test_page_urls_and_referrers_are_stored_without_secrets(judge):
    # Given events whose page URL, referrer and context page carry tokens, a password and a presigned signature
    landing = event(
        page={
            "url": "https://shop.example.com/welcome?token=tok-123&utm_source=mail&utm_medium=email",
            "referrer": "https://login.example.net/cb?code=authcodeQQ&state=st4te#id_token=eyJ.a.b",
            "title": "Welcome",
        }
    )
    download = event(
        page={
            "url": "https://shop.example.com/invoice.pdf?X-Amz-Credential=AKIA&X-Amz-Signature=sigvalueQQ&v=2",
            "referrer": "https://shop.example.com/account?password=hunter2",
        }
    )
    no_page = {k: v for k, v in event("login").items() if k != "page"}
    ctx = {
        "page": {
            "url": "https://shop.example.com/login?api_key=k3y&next=%2F",
            "referrer": "https://a.example/?sig=5",
        }
    }
    data = raw_object(record([landing, download]), record([no_page], context=ctx, anonymous_id="anon-2"))
    # When judged (the small-object path and the engine alike)
    judgement = judge(data, source_key="raw/k", options=JudgeOptions(lookback=timedelta(hours=72)))
    # Then no secret is stored, and everything else of each URL is
    assert judgement.validated == 3
    text = json.dumps([list(r) for r in judgement.rows], default=str)
    for secret in ("tok-123", "authcodeQQ", "st4te", "eyJ", "AKIA", "sigvalueQQ", "hunter2", "k3y", "sig=5"):
        assert secret not in text, secret
    row = _row(judgement.rows, landing["event_id"])
    assert row["page_url"] == "https://shop.example.com/welcome?utm_source=mail&utm_medium=email"
    assert row["page_referrer"] == "https://login.example.net/cb"
    assert (row["utm_source"], row["channel"]) == ("mail", "Email")
    assert (
        _row(judgement.rows, download["event_id"])["page_url"] == "https://shop.example.com/invoice.pdf?v=2"
    )
    assert _row(judgement.rows, no_page["event_id"])["page_url"] == "https://shop.example.com/login?next=%2F"


def test_the_list_is_a_setting():
    # Given the setting narrowed to one name, and turned off
    event_url = "https://shop.example.com/p?token=t&session=s1"
    data = raw_object(record([event(page={"url": event_url})]))
    narrowed = options_from(Settings(sensitive_url_params="session"))
    off = options_from(Settings(sensitive_url_params="none"))
    default = options_from(Settings())
    # When judged under each
    urls = [
        row_url
        for options in (narrowed, off, default)
        for row_url in (
            dict(zip(VALIDATED_COLUMN_NAMES, r, strict=True))["page_url"]
            for r in judge_object(data, source_key="raw/k", options=options).rows
        )
    ]
    # Then each removes what it names
    assert urls == [
        "https://shop.example.com/p?token=t",
        event_url,
        "https://shop.example.com/p?session=s1",
    ]
    assert Settings.from_env({"SENSITIVE_URL_PARAMS": "a, B*"}).sensitive_url_params == "a, B*"
    assert sensitive_params("a, B*").match("b-anything") and not sensitive_params("a, B*").match("ab")
