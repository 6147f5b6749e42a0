"""The store's journeys end to end: shoppers in Debian's headless Chromium against a real ``clickstream serve``
process (the built store, the local Hosted UI and identity pool, SigV4 on the guest route), then
``POST /local/run-pipeline``, then the warehouse and the dashboard.

The browser is driven by ``tests/e2e/store_journeys.mjs`` (playwright-core from ``web/node_modules``, which
``make web`` installs, pointed at ``/usr/bin/chromium``); it reports what the browser showed — every page, the
confirmation page's order id and total, the event ids of every request the collector answered 202 — and this test
holds the warehouse to it. Without Chromium, node or the npm packages the tests skip with the reason; under
``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clickstream_local.auth import LocalIssuer
from clickstream_local.store import DEFAULT_STORE_DIR
from tests.e2e.browser_needs import chromium_binary, missing
from tests.e2e.serve_process import ServeProcess, environment, warehouse_rows

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPOSITORY = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("store_journeys.mjs")
CATALOG = REPOSITORY / "src" / "clickstream_local" / "generator" / "catalog.json"
SHOPPER = "ada@example.com"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if shutil.which("node") is None:
        missing("node not found: the shoppers are driven with playwright-core from web/node_modules")
    if not (REPOSITORY / "web" / "node_modules" / "playwright-core" / "package.json").is_file():
        missing("playwright-core not installed: make web")
    if not (DEFAULT_STORE_DIR / "index.html").is_file():
        missing("the store is not built: make web")
    return str(binary)


def drive(chromium: str, journey: str, port: int) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(DRIVER), journey, f"http://127.0.0.1:{port}", SHOPPER],
        capture_output=True,
        text=True,
        timeout=240,
        env={**environment(), "CHROMIUM_BIN": chromium},
        cwd=REPOSITORY,
    )
    assert done.returncode == 0, f"{journey}: {done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["problems"] == [], result["problems"]
    return result


@pytest.fixture(scope="module")
def visits(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three shoppers on one server, then one pipeline run, then the dashboard."""
    out = tmp_path_factory.mktemp("store") / "serve-output"
    server = ServeProcess(out).start()
    try:
        port = server.port
        found: dict[str, Any] = {"out": out}
        found["purchase"] = drive(chromium, "purchase", port)
        found["outage"] = drive(chromium, "outage", port)
        before = server.request("GET", "/local/status").json()
        found["declined"] = drive(chromium, "declined", port)
        after = server.request("GET", "/local/status").json()
        found["declined_server"] = (before, after)
        run = server.run_pipeline()
        assert run.status == 200, run.body[:2000]
        found["run"] = run.json()
        found["dashboard"] = drive(chromium, "dashboard", port)
        found["issuer"] = LocalIssuer.load(out)
        found["origin"] = f"http://127.0.0.1:{port}"
        yield found
    finally:
        server.cleanup()


