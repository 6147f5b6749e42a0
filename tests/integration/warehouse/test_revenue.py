"""Revenue, refunds and AOV as analysts define them, on DuckDB and PostgreSQL, against hand-computed numbers.

The fixture is two days of the store (site time zone UTC):

2026-03-02 (the store day of ``tests.unit.warehouse.factory``): orders T1 1,200.00 and T2 300.00 USD, a partial
    refund of T1 (100.00 USD), and a bot's order that counts nowhere.
2026-03-03:
    * E buys T4 for 450.00 USD, and the tracker sends the purchase again (another event_id, same transaction id):
      one order;
    * C refunds all of T2 (300.00 USD), an order of the day before;
    * F is refunded 75.50 USD for T-OLD, an order the warehouse never saw;
    * H buys T6 for 99.93 USD;
    * G buys T5 for 80.00 EUR, then gets 20.00 EUR back, and 10.00 EUR more from a tracker that sends refunds as
      negative amounts;
    * J "buys" T-HUGE for 1e300 USD: not an order a store takes; left out of the money, and it stops nothing.

By hand, per day and currency (gross = orders' values, refunds on their own day, net = gross - refunds,
AOV = gross / orders, in cents rounded half away from zero):

    03-02 USD  orders 2  gross 1,500.00  refunds 100.00  net 1,400.00  AOV 750.00
    03-03 USD  orders 2  gross   549.93  refunds 375.50  net   174.43  AOV 274.97   (549.93 / 2 = 274.965)
    03-03 EUR  orders 1  gross    80.00  refunds  30.00  net    50.00  AOV  80.00
    both days, USD: orders 4, gross 2,049.93, refunds 475.50, net 1,574.43, AOV 512.48 (2,049.93 / 4 = 512.4825)

274.965 is a tie that a division in binary floating point rounds down (to 274.96) and exact decimals round up:
both engines must give 274.97.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from clickstream.warehouse.kpis import (
    CURRENT,
    PREVIOUS,
    aov_outside_order_values,
    kpi_periods,
    kpi_totals,
    recompute_daily_kpis,
)
from clickstream.warehouse.loader import RunRecord, load_run
from tests.unit.warehouse.factory import second_day, store_day, write_run

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)


@pytest.fixture
def two_days(warehouse, tmp_path):
    """The fixture loaded and its days aggregated; yields the warehouse."""
    events, sessions = store_day()
    more_events, more_sessions = second_day()
    with warehouse.connect() as conn:
        stats = load_run(
            conn, write_run(tmp_path / "run", events + more_events, sessions + more_sessions), RunRecord("r1")
        )
        assert recompute_daily_kpis(conn, stats.affected_days, "USD") == ["2026-03-02", "2026-03-03"]
    return warehouse


def _d(text: str) -> Decimal:
    return Decimal(text)


def test_daily_revenue_per_currency_equals_the_hand_computed_rows(two_days):
    with two_days.connect() as conn:
        rows = conn.query(
            "SELECT day, currency, orders, gross_revenue, refunds, net_revenue, aov FROM daily_revenue"
            " ORDER BY day, currency"
        )
    assert [(d, c, int(o), g, r, n, a) for d, c, o, g, r, n, a in rows] == [
        (DAY1, "USD", 2, _d("1500.00"), _d("100.00"), _d("1400.00"), _d("750.00")),
        (DAY2, "EUR", 1, _d("80.00"), _d("30.00"), _d("50.00"), _d("80.00")),
        (DAY2, "USD", 2, _d("549.93"), _d("375.50"), _d("174.43"), _d("274.97")),
    ]


def test_daily_kpis_carry_the_store_currency_money(two_days):
    with two_days.connect() as conn:
        rows = conn.query(
            "SELECT day, orders, gross_revenue, refunds, net_revenue, aov, currency, sessions, converted_sessions"
            " FROM daily_kpis ORDER BY day"
        )
    # A refund of an earlier order lowers the refund's day's net revenue, never its AOV; the EUR order is not in it
    assert [tuple(r) for r in rows] == [
        (DAY1, 2, _d("1500.00"), _d("100.00"), _d("1400.00"), _d("750.00"), "USD", 5, 2),
        (DAY2, 2, _d("549.93"), _d("375.50"), _d("174.43"), _d("274.97"), "USD", 6, 4),
    ]


def test_totals_over_both_days_and_the_previous_period(two_days):
    with two_days.connect() as conn:
        totals = kpi_totals(conn, "USD")
        periods = kpi_periods(conn, "USD", [DAY2], previous_days=[DAY1])
        eur = kpi_totals(conn, "EUR", [DAY2])

    def money(row):
        return (int(row["orders"]), row["gross_revenue"], row["refunds"], row["net_revenue"], row["aov"])

    assert money(totals) == (4, _d("2049.93"), _d("475.50"), _d("1574.43"), _d("512.48"))
    assert money(periods[CURRENT]) == (2, _d("549.93"), _d("375.50"), _d("174.43"), _d("274.97"))
    assert money(periods[PREVIOUS]) == (2, _d("1500.00"), _d("100.00"), _d("1400.00"), _d("750.00"))
    assert (periods[CURRENT]["sessions"], periods[PREVIOUS]["sessions"]) == (6, 5)
    assert money(eur) == (1, _d("80.00"), _d("30.00"), _d("50.00"), _d("80.00"))


def test_a_period_without_sessions_has_zero_counts(two_days):
    with two_days.connect() as conn:
        periods = kpi_periods(conn, "USD", [DAY2], previous_days=[DAY1 - timedelta(days=7)])
    assert periods[PREVIOUS]["sessions"] == 0 and periods[PREVIOUS]["orders"] == 0
    assert periods[PREVIOUS]["gross_revenue"] == _d("0.00") and periods[PREVIOUS]["aov"] is None
    assert periods[PREVIOUS]["engagement_rate"] is None


def test_every_days_aov_lies_within_its_order_values_and_the_check_sees_a_wrong_one(two_days):
    with two_days.connect() as conn:
        # Given the days aggregated by the definitions: the check finds nothing
        assert aov_outside_order_values(conn) == []
        # When a day's AOV is computed the old way (net revenue / orders: 174.43 / 2)
        conn.execute("UPDATE daily_kpis SET aov = 87.22 WHERE day = ?", [DAY2])
        # Then the check names that day (87.22 is below the least order, 99.93)
        wrong = aov_outside_order_values(conn)
    assert [(r["day"], r["aov"], float(r["lowest"]), float(r["highest"])) for r in wrong] == [
        (DAY2, _d("87.22"), 99.93, 450.0)
    ]


def test_recomputing_gives_the_same_rows(two_days):
    with two_days.connect() as conn:
        before = sorted(map(tuple, conn.query("SELECT * FROM daily_revenue")))
        kpis = sorted(map(tuple, conn.query("SELECT * FROM daily_kpis")))
        recompute_daily_kpis(conn, [DAY1, DAY2], "USD")
        assert sorted(map(tuple, conn.query("SELECT * FROM daily_revenue"))) == before
        assert sorted(map(tuple, conn.query("SELECT * FROM daily_kpis"))) == kpis
