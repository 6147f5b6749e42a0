"""Daily KPIs and the analyst views on the hand-computed store day (DuckDB and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from clickstream.warehouse.kpis import all_days, kpi_totals, recompute_daily_kpis
from clickstream.warehouse.loader import RunRecord, load_run
from tests.unit.warehouse.factory import STORE_DAY_KPIS, at, event, session, store_day, write_run

DAY = "2026-03-02"


def _load_store_day(warehouse, tmp_path):
    events, sessions = store_day()
    with warehouse.connect() as conn:
        return load_run(conn, write_run(tmp_path / "run1", events, sessions), RunRecord("run-1"))


def _dicts(warehouse, sql, params=()):
    with warehouse.connect() as conn:
        return conn.query_dicts(sql, params)


def _assert_kpis(row: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert float(row[key]) == pytest.approx(value), key
        else:
            assert row[key] == value, key


def test_daily_kpis_equal_hand_computed_values(warehouse, tmp_path):
    # Given the store day: 3 visitors, 5 human sessions, 1 bot session, 2 orders, 1 refund
    stats = _load_store_day(warehouse, tmp_path)
    # When its days are aggregated
    with warehouse.connect() as conn:
        days = recompute_daily_kpis(conn, stats.affected_days, "USD")
    # Then the day's KPIs are exactly the hand-computed ones (the bot's session and order excluded)
    assert days == [DAY]
    rows = _dicts(warehouse, "SELECT * FROM daily_kpis")
    assert len(rows) == 1
    assert rows[0]["day"] == date(2026, 3, 2)
    _assert_kpis(rows[0], STORE_DAY_KPIS)
    # And the report's totals query, by the same definitions, agrees
    with warehouse.connect() as conn:
        _assert_kpis(kpi_totals(conn, "USD"), STORE_DAY_KPIS)


def test_aggregating_twice_leaves_daily_kpis_identical(warehouse, tmp_path):
    # Given the store day aggregated once
    _load_store_day(warehouse, tmp_path)
    with warehouse.connect() as conn:
        recompute_daily_kpis(conn, [DAY], "USD")
        before = conn.query("SELECT * FROM daily_kpis")
        # When aggregated again
        recompute_daily_kpis(conn, [DAY], "USD")
        # Then nothing changed
        assert conn.query("SELECT * FROM daily_kpis") == before


def test_only_affected_days_are_recomputed(warehouse, tmp_path):
    # Given two days aggregated, and day 1's row altered by hand
    day1 = datetime(2026, 3, 1, tzinfo=UTC)
    events = [
        event("a1", "SA", "A", "page_view", at(9, day=day1)),
        event("b1", "SB", "B", "page_view", at(9)),
    ]
    sessions = [session("SA", "A", at(9, day=day1), 5), session("SB", "B", at(9), 5)]
    with warehouse.connect() as conn:
        load_run(conn, write_run(tmp_path / "r1", events, sessions), RunRecord("run-1"))
        recompute_daily_kpis(conn, all_days(conn), "USD")
        conn.execute("UPDATE daily_kpis SET sessions = 999 WHERE day = ?", [day1.date()])
        # When a run touches only day 2 (visitor B gets a second session) and its affected days are aggregated
        stats = load_run(
            conn,
            write_run(
                tmp_path / "r2",
                [*events[1:], event("b2", "SB2", "B", "page_view", at(12))],
                [sessions[1], session("SB2", "B", at(12), 5)],
            ),
            RunRecord("run-2"),
        )
        assert stats.affected_days == [DAY]
        recompute_daily_kpis(conn, stats.affected_days, "USD")
        got = dict(conn.query("SELECT day, sessions FROM daily_kpis"))
    # Then day 2 is recomputed and day 1 is not touched
    assert got == {day1.date(): 999, date(2026, 3, 2): 2}


def test_a_day_left_without_human_sessions_loses_its_kpi_row(warehouse, tmp_path):
    # Given the store day aggregated
    stats = _load_store_day(warehouse, tmp_path)
    with warehouse.connect() as conn:
        recompute_daily_kpis(conn, stats.affected_days, "USD")
        # When every human visitor of that day is replaced by nothing and the day is recomputed
        stats = load_run(
            conn, write_run(tmp_path / "r2", [], [], visitors=["A", "B", "C"]), RunRecord("run-2")
        )
        recompute_daily_kpis(conn, stats.affected_days, "USD")
        # Then the day has no KPI row (only the bot's session is left, and bots do not count)
        assert conn.query("SELECT count(*) FROM daily_kpis")[0][0] == 0
        assert conn.query("SELECT count(*) FROM sessions")[0][0] == 1


def test_revenue_in_other_currencies_is_reported_apart(warehouse, tmp_path):
    # Given the store day plus a visitor who pays in EUR
    events, sessions = store_day()
    events.append(
        event("x1", "SX", "X", "purchase", at(13), transaction_id="TX", value=80.0, currency="EUR"),
    )
    sessions.append(
        session("SX", "X", at(13), 30, purchased=True, engaged=True, orders=1, revenue=80.0, currency="EUR")
    )
    with warehouse.connect() as conn:
        load_run(conn, write_run(tmp_path / "r1", events, sessions), RunRecord("run-1"))
        recompute_daily_kpis(conn, [DAY], "USD")
        kpis = conn.query_dicts("SELECT sessions, orders, gross_revenue, aov, currency FROM daily_kpis")[0]
        split = conn.query(
            "SELECT currency, orders, gross_revenue, refunds, net_revenue FROM revenue_by_currency ORDER BY currency"
        )
    # Then the session counts, but USD revenue and orders exclude the EUR order, which is shown apart
    assert kpis == {
        "sessions": 6,
        "orders": 2,
        "gross_revenue": STORE_DAY_KPIS["gross_revenue"],
        "aov": STORE_DAY_KPIS["aov"],
        "currency": "USD",
    }
    assert [(c, int(o), float(g), float(r), float(n)) for c, o, g, r, n in split] == [
        ("EUR", 1, 80.0, 0.0, 80.0),
        ("USD", 2, 1500.0, 100.0, 1400.0),
    ]


def test_funnel_daily_counts_sessions_per_step(warehouse, tmp_path):
    _load_store_day(warehouse, tmp_path)
    row = _dicts(warehouse, "SELECT * FROM funnel_daily")
    assert len(row) == 1
    f = row[0]
    assert (f["sessions"], f["viewed_item"], f["added_to_cart"], f["began_checkout"], f["purchased"]) == (
        5,
        3,
        3,
        2,
        2,
    )
    assert float(f["view_to_cart_rate"]) == 1.0
    assert float(f["cart_to_checkout_rate"]) == pytest.approx(2 / 3)
    assert float(f["checkout_to_purchase_rate"]) == 1.0
    assert float(f["conversion_rate"]) == pytest.approx(0.4)


def test_top_products_use_every_item_and_exclude_bots(warehouse, tmp_path):
    _load_store_day(warehouse, tmp_path)
    rows = _dicts(
        warehouse,
        "SELECT product_id, product_name, views, carts, purchases, units, revenue FROM top_products ORDER BY product_id",
    )
    got = [
        (
            r["product_id"],
            r["product_name"],
            int(r["views"]),
            int(r["carts"]),
            int(r["purchases"]),
            int(r["units"]),
            float(r["revenue"]),
        )
        for r in rows
    ]
    assert got == [
        ("p1", "Laptop Pro 14", 1, 1, 1, 1, 1200.0),
        ("p2", "Noise-cancelling Headphones", 1, 1, 0, 0, 0.0),
        ("p3", "USB-C Charger 100W", 1, 1, 1, 2, 300.0),
    ]


def test_channel_device_and_landing_page_views(warehouse, tmp_path):
    _load_store_day(warehouse, tmp_path)
    channels = {r["channel"]: r for r in _dicts(warehouse, "SELECT * FROM channel_performance")}
    assert {c: int(r["sessions"]) for c, r in channels.items()} == {
        "Paid Search": 1,
        "Organic Search": 1,
        "Email": 1,
        "Direct": 2,
    }
    assert float(channels["Direct"]["revenue"]) == -100.0
    assert float(channels["Paid Search"]["conversion_rate"]) == 1.0
    devices = {
        r["device_type"]: int(r["sessions"]) for r in _dicts(warehouse, "SELECT * FROM device_breakdown")
    }
    assert devices == {"desktop": 3, "mobile": 2}
    landing = {r["landing_page"]: r for r in _dicts(warehouse, "SELECT * FROM landing_pages")}
    assert {p: int(r["entrances"]) for p, r in landing.items()} == {
        "/laptops": 1,
        "/": 2,
        "/deals": 1,
        "/account": 1,
    }
    assert float(landing["/"]["bounce_rate"]) == 0.5


def test_retention_weekly_cohorts(warehouse, tmp_path):
    # Given the store day (a Monday) plus visitor A returning nine days later
    events, sessions = store_day()
    later = datetime(2026, 3, 11, tzinfo=UTC)
    events.append(event("r1", "SR", "A", "page_view", at(9, day=later)))
    sessions.append(session("SR", "A", at(9, day=later), 5))
    with warehouse.connect() as conn:
        load_run(conn, write_run(tmp_path / "r1", events, sessions), RunRecord("run-1"))
        rows = conn.query(
            "SELECT cohort_week, week_offset, cohort_size, visitors, retention_rate FROM retention_weekly"
            " ORDER BY week_offset"
        )
    # Then the cohort of that week has 3 visitors, one of whom came back in week 1
    assert [(c, int(w), int(s), int(v), float(r)) for c, w, s, v, r in rows] == [
        (date(2026, 3, 2), 0, 3, 3, 1.0),
        (date(2026, 3, 2), 1, 3, 1, pytest.approx(1 / 3)),
    ]


def test_signed_in_users_count_people_across_devices_and_internal_traffic_is_left_out(warehouse, tmp_path):
    # Given the store day plus: user u1 (visitor A) on a second device, and an internal (staff) session that buys
    events, sessions = store_day()
    events += [
        event("y1", "SY", "A2", "page_view", at(16), path="/", user_id="u1"),
        event(
            "z1",
            "SZ",
            "Z",
            "purchase",
            at(17),
            transaction_id="TZ",
            value=500.0,
            currency="USD",
            is_internal=True,
        ),
    ]
    sessions += [
        session("SY", "A2", at(16), 20, user_id="u1", engaged=True, n_page_views=2),
        session(
            "SZ",
            "Z",
            at(17),
            40,
            is_internal=True,
            engaged=True,
            purchased=True,
            orders=1,
            revenue=500.0,
            currency="USD",
        ),
    ]
    with warehouse.connect() as conn:
        load_run(conn, write_run(tmp_path / "r1", events, sessions), RunRecord("run-1"))
        recompute_daily_kpis(conn, [DAY], "USD")
        kpis = conn.query_dicts("SELECT * FROM daily_kpis")[0]
    # Then the second device is one more visitor and session but the same signed-in user (warehouse.kpis: visitors =
    # distinct anonymous_id, signed-in users = distinct user_id), and the staff purchase counts nowhere
    _assert_kpis(
        kpis,
        {
            "sessions": 6,
            "visitors": 4,
            "signed_in_users": 2,
            "engaged_sessions": 4,
            "engagement_rate": 4 / 6,
            "bounce_rate": 2 / 6,
            "converted_sessions": 2,
            "conversion_rate": 2 / 6,
            "orders": 2,
            "gross_revenue": STORE_DAY_KPIS["gross_revenue"],
            "net_revenue": STORE_DAY_KPIS["net_revenue"],
            "aov": STORE_DAY_KPIS["aov"],
        },
    )
