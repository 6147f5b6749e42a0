"""The demo's traffic generator: deterministic, realistic in its rates, and carrying every kind of trouble."""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from clickstream.core.schema import GA4_EVENT_TYPES
from clickstream_local.generator.traffic import (
    CURRENCY,
    DEFAULT_START,
    INTERNAL_HEADER,
    INTERNAL_NETWORK,
    LOOKBACK_HOURS,
    STORE_ORIGIN,
    Catalog,
    Traffic,
    TrafficConfig,
    _Simulator,
    catalog,
    generate,
)

# The generator's vocabulary: every GA4 name but ``select_item``, which only the store sends (a product card clicked
# in a list); the generator's shoppers open products directly, and its requests stay what they were for a seed.
GA4_TYPES = set(GA4_EVENT_TYPES) - {"select_item"}


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate(TrafficConfig(events=20_000, days=4, seed=7))


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parse(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return value if value.tzinfo else None


def _accepted(traffic: Traffic):
    """(request, envelope) of every request the API should accept."""
    for req in traffic.requests:
        if req.expected_status == 202:
            yield req, json.loads(req.event["body"])


def _received(req) -> datetime:
    return datetime.fromtimestamp(req.event["requestContext"]["requestTimeEpoch"] / 1000, tz=UTC)


def _is_malformed(ev: dict) -> bool:
    if (
        "event_id" not in ev
        or ev.get("event_type") not in GA4_TYPES
        or _parse(ev.get("occurred_at", "")) is None
    ):
        return True
    if ev["event_type"] == "purchase" and not ev.get("transaction_id"):
        return True
    return any(item.get("price", 0) < 0 for item in ev.get("items", []))


def _observed_sessions(traffic: Traffic) -> list[list[tuple[datetime, dict, str]]]:
    """Sessions as the pipeline would see them: skew-corrected event time, 30 min gaps, per anonymous_id."""
    per_visitor: dict[str, dict[str, tuple[datetime, dict, str]]] = defaultdict(dict)
    for req, env in _accepted(traffic):
        received, sent = _received(req), _ts(env["sent_at"])
        ua = req.event["headers"]["User-Agent"]
        for ev in env["events"]:
            occurred = _parse(ev.get("occurred_at", ""))
            if occurred is None or "event_id" not in ev:
                continue
            event_ts = min(received, received - (sent - occurred))
            if received - event_ts > timedelta(hours=LOOKBACK_HOURS):
                continue
            per_visitor[env["anonymous_id"]].setdefault(ev["event_id"], (event_ts, ev, ua))
    sessions = []
    for events in per_visitor.values():
        ordered = sorted(events.values(), key=lambda e: e[0])
        current = [ordered[0]]
        for prev, nxt in itertools.pairwise(ordered):
            if nxt[0] - prev[0] > timedelta(minutes=30):
                sessions.append(current)
                current = []
            current.append(nxt)
        sessions.append(current)
    return sessions


def test_same_seed_gives_the_same_requests_and_another_seed_does_not():
    # Given one configuration
    config = TrafficConfig(events=2_000, days=2, seed=42)
    # When it is generated twice, and once with another seed
    first, second = generate(config), generate(config)
    other = generate(TrafficConfig(events=2_000, days=2, seed=43))
    # Then the two runs are identical to the byte, and the other seed differs
    assert [json.dumps(r.event, sort_keys=True) for r in first.requests] == [
        json.dumps(r.event, sort_keys=True) for r in second.requests
    ]
    assert first.generated_events == second.generated_events
    assert [r.event["body"] for r in first.requests] != [r.event["body"] for r in other.requests]


def test_requests_come_in_receive_time_order_with_api_gateway_times(traffic):
    # Given the generated requests
    times = [r.received_at for r in traffic.requests]
    # Then they are in receive-time order, each stamped with its requestTimeEpoch and a unique request id
    assert times == sorted(times)
    assert all(
        r.event["requestContext"]["requestTimeEpoch"] == int(r.received_at.timestamp() * 1000)
        for r in traffic.requests
    )
    ids = [r.event["requestContext"]["requestId"] for r in traffic.requests]
    assert len(ids) == len(set(ids))
    # And they span the simulated days, starting at the configured start
    assert traffic.start == DEFAULT_START
    assert times[0] >= DEFAULT_START
    assert times[-1] - times[0] > timedelta(days=3)


def test_generated_events_counts_every_distinct_event_the_shoppers_produced(traffic):
    # Given the bodies of the accepted requests (originals and retries)
    distinct = set()
    sent = 0
    for _req, env in _accepted(traffic):
        sent += len(env["events"])
        distinct.update(json.dumps(ev, sort_keys=True) for ev in env["events"])
    # Then the distinct events are exactly what the generator says it produced, at least the target
    assert len(distinct) == traffic.generated_events
    assert traffic.generated_events >= 20_000
    # And retries and in-request repeats make more events sent than generated
    assert sent > traffic.generated_events


def test_batches_hold_1_to_25_events_with_sent_at_at_send_time(traffic):
    # Given the accepted requests
    sizes = Counter(len(env["events"]) for _req, env in _accepted(traffic))
    # Then every batch has 1..25 events and all sizes in between occur
    assert min(sizes) == 1 and max(sizes) == 25
    assert len(sizes) > 15
    # And for most devices sent_at is within seconds of the receive time (a correct clock)
    close = sum(
        abs((_ts(env["sent_at"]) - _received(req)).total_seconds()) < 5 for req, env in _accepted(traffic)
    )
    total = sum(1 for _ in _accepted(traffic))
    assert 0.75 < close / total < 0.97


def test_funnel_rates_seen_as_the_pipeline_would_see_them_are_plausible(traffic):
    # Given the sessions the pipeline would build (skew-corrected times, 30 min gaps), bots apart
    sessions = _observed_sessions(traffic)
    humans = [s for s in sessions if not any(k in s[0][2] for k in ("bot", "Bot", "Headless"))]
    bots = len(sessions) - len(humans)

    def share(event_type: str) -> float:
        return sum(any(e[1]["event_type"] == event_type for e in s) for s in humans) / len(humans)

    # Then ~60% view an item, ~10% add to cart, ~2-4% purchase, and 3-5% of sessions are bots
    assert 0.5 < share("view_item") < 0.7
    assert 0.06 < share("add_to_cart") < 0.15
    assert 0.015 < share("purchase") < 0.045
    assert 0.03 < bots / len(sessions) < 0.05
    # And the whole GA4 vocabulary appears
    seen = {e[1]["event_type"] for s in sessions for e in s}
    assert seen >= GA4_TYPES


def test_retries_resend_identical_requests_later(traffic):
    # Given the tracker's originals and its retries
    originals = {}
    for req in traffic.requests:
        if req.kind == "tracker":
            originals.setdefault(req.event["body"], req)
    retries = [r for r in traffic.requests if r.kind == "retry"]
    tracker = [r for r in traffic.requests if r.kind == "tracker"]
    # Then 1-2% of requests are resent
    assert 0.01 <= len(retries) / len(tracker) <= 0.02
    for retry in retries:
        original = originals[retry.event["body"]]
        # byte-identical body and headers, same identity, a new request id, received later
        assert retry.event["headers"] == original.event["headers"]
        for part in ("authorizer", "identity", "resourcePath"):
            assert retry.event["requestContext"].get(part) == original.event["requestContext"].get(part)
        assert retry.event["requestContext"]["requestId"] != original.event["requestContext"]["requestId"]
        assert retry.received_at > original.received_at


def test_some_event_ids_repeat_inside_one_request_and_a_few_are_reused_for_other_events(traffic):
    # Given every accepted request
    in_request = 0
    payloads: dict[str, set[str]] = defaultdict(set)
    for _req, env in _accepted(traffic):
        ids = [ev["event_id"] for ev in env["events"] if "event_id" in ev]
        in_request += len(ids) - len(set(ids))
        for ev in env["events"]:
            if "event_id" in ev:
                payloads[ev["event_id"]].add(json.dumps(ev, sort_keys=True))
    # Then a few events are repeated inside a batch (in-object duplicates)
    assert in_request > 0
    # And a few event ids carry two different events (conflicts), but only a few
    conflicts = sum(1 for p in payloads.values() if len(p) > 1)
    assert 1 <= conflicts <= 0.002 * traffic.generated_events


def test_malformed_events_are_half_to_one_percent_and_of_every_kind(traffic):
    # Given the events inside accepted (otherwise valid) requests, each counted once
    events = {json.dumps(ev, sort_keys=True): ev for _req, env in _accepted(traffic) for ev in env["events"]}
    bad = [ev for ev in events.values() if _is_malformed(ev)]
    # Then 0.5-1% of them break a rule
    assert 0.005 <= len(bad) / len(events) <= 0.01
    # And every kind of breakage is present
    assert any("event_id" not in ev for ev in bad)
    assert any(_parse(ev.get("occurred_at", "")) is None for ev in bad)
    assert any(ev.get("event_type") not in GA4_TYPES for ev in bad)
    assert any(ev.get("event_type") == "purchase" and "transaction_id" not in ev for ev in bad)
    assert any(i.get("price", 0) < 0 for ev in bad for i in ev.get("items", []))


def test_malformed_requests_are_few_and_each_breaks_the_envelope_or_identity(traffic):
    # Given the requests the API must refuse
    bad = [r for r in traffic.requests if r.kind == "malformed"]
    # Then there are a few, and each one really is malformed in the way its expected status says
    assert 4 <= len(bad) <= 0.01 * len(traffic.requests)
    statuses = Counter(r.expected_status for r in bad)
    assert set(statuses) == {400, 401, 415}
    for req in bad:
        if req.expected_status == 401:
            assert "authorizer" not in req.event["requestContext"] and req.event["path"] == "/v1/events"
        elif req.expected_status == 415:
            assert req.event["headers"]["Content-Type"] == "application/xml"
        else:
            try:
                env = json.loads(req.event["body"])
            except json.JSONDecodeError:
                continue
            assert "anonymous_id" not in env or env["events"] == []


def test_late_arrivals_include_offline_flushes_and_a_few_beyond_the_lookback(traffic):
    # Given each event's lateness as the pipeline computes it: sent_at - occurred_at (device clock)
    lateness = []
    for _req, env in _accepted(traffic):
        sent = _ts(env["sent_at"])
        for ev in env["events"]:
            occurred = _parse(ev.get("occurred_at", ""))
            if occurred is not None:
                lateness.append(sent - occurred)
    hours_late = [x for x in lateness if timedelta(hours=1) < x <= timedelta(hours=LOOKBACK_HOURS)]
    too_late = [x for x in lateness if x > timedelta(hours=LOOKBACK_HOURS)]
    # Then some events arrive hours late (offline phones), a few past the 72 h lookback, both rare
    assert hours_late and too_late
    assert len(hours_late) / len(lateness) < 0.05
    assert len(too_late) / len(lateness) < 0.01


def test_device_clocks_are_skewed_for_some_and_a_few_record_after_they_send(traffic):
    # Given sent_at (device clock) against the receive time (server clock)
    offsets = [(_ts(env["sent_at"]) - _received(req)).total_seconds() for req, env in _accepted(traffic)]
    # Then some devices run minutes ahead and some behind
    assert any(o > 60 for o in offsets) and any(o < -60 for o in offsets)
    # And a few events claim to have occurred after their batch was sent (clock corrected in between: clamped)
    after = sum(
        1
        for _req, env in _accepted(traffic)
        for ev in env["events"]
        if (_parse(ev.get("occurred_at", "")) or datetime.min.replace(tzinfo=UTC)) > _ts(env["sent_at"])
    )
    assert after > 0


def test_identity_signed_in_shoppers_carry_their_sub_and_guests_their_device_identity(traffic):
    # Given who API Gateway says sent each accepted request
    subs_by_visitor: dict[str, set[str]] = defaultdict(set)
    identities_by_visitor: dict[str, set[str]] = defaultdict(set)
    for req, env in _accepted(traffic):
        ctx = req.event["requestContext"]
        if req.event["path"] == "/v1/guest/events":
            # signed out: the guest route, an identity-pool identity verified by SigV4, no token
            assert "authorizer" not in ctx
            assert ctx["identity"]["cognitoAuthenticationType"] == "unauthenticated"
            identities_by_visitor[env["anonymous_id"]].add(ctx["identity"]["cognitoIdentityId"])
        else:
            # signed in: the user-pool route with the token's claims
            claims = ctx["authorizer"]["claims"]
            assert req.event["path"] == "/v1/events"
            assert (
                claims["token_use"] == "id"
                and claims["aud"]
                and claims["iss"].startswith("https://cognito-idp.")
            )
            subs_by_visitor[env["anonymous_id"]].add(claims["sub"])
    visitors = {env["anonymous_id"] for _r, env in _accepted(traffic)}
    # Then each signed-out browser keeps one identity of its own
    assert all(len(ids) == 1 for ids in identities_by_visitor.values())
    all_ids = [next(iter(ids)) for ids in identities_by_visitor.values()]
    assert len(set(all_ids)) == len(all_ids)
    # And about a quarter of the visitors sign in at some point (bots and internal staff never do)
    assert 0.1 < len(subs_by_visitor) / len(visitors) < 0.35
    # And some people use two devices with the same account
    people = defaultdict(set)
    for anon, subs in subs_by_visitor.items():
        for sub in subs:
            people[sub].add(anon)
    assert any(len(anons) == 2 for anons in people.values())


def test_bots_send_page_views_only_with_crawler_user_agents(traffic):
    # Given requests from crawler user agents
    bot_events = [
        ev
        for req, env in _accepted(traffic)
        if any(
            k in req.event["headers"]["User-Agent"]
            for k in ("Googlebot", "bingbot", "AhrefsBot", "HeadlessChrome")
        )
        for ev in env["events"]
    ]
    # Then there are some, and they are page views only (possibly malformed ones)
    assert bot_events
    assert {ev.get("event_type") for ev in bot_events} <= {"page_view", "pageview", "PageView", "click!"}


def test_internal_traffic_is_marked_by_header_or_office_ip(traffic):
    # Given every accepted request
    network = ipaddress.ip_network(INTERNAL_NETWORK)
    by_header = sum(req.event["headers"].get(INTERNAL_HEADER) == "1" for req, _ in _accepted(traffic))
    by_ip = sum(
        ipaddress.ip_address(req.event["requestContext"]["identity"]["sourceIp"]) in network
        for req, _ in _accepted(traffic)
    )
    total = sum(1 for _ in _accepted(traffic))
    # Then both kinds exist and stay a small share
    assert by_header > 0 and by_ip > 0
    assert (by_header + by_ip) / total < 0.05


def test_traffic_follows_a_diurnal_curve(traffic):
    # Given requests per UTC hour of day
    per_hour = Counter(r.received_at.hour for r in traffic.requests)
    # Then the busiest hour sees several times the traffic of the quietest
    assert max(per_hour.values()) > 3 * min(per_hour.get(h, 0) for h in range(24))


def test_sources_devices_and_user_agents_are_varied(traffic):
    # Given the landing pages and headers of the accepted requests
    landings = [env["context"]["page"]["url"] for _r, env in _accepted(traffic)]
    agents = {req.event["headers"]["User-Agent"] for req, _ in _accepted(traffic)}
    referrers = {
        ev["page"].get("referrer", "")
        for _r, env in _accepted(traffic)
        for ev in env["events"]
        if "page" in ev
    }
    # Then campaigns of every medium appear in landing URLs, and there are a few dozen user agents
    for medium in ("cpc", "paid_social", "email", "affiliate"):
        assert any(f"utm_medium={medium}" in url for url in landings), medium
    assert any(r.startswith("https://www.google.com") for r in referrers)
    assert any(r.startswith("https://www.bing.com") for r in referrers)
    assert 20 <= len(agents) <= 60
    assert any("iPhone" in a for a in agents) and any("iPad" in a for a in agents)
    assert any("Android" in a for a in agents) and any("Edg/" in a for a in agents)


def test_returning_visitors_come_back_after_more_than_30_minutes(traffic):
    # Given the sessions the pipeline would build
    sessions = _observed_sessions(traffic)
    visits: dict[str, int] = Counter()
    by_event_visitor = {}
    for _req, env in _accepted(traffic):
        for ev in env["events"]:
            if "event_id" in ev:
                by_event_visitor[ev["event_id"]] = env["anonymous_id"]
    for s in sessions:
        visits[by_event_visitor[s[0][1]["event_id"]]] += 1
    # Then a good share of visitors have more than one session
    returning = sum(1 for n in visits.values() if n > 1)
    assert 0.1 < returning / len(visits) < 0.6


def test_orders_carry_transaction_value_and_items_and_some_are_refunded_later(traffic):
    # Given purchases and refunds
    events = [ev for _r, env in _accepted(traffic) for ev in env["events"]]
    purchases = {
        ev["transaction_id"]: ev
        for ev in events
        if ev.get("event_type") == "purchase" and "transaction_id" in ev
    }
    refunds = [ev for ev in events if ev.get("event_type") == "refund"]
    # Then each purchase's value covers its items, in USD
    assert purchases
    for ev in purchases.values():
        items_total = sum(i["price"] * i["quantity"] for i in ev["items"])
        assert ev["currency"] == "USD" and ev["value"] >= items_total - 0.01
    # And refunds name a purchase and happen later
    assert refunds
    for ref in refunds:
        assert ref["transaction_id"] in purchases
        assert _ts(ref["occurred_at"]) > _ts(purchases[ref["transaction_id"]]["occurred_at"])


def test_catalog_is_a_sane_laptop_and_electronics_store():
    # Given the catalog
    products = catalog()
    # Then it has 60-150 products with unique ids, brands and positive USD prices
    assert 60 <= len(products) <= 150
    assert len({p.product_id for p in products}) == len(products)
    assert all(p.price > 0 and p.brand and p.name.startswith(p.brand) for p in products)
    categories = {p.category for p in products}
    assert {
        "Laptops",
        "Monitors",
        "Keyboards",
        "Mice",
        "Headphones",
        "Docks",
        "Cables & Chargers",
    } <= categories
    # And prices are plausible per category
    laptops = [p.price for p in products if p.category == "Laptops"]
    cables = [p.price for p in products if p.category == "Cables & Chargers"]
    assert min(laptops) > 400 and max(cables) < 100
    # And item dicts carry what the event contract needs
    assert set(products[0].item()) == {"product_id", "name", "category", "brand", "price", "quantity"}


def test_small_runs_still_contain_every_kind_of_trouble():
    # Given a tiny simulation
    small = generate(TrafficConfig(events=300, days=1, seed=3))
    kinds = Counter(r.kind for r in small.requests)
    # Then it still has retries, malformed requests, bots and a flush past the lookback
    assert kinds["retry"] >= 2 and kinds["malformed"] >= 4
    assert small.counts["bot_sessions"] >= 1 and small.counts["too_late_sessions"] >= 1
    assert small.counts["malformed_events"] >= 4


def _catalog_file() -> dict:
    from importlib import resources

    return json.loads(
        resources.files("clickstream_local.generator").joinpath("catalog.json").read_text("utf-8")
    )


def test_the_generator_sells_catalog_json_as_written():
    # Given catalog.json, the one catalog (the store bundles the same file)
    data = _catalog_file()
    # Then the generator's products are its entries, in order, every field as written (ids and slugs included)
    assert [p.model_dump() for p in catalog()] == data["products"]
    # And its URLs, currency and category weights are the file's
    file_urls = [f"{STORE_ORIGIN}/p/{p['product_id']}/{p['slug']}" for p in data["products"]]
    assert [p.url for p in catalog()] == file_urls
    assert data["currency"] == CURRENCY
    sim_weights = _Simulator(TrafficConfig(events=1, seed=0)).category_weights
    assert sim_weights == [(c["name"], c["weight"]) for c in data["categories"]]
    # And each category's ids are its code and a number from 0001 in file order: the ids the demo always used
    for c in data["categories"]:
        ids = [p["product_id"] for p in data["products"] if p["category"] == c["name"]]
        assert ids == [f"{c['code']}-{i:04d}" for i in range(1, len(ids) + 1)]


def _first(data: dict, key: str) -> dict:
    return data[key][0]


@pytest.mark.parametrize(
    ("break_it", "reason"),
    [
        (lambda d: d["products"].append(dict(_first(d, "products"), slug="x")), "product_id appears twice"),
        (
            lambda d: d["products"].append(dict(_first(d, "products"), product_id="X-1")),
            "product slug appears twice",
        ),
        (lambda d: _first(d, "products").update(category="Toasters"), "unknown categories ['Toasters']"),
        (
            lambda d: d["categories"].append(dict(_first(d, "categories"), name="Toasters", slug="t")),
            "without products",
        ),
        (lambda d: d["categories"].append(dict(_first(d, "categories"))), "category name appears twice"),
        (lambda d: _first(d, "products").update(price=0), "greater than 0"),
        (lambda d: _first(d, "products").update(slug="Bad Slug/../x"), "should match pattern"),
        (lambda d: _first(d, "products").update(product_id="a/b"), "should match pattern"),
        (lambda d: _first(d, "products").update(model="left over"), "Extra inputs are not permitted"),
        (lambda d: _first(d, "categories").update(weight=-1), "greater than 0"),
        (lambda d: d.update(currency="usd"), "should match pattern"),
    ],
)
def test_a_broken_catalog_is_refused_with_its_reason(break_it, reason):
    # Given catalog.json with one mistake in it
    data = _catalog_file()
    break_it(data)
    # When it is read, Then it is refused, saying what is wrong
    with pytest.raises(ValidationError, match=re.escape(reason)):
        Catalog.model_validate(data)
