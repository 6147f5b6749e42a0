"""Session fields: engaged time, GA4 engagement, funnel, orders, revenue, attribution, identity."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from clickstream.core.schema import SESSION_COLUMN_NAMES, SESSION_COLUMNS
from clickstream.sessionize.files import sessionize_files
from tests.unit.sessionize.data import (
    REQUIRED,
    T0,
    TYPES,
    Stream,
    parquet_columns,
    read_parquet,
    write_parquet,
)

S = timedelta(seconds=1)


def sessions_of(tmp: Path, rows: list[dict], columns=None) -> list[dict]:
    src = write_parquet(tmp / "in.parquet", rows, columns)
    sessionize_files([src], tmp / "out")
    return sorted(
        read_parquet(tmp / "out" / "sessions.parquet"), key=lambda s: (s["anonymous_id"], s["session_start"])
    )


def only(tmp: Path, rows: list[dict], columns=None) -> dict:
    sessions = sessions_of(tmp, rows, columns)
    assert len(sessions) == 1
    return sessions[0]


def test_sessions_file_has_the_session_columns_in_order_and_type(tmp_path: Path) -> None:
    # Given one event
    s = Stream()
    s.add("v", T0)
    # When sessionized
    sessions_of(tmp_path, s.rows)
    # Then sessions.parquet has exactly SESSION_COLUMNS, in order, with their types
    expected = [(n, "TIMESTAMP WITH TIME ZONE" if t == "TIMESTAMPTZ" else t) for n, t in SESSION_COLUMNS]
    assert parquet_columns(tmp_path / "out" / "sessions.parquet") == expected


def test_engaged_time_follows_snowplow_heartbeats(tmp_path: Path) -> None:
    # Given a page view with pings in 3 distinct 10-s slots (one slot pinged twice) and a page view without pings
    s = Stream()
    s.add("v", T0, event_type="page_view")
    for offset in (5, 6, 15, 25):
        s.add("v", T0 + offset * S, event_type="page_ping")
    s.add("v", T0 + 40 * S, event_type="page_view")
    # When sessionized
    session = only(tmp_path, s.rows)
    # Then engaged = 5 + 10 * (3 - 1) for the first view, 0 for the second
    assert session["engaged_time_s"] == 25.0
    assert session["duration_s"] == 40.0


def test_engaged_time_uses_device_time_and_is_capped_at_duration(tmp_path: Path) -> None:
    # Given pings whose device times span 100 s but whose event times span 12 s
    s = Stream()
    s.add("v", T0, event_type="page_view", occurred_at=T0)
    for k in range(1, 5):
        s.add("v", T0 + 3 * k * S, event_type="page_ping", occurred_at=T0 + 25 * k * S)
    # When sessionized
    session = only(tmp_path, s.rows)
    # Then the heartbeat slots come from device time (5 + 10 * 3 = 35) and the result is capped at the duration
    assert session["duration_s"] == 12.0
    assert session["engaged_time_s"] == 12.0


def test_ga4_engagement_and_bounce(tmp_path: Path) -> None:
    # Given sessions: one page view lasting exactly 10 s, one lasting 11 s, two page views, and a bare purchase
    s = Stream()
    s.add("short", T0)
    s.add("short", T0 + 10 * S, event_type="page_ping")
    s.add("long", T0)
    s.add("long", T0 + 11 * S, event_type="page_ping")
    s.add("two", T0)
    s.add("two", T0 + S)
    s.add("buyer", T0, event_type="purchase", transaction_id="o1", value=10.0, currency="USD")
    # When sessionized
    by_visitor = {x["anonymous_id"]: x for x in sessions_of(tmp_path, s.rows)}
    # Then engaged is strict on 10 s, and bounce is its negation
    assert {v: (x["engaged"], x["bounce"]) for v, x in by_visitor.items()} == {
        "short": (False, True),
        "long": (True, False),
        "two": (True, False),
        "buyer": (True, False),
    }


def test_funnel_orders_revenue_and_currency(tmp_path: Path) -> None:
    # Given a session that views, adds, checks out, buys twice (one order sent twice) and is refunded once
    s = Stream()
    s.add("v", T0, event_type="view_item", value=99.0, currency="EUR")
    s.add("v", T0 + S, event_type="add_to_cart")
    s.add("v", T0 + 2 * S, event_type="begin_checkout")
    s.add("v", T0 + 3 * S, event_type="purchase", transaction_id="o1", value=100.0, currency="USD")
    s.add("v", T0 + 4 * S, event_type="purchase", transaction_id="o1", value=0.0, currency="USD")
    s.add("v", T0 + 5 * S, event_type="purchase", transaction_id="o2", value=50.0, currency="GBP")
    s.add("v", T0 + 6 * S, event_type="refund", transaction_id="o2", value=30.0, currency="GBP")
    s.add("w", T0)
    # When sessionized
    v, w = sessions_of(tmp_path, s.rows)
    # Then the flags are set, orders count distinct transactions, revenue is net, currency of the first money event
    assert (v["viewed_item"], v["added_to_cart"], v["began_checkout"], v["purchased"]) == (
        True,
        True,
        True,
        True,
    )
    assert (v["orders"], v["revenue"], v["currency"]) == (2, 120.0, "USD")
    assert (w["viewed_item"], w["purchased"], w["orders"], w["revenue"], w["currency"]) == (
        False,
        False,
        0,
        0.0,
        None,
    )


def test_latest_user_id_and_first_event_attribution(tmp_path: Path) -> None:
    # Given a session whose first event has no UTM but a referrer, and whose user signs in, then switches accounts
    s = Stream()
    s.add(
        "v",
        T0,
        page_referrer="https://search.example/",
        channel="organic_search",
        device_type="mobile",
        browser="Safari",
        os="iOS",
        app_id="shop-web",
        page_path="/home",
    )
    s.add(
        "v", T0 + S, user_id="u1", utm_source="mail", channel="email", device_type="desktop", page_path="/p/1"
    )
    s.add("v", T0 + 2 * S, user_id="u2", event_type="add_to_cart", page_path="/cart")
    s.add("v", T0 + 3 * S, user_id=None, event_type="page_ping", page_url="https://shop.example/ping")
    # When sessionized
    x = only(tmp_path, s.rows)
    # Then user_id is the latest non-null one, and attribution is the first event's (nulls included)
    assert x["user_id"] == "u2"
    assert (x["referrer"], x["channel"], x["utm_source"]) == (
        "https://search.example/",
        "organic_search",
        None,
    )
    assert (x["device_type"], x["browser"], x["os"], x["app_id"]) == ("mobile", "Safari", "iOS", "shop-web")
    # and landing/exit are the first/last page views' paths
    assert (x["landing_page"], x["exit_page"], x["n_page_views"], x["n_events"]) == ("/home", "/p/1", 2, 4)


def test_pages_fall_back_to_url_and_bot_flag_is_any(tmp_path: Path) -> None:
    # Given a session without page views, whose events have URLs but no paths, one flagged as a bot
    s = Stream()
    s.add("v", T0, event_type="view_item", page_url="https://shop.example/a", is_bot=False, is_internal=False)
    s.add(
        "v",
        T0 + S,
        event_type="add_to_cart",
        page_url="https://shop.example/b",
        is_bot=True,
        is_internal=False,
    )
    # When sessionized
    x = only(tmp_path, s.rows)
    # Then landing/exit come from the first/last event's URL, and one flagged event flags the session
    assert (x["landing_page"], x["exit_page"]) == ("https://shop.example/a", "https://shop.example/b")
    assert (x["is_bot"], x["is_internal"]) == (True, False)


def test_fields_without_their_input_columns_are_null(tmp_path: Path) -> None:
    # Given input with only the required columns
    s = Stream()
    s.add("v", T0, event_type="purchase")
    s.add("v", T0 + 20 * S)
    columns = [(name, TYPES[name]) for name in REQUIRED]
    # When sessionized
    x = only(tmp_path, s.rows, columns)
    # Then fields that need absent columns are null, the others are computed
    for name in (
        "app_id",
        "referrer",
        "channel",
        "utm_source",
        "device_type",
        "is_bot",
        "orders",
        "revenue",
        "currency",
    ):
        assert x[name] is None, name
    assert (x["purchased"], x["engaged"], x["n_events"], x["duration_s"]) == (True, True, 2, 20.0)
    assert set(x) == set(SESSION_COLUMN_NAMES)