def events_of(out: Path, anonymous_id: str) -> list[dict[str, Any]]:
    columns = (
        "event_id",
        "event_type",
        "page_url",
        "user_id",
        "session_id",
        "value",
        "transaction_id",
        "items",
    )
    rows = warehouse_rows(
        out,
        f"SELECT {', '.join(columns)} FROM events WHERE anonymous_id = ? ORDER BY event_ts, event_id",
        [anonymous_id],
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def assert_once(events: list[dict[str, Any]], delivered: list[str]) -> None:
    """Each event the collector acknowledged is in the warehouse exactly once; the only others are page pings a
    closing page sent in a keepalive request after the driver stopped listening."""
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    assert set(delivered) <= set(ids)
    assert {e["event_type"] for e in events if e["event_id"] not in set(delivered)} <= {"page_ping"}


def page_views(events: list[dict[str, Any]], origin: str, occurred_at: dict[str, str]) -> list[str]:
    """The page views in the order the browser recorded them (each event's occurred_at, as the collector received it),
    not by event_ts: event_ts corrects each request's clock skew by that request's sent_at and arrival, so two page
    views milliseconds apart that went in different requests can swap there. Every page view was acknowledged, so
    each has its occurred_at (a KeyError otherwise)."""
    views = [e for e in events if e["event_type"] == "page_view"]
    views.sort(key=lambda e: datetime.fromisoformat(occurred_at[e["event_id"]]))
    return [e["page_url"].removeprefix(origin) for e in views]


def test_a_signed_out_shopper_who_signs_in_and_buys_is_one_stitched_session_with_the_exact_order(visits):
    seen, out, origin = visits["purchase"], visits["out"], visits["origin"]
    events = events_of(out, seen["anonymousId"])
    # one anonymous id for the whole visit, before and after signing in
    assert seen["anonymousIdAfterSignIn"] == seen["anonymousId"]
    # every page the browser showed is a page_view, in order, and nothing else is
    assert page_views(events, origin, seen["delivery"]["occurredAt"]) == seen["shown"]
    # no duplicates: the warehouse holds each acknowledged event once, and nothing it was not sent
    delivered = seen["delivery"]["eventIds"]
    assert_once(events, delivered)
    assert seen["delivery"]["guestRequests"] >= 1, "the signed-out part went to the guest route (SigV4)"
    # the purchase: the confirmation page's order id and total, the items in the cart
    purchases = [e for e in events if e["event_type"] == "purchase"]
    assert len(purchases) == 1
    order = seen["order"]
    assert purchases[0]["transaction_id"] == order["id"]
    assert Decimal(str(purchases[0]["value"])).quantize(Decimal("0.01")) == Decimal(order["total"])
    items = json.loads(purchases[0]["items"])
    assert [[i["product_id"], i["quantity"]] for i in items] == order["items"]
    # one session for the visit, and it belongs to the signed-in user, anonymous events before sign-in included
    sessions = {e["session_id"] for e in events}
    assert len(sessions) == 1
    subject = visits["issuer"].subject(SHOPPER)
    (session_user,) = warehouse_rows(
        out, "SELECT user_id FROM sessions WHERE session_id = ?", [sessions.pop()]
    )[0]
    assert session_user == subject
    before_sign_in = [e for e in events if e["user_id"] is None]
    assert before_sign_in and any(e["event_type"] == "add_to_cart" for e in before_sign_in)
    assert {e["user_id"] for e in events if e["user_id"] is not None} == {subject}
    # the store's GA4 events all arrived (none quarantined as an unknown type)
    types = {e["event_type"] for e in events}
    for name in ("view_item_list", "search", "select_item", "view_item", "add_to_cart", "view_cart", "login"):
        assert name in types, name
    assert {"begin_checkout", "add_payment_info", "purchase"} <= types


def test_a_shopper_whose_network_is_cut_is_delivered_later_exactly_once(visits):
    seen, out, origin = visits["outage"], visits["out"], visits["origin"]
    events = events_of(out, seen["anonymousId"])
    delivered = seen["delivery"]["eventIds"]
    # requests were cut and retried; nothing got through while the network was down
    assert seen["aborted"] > 0 and seen["retries"] > 0
    assert seen["duringOutage"] == seen["beforeOutage"]
    assert len(delivered) > seen["beforeOutage"], "the queue delivered after the outage"
    assert seen["stats"]["queued"] == 0
    # every event the collector acknowledged is in the warehouse once; every page shown is a page_view
    assert_once(events, delivered)
    assert page_views(events, origin, seen["delivery"]["occurredAt"]) == seen["shown"]
    assert len({e["session_id"] for e in events}) == 1
    print(
        f"\n# outage journey: {len(set(delivered))} events sent, {seen['aborted']} requests aborted during the "
        f"outage, {seen['retries']} retries, {seen['delivery']['requests']} requests acknowledged "
        f"({len(delivered)} event copies), {len(events)} events in the warehouse, each once; "
        f"{seen['queuedOffline']} queued while offline"
    )


def test_a_shopper_who_refuses_consent_sends_nothing(visits):
    seen = visits["declined"]
    before, after = visits["declined_server"]
    assert seen["requests"] == []
    assert seen["banner"] == 0, "the answer is remembered"
    assert "_cs_aid" not in seen["cookies"]
    assert (after["accepted_requests"], after["rejected_requests"]) == (
        before["accepted_requests"],
        before["rejected_requests"],
    )


def test_the_dashboard_after_the_run_shows_the_order(visits):
    dashboard, order = visits["dashboard"], visits["purchase"]["order"]
    assert visits["run"]["status"] == "SUCCEEDED" and visits["run"]["failed_objects"] == []
    tiles = dashboard["tiles"]
    assert int(tiles["orders"]) == 1
    assert Decimal(tiles["gross_revenue"]).quantize(Decimal("0.01")) == Decimal(order["total"])
    assert order["total"].split(".")[0] in dashboard["revenueShown"].replace(",", "")
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    names = {p["product_id"]: p["name"] for p in catalog["products"]}
    bought = names[order["items"][0][0]]
    row = next(r for r in dashboard["products"] if r["product_name"]["shown"] == bought)
    assert Decimal(row["revenue"]["value"]).quantize(Decimal("0.01")) == Decimal(order["total"])
