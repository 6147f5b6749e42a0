"""Test data for the warehouse: event and session rows, and the sessionizer's Parquet files built with DuckDB.

``store_day()`` is the hand-computed KPI fixture: 3 visitors, 5 human sessions, 1 bot session, 2 orders, 1 refund
on 2026-03-02 (UTC). Its expected KPIs are in ``STORE_DAY_KPIS``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from clickstream.adapters.warehouse import sql_type
from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMNS, USER_COLUMNS
from clickstream.warehouse.loader import VISITOR_COLUMNS, RunFiles

DAY = datetime(2026, 3, 2, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)


def at(hour: int, minute: int = 0, second: int = 0, day: datetime = DAY) -> datetime:
    return day + timedelta(hours=hour, minutes=minute, seconds=second)


def write_parquet(path: Path, columns, rows: list[dict[str, Any]]) -> Path:
    """A Parquet file with exactly ``columns`` (name, type), rows given as dicts (missing keys are null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TABLE t ({', '.join(f'{n} {sql_type(t)}' for n, t in columns)})")
        names = [n for n, _ in columns]
        if rows:
            con.executemany(
                f"INSERT INTO t VALUES ({', '.join('?' for _ in names)})",
                [[row.get(n) for n in names] for row in rows],
            )
        con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    return path


def event(
    event_id: str, session_id: str, anonymous_id: str, event_type: str, ts: datetime, **fields: Any
) -> dict:
    row = {
        "app_id": "shop-web",
        "event_id": event_id,
        "anonymous_id": anonymous_id,
        "event_type": event_type,
        "event_ts": ts,
        "received_at": ts + timedelta(seconds=2),
        "occurred_at": ts,
        "page_url": "https://shop.example/" + fields.pop("path", "").lstrip("/"),
        "session_id": session_id,
        "is_bot": False,
        "is_internal": False,
        "ts_clamped": False,
        "source_object": "raw/dt=2026-03-02/hr=09/obj-1",
        "source_line": 1,
    }
    row["page_path"] = row["page_url"].removeprefix("https://shop.example")
    row.update(fields)
    return row


def item(product_id: str, name: str, category: str, price: float, quantity: int = 1) -> dict:
    return {
        "product_id": product_id,
        "name": name,
        "category": category,
        "price": price,
        "quantity": quantity,
    }


def product_event(
    event_id: str,
    session_id: str,
    anonymous_id: str,
    event_type: str,
    ts: datetime,
    items: list[dict],
    **fields: Any,
) -> dict:
    first = items[0]
    return event(
        event_id,
        session_id,
        anonymous_id,
        event_type,
        ts,
        product_id=first["product_id"],
        product_name=first["name"],
        category=first["category"],
        price=first["price"],
        quantity=first["quantity"],
        items=json.dumps(items),
        **fields,
    )


def session(session_id: str, anonymous_id: str, start: datetime, duration_s: float, **fields: Any) -> dict:
    row = {
        "session_id": session_id,
        "anonymous_id": anonymous_id,
        "app_id": "shop-web",
        "session_start": start,
        "session_end": start + timedelta(seconds=duration_s),
        "duration_s": float(duration_s),
        "engaged_time_s": float(min(duration_s, 30)),
        "n_events": 1,
        "n_page_views": 1,
        "landing_page": "/",
        "exit_page": "/",
        "channel": "Direct",
        "device_type": "desktop",
        "browser": "Firefox",
        "os": "Linux",
        "is_bot": False,
        "is_internal": False,
        "engaged": False,
        "viewed_item": False,
        "added_to_cart": False,
        "began_checkout": False,
        "purchased": False,
        "orders": 0,
        "revenue": 0.0,
        "currency": None,
    }
    row.update(fields)
    row["bounce"] = not row["engaged"]
    return row


def write_run(
    directory: Path,
    events: list[dict],
    sessions: list[dict],
    visitors: list[str] | None = None,
    *,
    replace_from: dict[str, datetime] | None = None,
    users: list[dict] | None = None,
) -> RunFiles:
    """The files the Sessionize step writes for one bucket (visitors default to the sessions' visitors; a visitor
    in ``replace_from`` is replaced from that session start on; ``users`` gives the run's users links)."""
    if visitors is None:
        visitors = sorted({s["anonymous_id"] for s in sessions} | {e["anonymous_id"] for e in events})
    starts = replace_from or {}
    files = RunFiles(
        events=[write_parquet(directory / "events.parquet", EVENT_COLUMNS, events)],
        sessions=[write_parquet(directory / "sessions.parquet", SESSION_COLUMNS, sessions)],
        visitors=[
            write_parquet(
                directory / "visitors.parquet",
                VISITOR_COLUMNS,
                [{"anonymous_id": v, "replace_from": starts.get(v)} for v in visitors],
            )
        ],
    )
    if users is not None:
        files.users.append(write_parquet(directory / "users.parquet", USER_COLUMNS, users))
    return files


def one_view_run(directory: Path, event_id: str, session_id: str, visitor: str, *, hour: int = 9) -> RunFiles:
    """The files of a run that brings one page view (at ``hour`` on the factory's day) in a one-event session."""
    return write_run(
        directory,
        [event(event_id, session_id, visitor, "page_view", at(hour))],
        [session(session_id, visitor, at(hour), 1)],
    )


LAPTOP = item("p1", "Laptop Pro 14", "laptops", 1200.0)
HEADPHONES = item("p2", "Noise-cancelling Headphones", "audio", 250.0)
CHARGER = item("p3", "USB-C Charger 100W", "accessories", 150.0, 2)
BOT_ITEM = item("p9", "Bot Bait", "accessories", 999.0)


def store_day() -> tuple[list[dict], list[dict]]:
    """(events, sessions) of the hand-computed fixture; see the module docstring."""
    events = [
        # S1: visitor A (user u1), paid search, buys the laptop (T1, 1200 USD)
        event("e01", "S1", "A", "page_view", at(9, 0), path="/laptops", user_id="u1"),
        product_event("e02", "S1", "A", "view_item", at(9, 1), [LAPTOP], path="/p/p1", user_id="u1"),
        product_event("e03", "S1", "A", "add_to_cart", at(9, 2), [LAPTOP], path="/p/p1", user_id="u1"),
        product_event("e04", "S1", "A", "begin_checkout", at(9, 3), [LAPTOP], path="/checkout", user_id="u1"),
        product_event(
            "e05",
            "S1",
            "A",
            "purchase",
            at(9, 5),
            [LAPTOP],
            path="/thanks",
            user_id="u1",
            transaction_id="T1",
            value=1200.0,
            currency="USD",
        ),
        # S2: visitor A comes back and bounces
        event("e06", "S2", "A", "page_view", at(15, 0), path="/", user_id="u1"),
        # S3: visitor B (anonymous), organic search, adds headphones to the cart
        event("e07", "S3", "B", "page_view", at(10, 0), path="/"),
        product_event("e08", "S3", "B", "view_item", at(10, 0, 30), [HEADPHONES], path="/p/p2"),
        product_event("e09", "S3", "B", "add_to_cart", at(10, 1), [HEADPHONES], path="/p/p2"),
        # S4: visitor C (user u2), e-mail campaign, buys two chargers (T2, 300 USD)
        event("e10", "S4", "C", "page_view", at(11, 0), path="/deals", user_id="u2"),
        product_event("e11", "S4", "C", "view_item", at(11, 1), [CHARGER], path="/p/p3", user_id="u2"),
        product_event("e12", "S4", "C", "add_to_cart", at(11, 2), [CHARGER], path="/p/p3", user_id="u2"),
        product_event(
            "e13", "S4", "C", "begin_checkout", at(11, 5), [CHARGER], path="/checkout", user_id="u2"
        ),
        product_event(
            "e14",
            "S4",
            "C",
            "purchase",
            at(11, 10),
            [CHARGER],
            path="/thanks",
            user_id="u2",
            transaction_id="T2",
            value=300.0,
            currency="USD",
        ),
        # S5: visitor C, a partial refund of T1 (100 USD)
        event(
            "e15",
            "S5",
            "C",
            "refund",
            at(20, 0),
            path="/account",
            user_id="u2",
            transaction_id="T1",
            value=100.0,
            currency="USD",
        ),
        # S6: a bot that "buys" (T3): kept in the tables, left out of every KPI
        event("e16", "S6", "D", "page_view", at(12, 0), path="/", is_bot=True),
        product_event(
            "e17",
            "S6",
            "D",
            "purchase",
            at(12, 1),
            [BOT_ITEM],
            path="/thanks",
            is_bot=True,
            transaction_id="T3",
            value=999.0,
            currency="USD",
        ),
    ]
    sessions = [
        session(
            "S1",
            "A",
            at(9, 0),
            300,
            user_id="u1",
            n_events=5,
            n_page_views=4,
            landing_page="/laptops",
            channel="Paid Search",
            utm_source="google",
            utm_medium="cpc",
            engaged=True,
            viewed_item=True,
            added_to_cart=True,
            began_checkout=True,
            purchased=True,
            orders=1,
            revenue=1200.0,
            currency="USD",
        ),
        session("S2", "A", at(15, 0), 5, user_id="u1", n_events=1, n_page_views=1, landing_page="/"),
        session(
            "S3",
            "B",
            at(10, 0),
            60,
            n_events=3,
            n_page_views=2,
            landing_page="/",
            channel="Organic Search",
            device_type="mobile",
            engaged=True,
            viewed_item=True,
            added_to_cart=True,
        ),
        session(
            "S4",
            "C",
            at(11, 0),
            600,
            user_id="u2",
            n_events=5,
            n_page_views=6,
            landing_page="/deals",
            channel="Email",
            device_type="mobile",
            engaged=True,
            viewed_item=True,
            added_to_cart=True,
            began_checkout=True,
            purchased=True,
            orders=1,
            revenue=300.0,
            currency="USD",
        ),
        session(
            "S5",
            "C",
            at(20, 0),
            8,
            user_id="u2",
            n_events=1,
            n_page_views=1,
            landing_page="/account",
            revenue=-100.0,
            currency="USD",
        ),
        session(
            "S6",
            "D",
            at(12, 0),
            100,
            n_events=2,
            n_page_views=10,
            device_type="bot",
            is_bot=True,
            engaged=True,
            purchased=True,
            orders=1,
            revenue=999.0,
            currency="USD",
        ),
    ]
    return events, sessions


STORE_DAY_KPIS = {
    "sessions": 5,
    "visitors": 3,
    "signed_in_users": 2,
    "engaged_sessions": 3,
    "converted_sessions": 2,
    "engagement_rate": 0.6,
    "bounce_rate": 0.4,
    "avg_session_duration_s": (300 + 5 + 60 + 600 + 8) / 5,
    "pages_per_session": (4 + 1 + 2 + 6 + 1) / 5,
    "conversion_rate": 0.4,
    "orders": 2,
    "gross_revenue": Decimal("1500.00"),  # T1 1200 + T2 300 (the bot's T3 left out)
    "refunds": Decimal("100.00"),  # the partial refund of T1
    "net_revenue": Decimal("1400.00"),
    "aov": Decimal("750.00"),  # gross / orders: refunds never lower the order value
    "currency": "USD",
}


def _money(event_id, session_id, visitor, kind, hour, transaction_id, value, currency="USD", minute=0):
    return event(
        event_id,
        session_id,
        visitor,
        kind,
        at(hour, minute, day=NEXT),
        transaction_id=transaction_id,
        value=value,
        currency=currency,
    )


def second_day() -> tuple[list[dict], list[dict]]:
    """(events, sessions) of the day after the store day, the money fixture of
    ``tests/integration/warehouse/test_revenue.py`` (its docstring computes the numbers by hand)."""
    events = [
        _money("n01", "N1", "E", "purchase", 9, "T4", 450.0),
        _money("n02", "N1", "E", "purchase", 9, "T4", 450.0, minute=1),  # the tracker's resend
        _money("n03", "N2", "C", "refund", 10, "T2", 300.0),
        _money("n04", "N3", "F", "refund", 11, "T-OLD", 75.5),
        _money("n05", "N4", "H", "purchase", 12, "T6", 99.93),
        _money("n06", "N5", "G", "purchase", 13, "T5", 80.0, "EUR"),
        _money("n07", "N5", "G", "refund", 13, "T5", 20.0, "EUR", minute=5),
        _money("n08", "N5", "G", "refund", 13, "T5", -10.0, "EUR", minute=6),
        _money("n09", "N6", "J", "purchase", 14, "T-HUGE", 1e300),
    ]

    def visit(session_id, visitor, hour, **fields):
        return session(session_id, visitor, at(hour, day=NEXT), 120, engaged=True, **fields)

    sessions = [
        visit("N1", "E", 9, purchased=True, orders=1, revenue=900.0, currency="USD"),
        visit("N2", "C", 10, revenue=-300.0, currency="USD"),
        visit("N3", "F", 11, revenue=-75.5, currency="USD"),
        visit("N4", "H", 12, purchased=True, orders=1, revenue=99.93, currency="USD"),
        visit("N5", "G", 13, purchased=True, orders=1, revenue=70.0, currency="EUR"),
        visit("N6", "J", 14, purchased=True, orders=1, revenue=1e300, currency="USD"),
    ]
    return events, sessions
