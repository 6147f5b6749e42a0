"""Deterministic store traffic for the local demo: shoppers of a laptop & electronics store, as API Gateway events.

Everything comes from one ``random.Random(seed)``: the same configuration gives byte-identical requests. The
simulation works in true (server) time; each device reports its own clock, so some run ahead or behind (the
pipeline's skew correction undoes that) and a few change their clock between recording and sending (clamped).

What the traffic contains (rates are shares of sessions, requests or events as noted):

* a catalog of ~90 products (laptops, monitors, keyboards, mice, headphones, docks, cables, webcams, storage,
  accessories) with brands and USD prices;
* visitors (``anonymous_id`` UUIDs); ~25% sign in (login or sign_up) and then carry their Cognito ``sub``; some
  of them use a second device with the same account; returning visitors come back after gaps > 30 min;
* traffic sources: direct, organic search (Google/Bing referrers), paid search (utm cpc), organic and paid social,
  e-mail newsletter, affiliates, referral sites; desktop/mobile/tablet user agents; a diurnal curve per visitor
  time zone;
* sessions: page views with page pings every 10 s while reading, item lists, search, product views, cart,
  checkout, payment, purchase (~2-4% of sessions), later refunds, login/sign-up;
* bots (~4% of sessions: Googlebot, Bingbot, AhrefsBot, HeadlessChrome; page views only) and internal traffic
  (the ``X-Clickstream-Internal: 1`` header or an office IP in :data:`INTERNAL_NETWORK`);
* tracker behaviour: batches of 1-25 events, ``sent_at`` at send time, identical retries (~1.5% of requests),
  a few events repeated inside one batch, a rare event id reused for a different event, malformed events inside
  valid requests (~0.7%), offline mobile devices flushing their queue hours later (a few beyond the 72 h lookback),
  and a few malformed requests (bad JSON, missing ``anonymous_id``, no identity, wrong content type) that the API
  rejects.

Signed-in shoppers post to ``/v1/events`` with their Cognito token's claims (the User Pool authorizer); signed-out
visitors and bots post to the guest route ``/v1/guest/events`` as their browser's Cognito identity-pool identity
(IAM authorization, SigV4), one identity per device, as Amplify Analytics does.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote_plus

from pydantic import BaseModel, ConfigDict, Field, model_validator

STORE_ORIGIN = "https://shop.example.com"
API_DOMAIN = "api.shop.example.com"
EVENTS_PATH = "/v1/events"
GUEST_EVENTS_PATH = "/v1/guest/events"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
APP_ID = "shop-web"
INTERNAL_NETWORK = "10.20.0.0/16"
INTERNAL_HEADER = "X-Clickstream-Internal"
DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the demo never depends on the wall clock
PING_INTERVAL_S = 10
LOOKBACK_HOURS = 72  # the pipeline's default lookback: flushes older than this are quarantined as too_late
DEFAULT_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_local"
DEFAULT_CLIENT_ID = "local-web-client"

# --------------------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------------------


class Product(BaseModel):
    """One product of the store, as ``catalog.json`` lists it (ids, names and slugs are the store's own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    category: str
    brand: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0, allow_inf_nan=False)
    slug: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=200)

    @property
    def url(self) -> str:
        return f"{STORE_ORIGIN}/p/{self.product_id}/{self.slug}"

    def item(self, quantity: int = 1) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "name": self.name,
            "category": self.category,
            "brand": self.brand,
            "price": self.price,
            "quantity": quantity,
        }


class Category(BaseModel):
    """A category: its name and URL slug (the store's), its products' id prefix and its share of the traffic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    slug: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=100)
    code: str = Field(pattern=r"^[A-Z]{2,8}$")
    weight: float = Field(gt=0, allow_inf_nan=False)


class Catalog(BaseModel):
    """``catalog.json``: the one catalog of the store (``web/store`` bundles this file) and of the generator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    categories: tuple[Category, ...] = Field(min_length=1)
    products: tuple[Product, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        for what, values in (
            ("category name", [c.name for c in self.categories]),
            ("category slug", [c.slug for c in self.categories]),
            ("product_id", [p.product_id for p in self.products]),
            ("product slug", [p.slug for p in self.products]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"catalog.json: a {what} appears twice")
        names = {c.name for c in self.categories}
        unknown = sorted({p.category for p in self.products} - names)
        if unknown:
            raise ValueError(f"catalog.json: products in unknown categories {unknown}")
        empty = sorted(names - {p.category for p in self.products})
        if empty:
            raise ValueError(f"catalog.json: categories without products {empty}")
        return self

    def category(self, name: str) -> Category:
        return next(c for c in self.categories if c.name == name)


def _load_catalog() -> Catalog:
    text = resources.files(__package__).joinpath("catalog.json").read_text(encoding="utf-8")
    return Catalog.model_validate_json(text)


_CATALOG = _load_catalog()
CURRENCY = _CATALOG.currency


def catalog() -> tuple[Product, ...]:
    """The store's products, in catalog.json's order: a fixed catalog, the same for every seed."""
    return _CATALOG.products


def _category_slug(category: str) -> str:
    return _CATALOG.category(category).slug


# --------------------------------------------------------------------------------------------------------------
# Devices, sources, bots
# --------------------------------------------------------------------------------------------------------------

_DESKTOP_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)
_MOBILE_UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.107 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; moto g power (2024)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
)
_TABLET_UAS = (
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
)
# (name, user agent, source IP prefix of its published ranges)
_BOTS = (
    (
        "Googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "66.249.66.",
    ),
    (
        "Googlebot-Smartphone",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "66.249.68.",
    ),
    ("Bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "157.55.39."),
    ("AhrefsBot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "54.36.148."),
    (
        "HeadlessChrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
        "34.141.22.",
    ),
)
_SCREENS = {
    "desktop": ((1920, 1080), (2560, 1440), (1536, 864), (1440, 900), (3840, 2160)),
    "mobile": ((390, 844), (393, 852), (412, 915), (360, 800), (430, 932)),
    "tablet": ((820, 1180), (1024, 1366), (800, 1280)),
}
# (UTC offset hours, IANA name, locale, weight)
_ZONES = (
    (-5, "America/New_York", "en-US", 0.34),
    (-6, "America/Chicago", "en-US", 0.2),
    (-7, "America/Denver", "en-US", 0.08),
    (-8, "America/Los_Angeles", "en-US", 0.22),
    (0, "Europe/London", "en-GB", 0.09),
    (1, "Europe/Berlin", "de-DE", 0.07),
)
# Relative traffic by local hour 0..23: quiet nights, a lunch bump, an evening peak.
DIURNAL = (
    0.6,
    0.4,
    0.3,
    0.25,
    0.25,
    0.35,
    0.6,
    1.0,
    1.5,
    1.9,
    2.2,
    2.4,
    2.7,
    2.6,
    2.4,
    2.3,
    2.3,
    2.4,
    2.6,
    3.0,
    3.2,
    3.0,
    2.2,
    1.2,
)

# Traffic sources of a session: (name, weight).
_SOURCES = (
    ("direct", 0.28),
    ("organic_google", 0.22),
    ("organic_bing", 0.05),
    ("paid_search", 0.12),
    ("organic_social", 0.06),
    ("paid_social", 0.05),
    ("email", 0.09),
    ("affiliate", 0.05),
    ("referral", 0.08),
)
_SEARCH_TERMS = (
    "macbook air",
    "gaming laptop",
    "thinkpad",
    "usb c dock",
    "4k monitor",
    "noise cancelling headphones",
    "mechanical keyboard",
    "wireless mouse",
    "thunderbolt cable",
    "portable ssd",
    "webcam",
    "laptop stand",
    "65w charger",
    "oled laptop",
)
_CAMPAIGNS = {
    "paid_search": (("google", "cpc"), ("bing", "cpc")),
    "paid_social": (("facebook", "paid_social"), ("instagram", "paid_social"), ("tiktok", "paid_social")),
    "email": (("newsletter", "email"),),
    "affiliate": (("wirecutter", "affiliate"), ("techradar", "affiliate"), ("rtings", "affiliate")),
}
_CAMPAIGN_NAMES = ("spring-laptop-sale", "back-to-work", "monitor-week", "audio-deals", "brand-always-on")
_SOCIAL_REFERRERS = (
    "https://www.facebook.com/",
    "https://l.instagram.com/",
    "https://www.reddit.com/r/laptops/",
    "https://t.co/Xk3pQ9aZ",
    "https://www.youtube.com/",
)
_REFERRAL_SITES = (
    "https://www.tomshardware.com/best-picks/best-ultrabooks-premium-laptops",
    "https://www.notebookcheck.net/",
    "https://forums.macrumors.com/threads/which-dock.2431122/",
    "https://www.theverge.com/tech",
    "https://news.ycombinator.com/",
)


@dataclass(frozen=True)
class Device:
    kind: str  # desktop | mobile | tablet | bot
    user_agent: str
    screen: tuple[int, int]
    ip: str
    skew_s: float = 0.0  # device clock minus true time


# --------------------------------------------------------------------------------------------------------------
# Configuration and output
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficConfig:
    events: int = (
        60_000  # distinct events the shoppers produce (the generator stops at the first session past it)
    )
    days: float = 7.0
    seed: int = 0
    start: datetime = DEFAULT_START
    stage: str = "local"
    issuer: str = DEFAULT_ISSUER
    client_id: str = DEFAULT_CLIENT_ID
    bot_session_share: float = 0.04
    internal_session_share: float = 0.01
    signin_share: float = 0.25
    second_device_share: float = 0.3  # of signed-in people
    retry_request_share: float = 0.015
    in_request_duplicate_share: float = 0.003
    malformed_event_share: float = 0.007
    malformed_request_share: float = 0.003
    conflict_event_share: float = 0.0005
    offline_mobile_session_share: float = 0.05
    too_late_session_share: float = 0.004
    clock_jump_session_share: float = 0.006

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass(frozen=True)
class SimRequest:
    """One HTTP request as API Gateway hands it to the ingest function."""

    received_at: datetime
    event: dict[str, Any]  # API Gateway REST proxy event
    kind: str  # "tracker" | "retry" | "malformed"
    n_events: int  # events inside the body (as sent; 0 when the body is not JSON)
    expected_status: int  # what the API should answer


@dataclass
class SessionTruth:
    """What the simulated visitor did in one session (the generator's intentions, for tests only)."""

    anonymous_id: str
    user_id: str | None
    start: datetime
    end: datetime
    device_kind: str
    source: str
    is_bot: bool = False
    is_internal: bool = False
    viewed_item: bool = False
    added_to_cart: bool = False
    began_checkout: bool = False
    purchased: bool = False
    n_events: int = 0
    delivery_delay_s: float = 0.0  # > 0 when the device was offline and flushed its queue later


@dataclass
class Traffic:
    requests: list[SimRequest]
    generated_events: int  # distinct events the simulated shoppers produced (retry copies excluded)
    sessions: list[SessionTruth]
    start: datetime
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)  # what was injected, by kind

    @property
    def last_received_at(self) -> datetime:
        return self.requests[-1].received_at if self.requests else self.start


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def iso_ms(ts: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as browsers' ``Date.toISOString()`` writes it."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _money(x: float) -> float:
    return round(x + 1e-9, 2)


@dataclass
class _Event:
    true_ts: datetime
    body: dict[str, Any]
    device_ts: datetime | None = None  # the device clock when recorded (set when batching)


@dataclass
class _Batch:
    send_true: datetime
    events: list[_Event]
    device_send: datetime
    claims: dict[str, str] | None  # the signed-in user's token claims, or None on the guest route
    guest_identity: str | None  # the device's identity-pool identity when signed out
    device: Device
    anonymous_id: str
    context: dict[str, Any]
    internal_header: bool


# --------------------------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------------------------


_STORE_TITLE = "Example Electronics — Laptops, Monitors & Accessories"


@dataclass
class _Visit:
    """One shopper session while it is simulated: its clock, its events, its cart, the pages it has seen.

    ``page`` records a page view and the pings of the time spent on it, ``action`` an event on that page, ``advance``
    moves on to the next page; the other methods are the parts of a session, in the order a visit goes through them.
    Every random draw comes from the simulator's one generator, in a fixed order.
    """

    sim: _Simulator
    truth: SessionTruth
    t: datetime
    prev_url: str
    login_at_page: int | None
    new_account: bool
    events: list[_Event] = field(default_factory=list)
    cart: list[dict[str, Any]] = field(default_factory=list)
    viewed: list[Product] = field(default_factory=list)
    dwell: float = 5.0
    n_pages: int = 0

    def page(self, url: str, title: str, mean_dwell: float) -> None:
        r = self.sim.rng
        pv = {
            "event_type": "page_view",
            "page": {"url": url, "referrer": self.prev_url or "", "title": title},
        }
        self.sim.emit(self.events, self.t, pv)
        dwell = min(300.0, max(2.0, r.expovariate(1 / mean_dwell)))
        for k in range(1, int(dwell // PING_INTERVAL_S) + 1):
            ping = {
                "event_type": "page_ping",
                "page": {"url": url, "referrer": self.prev_url or "", "title": title},
                "properties": {"heartbeat_s": PING_INTERVAL_S, "scroll_depth_pct": min(100, 15 * k)},
            }
            self.sim.emit(self.events, self.t + timedelta(seconds=PING_INTERVAL_S * k), ping)
        self.dwell = dwell
        self.prev_url = url

    def action(self, offset_s: float, body: dict[str, Any]) -> None:
        body.setdefault(
            "page",
            {"url": self.prev_url, "title": self.events[-1].body["page"]["title"] if self.events else ""},
        )
        self.sim.emit(self.events, self.t + timedelta(seconds=min(offset_s, self.dwell)), body)

    def advance(self) -> None:
        self.t = self.t + timedelta(seconds=self.dwell + self.sim.rng.uniform(0.5, 4))

    def maybe_login(self) -> None:
        self.n_pages += 1
        if self.login_at_page is not None and self.n_pages == self.login_at_page:
            url = f"{STORE_ORIGIN}/account/{'signup' if self.new_account else 'login'}"
            self.page(url, "Sign in | Example Electronics", 20)
            self.action(
                self.sim.rng.uniform(5, 18),
                {
                    "event_type": "sign_up" if self.new_account else "login",
                    "properties": {"method": "cognito"},
                },
            )
            self.sim.login_ts = self.events[-1].true_ts
            self.advance()

    def view_item(self, product: Product, mean_dwell: float, *, url: str | None = None) -> None:
        """A product page (at ``url``: the landing URL with its campaign parameters) and its view_item event."""
        self.page(url or product.url, f"{product.name} | Example Electronics", mean_dwell)
        self.action(
            self.sim.rng.uniform(0.2, 1.5),
            {
                "event_type": "view_item",
                "items": [product.item()],
                "value": product.price,
                "currency": CURRENCY,
            },
        )
        self.viewed.append(product)
        self.truth.viewed_item = True

    def land(self, landing_url: str, bounced: bool) -> None:
        """The landing page: a product, a category, or the home page."""
        sim, r = self.sim, self.sim.rng
        if "/p/" in landing_url:
            product = next(p for p in sim.products if f"/p/{p.product_id}/" in landing_url)
            self.view_item(product, 45, url=landing_url)
        elif "/c/" in landing_url:
            cat = next(c.name for c in _CATALOG.categories if f"/c/{c.slug}" in landing_url)
            self.page(landing_url, f"{cat} | Example Electronics", 6 if bounced else 25)
            self.action(r.uniform(0.2, 1.5), sim.item_list(cat))
        else:
            self.page(landing_url, _STORE_TITLE, 6 if bounced else 20)
        self.advance()
        self.maybe_login()

    def browse(self) -> None:
        """Lists and searches before the product pages."""
        sim, r = self.sim, self.sim.rng
        for _ in range(r.choice((0, 1, 1, 2, 3))):
            if r.random() < 0.35:
                term = r.choice(_SEARCH_TERMS)
                url = f"{STORE_ORIGIN}/search?q={quote_plus(term)}"
                self.page(url, f"Search: {term} | Example Electronics", 20)
                self.action(
                    r.uniform(0.1, 0.8), {"event_type": "search", "properties": {"search_term": term}}
                )
                self.action(
                    r.uniform(0.9, 2.0),
                    sim.item_list(sim.pick(sim.category_weights), list_id="search_results"),
                )
            else:
                cat = sim.pick(sim.category_weights)
                self.page(f"{STORE_ORIGIN}/c/{_category_slug(cat)}", f"{cat} | Example Electronics", 25)
                self.action(r.uniform(0.2, 1.5), sim.item_list(cat))
            self.advance()
            self.maybe_login()

    def view_items(self) -> None:
        """One to five product pages."""
        sim = self.sim
        for _ in range(sim.pick([(1, 0.45), (2, 0.3), (3, 0.15), (5, 0.1)])):
            self.view_item(sim.product(), 45)
            self.advance()
            self.maybe_login()

    def fill_cart(self, checks_out: bool) -> None:
        """Some viewed products into the cart, the cart page, maybe one taken out again."""
        sim, r, cart = self.sim, self.sim.rng, self.cart
        for product in r.sample(self.viewed, k=min(len(self.viewed), sim.pick([(1, 0.75), (2, 0.25)]))):
            qty = 1 if r.random() < 0.9 or product.price > 300 else 2
            self.page(product.url, f"{product.name} | Example Electronics", 30)
            item = product.item(qty)
            self.action(
                r.uniform(3, 25),
                {
                    "event_type": "add_to_cart",
                    "items": [item],
                    "value": _money(product.price * qty),
                    "currency": CURRENCY,
                },
            )
            cart.append(item)
            self.truth.added_to_cart = True
            self.advance()
        self.page(f"{STORE_ORIGIN}/cart", "Your cart | Example Electronics", 25)
        self.action(0.5, _cart_event("view_cart", cart))
        if (len(cart) > 1 and r.random() < 0.3) or (not checks_out and r.random() < 0.2):
            removed = cart.pop()
            self.action(
                r.uniform(3, 15),
                {
                    "event_type": "remove_from_cart",
                    "items": [removed],
                    "value": _money(removed["price"] * removed["quantity"]),
                    "currency": CURRENCY,
                },
            )
        self.advance()
        self.maybe_login()

    def check_out(self, buys: bool) -> None:
        """Checkout and payment pages, and the purchase when the shopper buys."""
        r, cart = self.sim.rng, self.cart
        self.page(f"{STORE_ORIGIN}/checkout", "Checkout | Example Electronics", 60)
        self.action(0.4, _cart_event("begin_checkout", cart))
        self.truth.began_checkout = True
        self.advance()
        self.page(f"{STORE_ORIGIN}/checkout/payment", "Payment | Example Electronics", 50)
        self.action(
            r.uniform(15, 45),
            _cart_event(
                "add_payment_info",
                cart,
                properties={"payment_type": r.choice(("card", "paypal", "apple_pay"))},
            ),
        )
        self.advance()
        if buys:
            tx = f"T-{r.randrange(10**9):09d}"
            self.page(
                f"{STORE_ORIGIN}/checkout/confirmation?order={tx}", "Thank you | Example Electronics", 30
            )
            shipping = 0.0 if _cart_value(cart) >= 50 else 7.99
            value = _money(_cart_value(cart) + shipping)
            body = {
                "event_type": "purchase",
                "transaction_id": tx,
                "value": value,
                "currency": CURRENCY,
                "items": [dict(i) for i in cart],
                "properties": {"shipping": shipping, "tax": _money(value * 0.0725)},
            }
            self.action(0.6, body)
            self.truth.purchased = True
            self.advance()


class _Simulator:
    def __init__(self, config: TrafficConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.products = catalog()
        self.by_category: dict[str, list[Product]] = {}
        for p in self.products:
            self.by_category.setdefault(p.category, []).append(p)
        self.category_weights = [(c.name, c.weight) for c in _CATALOG.categories]
        self.batches: list[_Batch] = []
        self.sessions: list[SessionTruth] = []
        self.n_events = 0
        self.identity_pool_id = f"{REGION}:{self.uuid()}"
        self.guest_identities: dict[str, str] = {}  # anonymous_id -> the browser's identity-pool identity
        self.counts: dict[str, int] = {}
        self.orders: list[tuple[_Event, Device, str, str | None, str | None, dict[str, Any]]] = []

    # -- randomness ------------------------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def pick(self, weighted: Sequence[tuple[Any, float]]) -> Any:
        items = [w[0] for w in weighted]
        weights = [w[1] for w in weighted]
        return self.rng.choices(items, weights=weights, k=1)[0]

    def bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def public_ip(self, kind: str) -> str:
        r = self.rng
        if kind == "mobile" and r.random() < 0.35:
            return f"2600:1700:{r.randrange(0x10000):x}:{r.randrange(0x10000):x}::{r.randrange(1, 0xFFFF):x}"
        while True:
            first = r.choice((24, 47, 67, 71, 73, 76, 98, 99, 104, 108, 172, 174, 184, 203, 209))
            second = r.randrange(256)
            if first == 172 and 16 <= second <= 31:
                continue
            return f"{first}.{second}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def device(self, kind: str) -> Device:
        r = self.rng
        pool = {"desktop": _DESKTOP_UAS, "mobile": _MOBILE_UAS, "tablet": _TABLET_UAS}[kind]
        roll = r.random()
        if roll < 0.86:
            skew = r.uniform(-3, 3)
        elif roll < 0.98:
            skew = r.choice((-1, 1)) * r.uniform(30, 20 * 60)  # minutes ahead or behind
        else:
            skew = r.choice((-1, 1)) * r.uniform(3600, 6 * 3600)  # a clock hours off
        return Device(kind, r.choice(pool), r.choice(_SCREENS[kind]), self.public_ip(kind), skew)

    def session_start(self, offset_h: int) -> datetime:
        """A start time in [start, end - 1 h): a day, then a local hour from the diurnal curve."""
        cfg, r = self.cfg, self.rng
        n_days = max(1, int(-(-cfg.days // 1)))
        for _ in range(100):
            day = r.randrange(n_days)
            hour = r.choices(range(24), weights=DIURNAL, k=1)[0]
            local = cfg.start + timedelta(days=day, hours=hour, seconds=r.uniform(0, 3600))
            ts = local - timedelta(hours=offset_h)
            if cfg.start <= ts < cfg.end - timedelta(hours=1):
                return ts
        return cfg.start + timedelta(seconds=r.uniform(0, max(60.0, (cfg.days * 24 - 1) * 3600)))

    # -- people ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        cfg = self.cfg
        n_internal_people = 0
        while self.n_events < cfg.events:
            roll = self.rng.random()
            n_bots = self.counts.get("bot_sessions", 0)
            if n_bots < cfg.bot_session_share * (len(self.sessions) + 1):
                self.bot_session()
            elif roll < cfg.internal_session_share or n_internal_people == 0:
                n_internal_people += 1
                self.person(internal=True)
            elif roll < cfg.internal_session_share + cfg.too_late_session_share:
                self.stale_flush_session()
            else:
                self.person()
        # The smallest runs still show every kind of trouble at least once.
        if not any(s.is_bot for s in self.sessions):
            self.bot_session()
        if not self.counts.get("too_late_sessions"):
            self.stale_flush_session()
        self.refunds()

    def person(self, *, internal: bool = False) -> None:
        cfg, r = self.cfg, self.rng
        offset_h, tz_name, locale, _ = self.pick([(z, z[3]) for z in _ZONES])
        kind = "desktop" if internal else self.pick([("desktop", 0.45), ("mobile", 0.45), ("tablet", 0.1)])
        primary = self.device(kind)
        if internal:
            via_ip = r.random() < 0.5
            if via_ip:
                primary = Device(
                    kind,
                    primary.user_agent,
                    primary.screen,
                    f"10.20.{r.randrange(256)}.{r.randrange(1, 255)}",
                )
            self.bump("internal_people")
        signs_in = (not internal) and r.random() < cfg.signin_share
        n_sessions = self.pick([(1, 0.58), (2, 0.2), (3, 0.1), (4, 0.06), (5, 0.04), (7, 0.02)])
        sub = username = None
        devices = [(self.uuid(), primary)]
        if signs_in:
            n_sessions += 1
            sub = self.uuid()
            username = f"shopper{r.randrange(10**6):06d}"
            if r.random() < cfg.second_device_share:
                devices.append((self.uuid(), self.device("mobile" if kind != "mobile" else "desktop")))
                n_sessions += 2
        starts = sorted(self.session_start(offset_h) for _ in range(n_sessions))
        signin_index = r.randrange(n_sessions) if signs_in else n_sessions
        signed_in = {anon: False for anon, _ in devices}
        prev_end: datetime | None = None
        for i, start in enumerate(starts):
            if prev_end is not None and start < prev_end + timedelta(minutes=31):
                start = prev_end + timedelta(minutes=r.uniform(31, 240))
            if start >= cfg.end - timedelta(minutes=30):
                break
            anon, device = devices[0] if len(devices) == 1 or r.random() < 0.6 else devices[1]
            logs_in = signs_in and not signed_in[anon] and i >= signin_index
            truth = self.shopper_session(
                anon,
                device,
                start,
                tz_name=tz_name,
                locale=locale,
                sub=sub,
                username=username,
                signed_in=signed_in[anon],
                logs_in=logs_in,
                new_account=logs_in and not any(signed_in.values()) and r.random() < 0.35,
                internal=internal,
                internal_header=internal and not device.ip.startswith("10.20."),
            )
            signed_in[anon] = signed_in[anon] or logs_in
            prev_end = truth.end

    # -- one shopper session ---------------------------------------------------------------------------------
    def shopper_session(
        self,
        anon: str,
        device: Device,
        start: datetime,
        *,
        tz_name: str,
        locale: str,
        sub: str | None,
        username: str | None,
        signed_in: bool,
        logs_in: bool,
        new_account: bool,
        internal: bool,
        internal_header: bool,
        force_source: str | None = None,
    ) -> SessionTruth:
        r = self.rng
        source = force_source or self.pick(_SOURCES)
        truth = SessionTruth(anon, sub if (signed_in or logs_in) else None, start, start, device.kind, source)
        truth.is_internal = internal
        boost = 1.3 if sub else 1.0  # people with an account buy more readily
        views_item = r.random() < 0.6
        carts = views_item and r.random() < 0.15 * boost
        landing_url, referrer, utm = self.landing(source, product_page_ok=views_item)
        bounced = not views_item and r.random() < 0.8  # a glance at the landing page, then gone
        checks_out = carts and r.random() < 0.5
        buys = checks_out and r.random() < 0.6

        visit = _Visit(
            self,
            truth,
            t=start,
            prev_url=referrer,
            login_at_page=r.randrange(1, 4) if logs_in else None,
            new_account=new_account,
        )
        self.login_ts = None if not signed_in else start - timedelta(days=1)
        visit.land(landing_url, bounced)
        if not bounced:
            visit.browse()
        if views_item:
            visit.view_items()
        if carts:
            visit.fill_cart(checks_out)
        if checks_out and visit.cart:
            visit.check_out(buys)
        elif r.random() < 0.5 and not bounced:
            visit.page(f"{STORE_ORIGIN}/", _STORE_TITLE, 15)
            visit.advance()

        if visit.login_at_page is not None and self.login_ts is None:
            visit.n_pages = visit.login_at_page - 1
            visit.maybe_login()
        # Identity: each batch carries the token of whoever is signed in when it is sent.
        events = visit.events
        truth.end = events[-1].true_ts
        truth.n_events = len(events)
        ctx = {
            "page": {"url": landing_url},
            "locale": locale,
            "timezone": tz_name,
            "screen": {"width": device.screen[0], "height": device.screen[1]},
            "consent": {"analytics": True, "marketing": r.random() < 0.6},
            "library": {"name": "clickstream-web", "version": "1.2.0"},
        }
        if utm:
            ctx["utm"] = utm
        self.deliver(
            events,
            device,
            anon,
            ctx,
            sub=sub,
            username=username,
            internal_header=internal_header,
            truth=truth,
        )
        for ev in events:
            if ev.body["event_type"] == "purchase":
                self.orders.append((ev, device, anon, sub if truth.user_id else None, username, ctx))
        self.sessions.append(truth)
        return truth

    def emit(self, events: list[_Event], ts: datetime, body: dict[str, Any]) -> None:
        body = {"event_id": self.uuid(), **body}
        events.append(_Event(ts, body))
        self.n_events += 1

    def product(self) -> Product:
        return self.rng.choice(self.by_category[self.pick(self.category_weights)])

    def item_list(self, category: str, list_id: str | None = None) -> dict[str, Any]:
        products = self.by_category[category]
        shown = self.rng.sample(products, k=min(len(products), 6))
        return {
            "event_type": "view_item_list",
            "properties": {"item_list_id": list_id or _category_slug(category), "item_list_name": category},
            "items": [p.item() for p in shown],
        }

    def landing(self, source: str, *, product_page_ok: bool) -> tuple[str, str, dict[str, str] | None]:
        """Landing URL, referrer and UTM parameters of a session from ``source``."""
        r = self.rng
        roll = r.random() if product_page_ok else r.random() * 0.65
        if roll < 0.35:
            url = f"{STORE_ORIGIN}/"
        elif roll < 0.65:
            url = f"{STORE_ORIGIN}/c/{_category_slug(self.pick(self.category_weights))}"
        else:
            url = self.product().url
        referrer = ""
        utm: dict[str, str] | None = None
        if source == "organic_google":
            referrer = "https://www.google.com/"
        elif source == "organic_bing":
            referrer = "https://www.bing.com/"
        elif source == "organic_social":
            referrer = r.choice(_SOCIAL_REFERRERS)
        elif source == "referral":
            referrer = r.choice(_REFERRAL_SITES)
        elif source in _CAMPAIGNS:
            src, medium = r.choice(_CAMPAIGNS[source])
            campaign = (
                r.choice(_CAMPAIGN_NAMES) if source != "email" else f"weekly-deals-{r.randrange(9, 13):02d}"
            )
            utm = {"source": src, "medium": medium, "campaign": campaign}
            if source == "paid_search":
                utm["term"] = r.choice(_SEARCH_TERMS)
                referrer = "https://www.google.com/" if src == "google" else "https://www.bing.com/"
            elif source == "paid_social":
                utm["content"] = r.choice(("carousel", "video-15s", "static"))
                referrer = "https://m.facebook.com/" if src == "facebook" else ""
            query = "&".join(f"utm_{k}={quote_plus(v)}" for k, v in utm.items())
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url, referrer, utm

    # -- delivery: batches, clocks, offline queues -----------------------------------------------------------
    def deliver(
        self,
        events: list[_Event],
        device: Device,
        anon: str,
        ctx: dict[str, Any],
        *,
        sub: str | None,
        username: str | None,
        internal_header: bool,
        truth: SessionTruth,
        delay_s: float | None = None,
    ) -> None:
        cfg, r = self.cfg, self.rng
        skew = device.skew_s
        clock_jump = r.random() < cfg.clock_jump_session_share and device.kind != "bot"
        if clock_jump:
            # The device clock ran ahead while recording and was corrected (NTP) before the queue was sent.
            self.bump("clock_jump_sessions")
            record_skew = skew + r.uniform(180, 1200)
        else:
            record_skew = skew
        for ev in events:
            ev.device_ts = ev.true_ts + timedelta(seconds=record_skew)
            ev.body["occurred_at"] = iso_ms(ev.device_ts)
        if delay_s is None and device.kind == "mobile" and r.random() < cfg.offline_mobile_session_share:
            room = (cfg.end - events[-1].true_ts).total_seconds() - 600
            if room > 3600:
                delay_s = r.uniform(3600, min(30 * 3600, room))
                self.bump("offline_sessions")
        truth.delivery_delay_s = delay_s or 0.0
        i = 0
        flush_at = events[-1].true_ts + timedelta(seconds=delay_s) if delay_s else None
        while i < len(events):
            size = self.pick(
                [(1, 0.1), (2, 0.08), (3, 0.08), (5, 0.12), (8, 0.14), (12, 0.18), (18, 0.16), (25, 0.14)]
            )
            chunk = events[i : i + size]
            i += size
            if flush_at is not None:
                send_true = flush_at
                flush_at = flush_at + timedelta(seconds=r.uniform(0.3, 2.0))
            else:
                send_true = chunk[-1].true_ts + timedelta(seconds=r.uniform(0.1, 3.0))
            logged_in = sub is not None and self.login_ts is not None and send_true >= self.login_ts
            claims = self.user_claims(sub, username, send_true) if logged_in and sub and username else None
            self.batches.append(
                _Batch(
                    send_true=send_true,
                    events=chunk,
                    device_send=send_true + timedelta(seconds=skew),
                    claims=claims,
                    guest_identity=None if claims else self.guest_identity(anon),
                    device=device,
                    anonymous_id=anon,
                    context=ctx,
                    internal_header=internal_header,
                )
            )

    def user_claims(self, sub: str, username: str, at: datetime) -> dict[str, str]:
        iat = int(at.timestamp()) - self.rng.randrange(0, 3000)
        return {
            "sub": sub,
            "cognito:username": username,
            "token_use": "id",
            "aud": self.cfg.client_id,
            "iss": self.cfg.issuer,
            "email_verified": "true",
            "auth_time": str(iat),
            "iat": str(iat),
            "exp": str(iat + 3600),
        }

    def guest_identity(self, anonymous_id: str) -> str:
        """The identity-pool identity a signed-out browser gets once and keeps (like its anonymous_id)."""
        identity = self.guest_identities.get(anonymous_id)
        if identity is None:
            identity = self.guest_identities[anonymous_id] = f"{REGION}:{self.uuid()}"
        return identity

    # -- special sessions ------------------------------------------------------------------------------------
    def bot_session(self) -> None:
        r = self.rng
        _name, ua, prefix = r.choice(_BOTS)
        device = Device(
            "bot", ua, (1920, 1080) if "Mobile" not in ua else (412, 732), f"{prefix}{r.randrange(1, 255)}"
        )
        anon = self.uuid()
        start = self.session_start(0)
        truth = SessionTruth(anon, None, start, start, "bot", "direct", is_bot=True)
        events: list[_Event] = []
        t = start
        prev = ""
        for _ in range(r.randrange(3, 25)):
            roll = r.random()
            if roll < 0.5:
                url = self.product().url
            elif roll < 0.8:
                url = f"{STORE_ORIGIN}/c/{_category_slug(self.pick(self.category_weights))}"
            else:
                url = f"{STORE_ORIGIN}/"
            self.emit(
                events,
                t,
                {
                    "event_type": "page_view",
                    "page": {"url": url, "referrer": prev, "title": "Example Electronics"},
                },
            )
            prev = url
            t += timedelta(seconds=r.uniform(0.5, 8))
        truth.end = events[-1].true_ts
        truth.n_events = len(events)
        ctx = {
            "page": {"url": events[0].body["page"]["url"]},
            "locale": "en-US",
            "timezone": "UTC",
            "screen": {"width": device.screen[0], "height": device.screen[1]},
        }
        self.login_ts = None
        self.deliver(events, device, anon, ctx, sub=None, username=None, internal_header=False, truth=truth)
        self.sessions.append(truth)
        self.bump("bot_sessions")

    def stale_flush_session(self) -> None:
        """A phone that was offline for days flushes its queue: every event is past the lookback (too_late)."""
        r = self.rng
        offset_h, tz_name, locale, _ = self.pick([(z, z[3]) for z in _ZONES])
        flush = self.session_start(offset_h)
        delay = r.uniform((LOOKBACK_HOURS + 2) * 3600, (LOOKBACK_HOURS + 48) * 3600)
        anon = self.uuid()
        device = self.device("mobile")
        self.login_ts = None
        # Simulate the session at its true (old) time, then deliver at `flush`.
        truth = self.shopper_session_at(anon, device, flush - timedelta(seconds=delay), tz_name, locale)
        delay_s = (flush - truth.end).total_seconds()
        self.deliver(
            self._pending,
            device,
            anon,
            self._pending_ctx,
            sub=None,
            username=None,
            internal_header=False,
            truth=truth,
            delay_s=delay_s,
        )
        self.sessions.append(truth)
        self.bump("too_late_sessions")
        self.bump("too_late_events", len(self._pending))

    def shopper_session_at(
        self, anon: str, device: Device, start: datetime, tz_name: str, locale: str
    ) -> SessionTruth:
        """A short browsing session whose events are kept for a custom delivery (no batches made yet)."""
        r = self.rng
        events: list[_Event] = []
        t = start
        prev = ""
        for _ in range(r.randrange(2, 6)):
            product = self.product()
            self.emit(
                events,
                t,
                {
                    "event_type": "page_view",
                    "page": {
                        "url": product.url,
                        "referrer": prev,
                        "title": f"{product.name} | Example Electronics",
                    },
                },
            )
            self.emit(
                events,
                t + timedelta(seconds=1),
                {
                    "event_type": "view_item",
                    "page": {"url": product.url, "title": f"{product.name} | Example Electronics"},
                    "items": [product.item()],
                    "value": product.price,
                    "currency": CURRENCY,
                },
            )
            prev = product.url
            t += timedelta(seconds=r.uniform(20, 90))
        truth = SessionTruth(
            anon,
            None,
            start,
            events[-1].true_ts,
            device.kind,
            "direct",
            viewed_item=True,
            n_events=len(events),
        )
        self._pending = events
        self._pending_ctx = {
            "page": {"url": events[0].body["page"]["url"]},
            "locale": locale,
            "timezone": tz_name,
            "screen": {"width": device.screen[0], "height": device.screen[1]},
        }
        return truth

    def refunds(self) -> None:
        """~6% of orders are refunded one to four days later, from the same device (its own short visit)."""
        r, cfg = self.rng, self.cfg
        latest = cfg.end - timedelta(days=1, minutes=10)
        eligible = [order for order in self.orders if order[0].true_ts < latest]
        # At least one refund whenever some order leaves room for it, so small runs show refunds too.
        chosen = [order for order in eligible if r.random() < 0.06] or eligible[:1]
        for purchase, device, anon, sub, username, ctx in chosen:
            room_days = (cfg.end - timedelta(minutes=10) - purchase.true_ts).total_seconds() / 86400
            at = purchase.true_ts + timedelta(days=r.uniform(1, min(4.0, room_days)))
            body = purchase.body
            events: list[_Event] = []
            url = f"{STORE_ORIGIN}/account/orders/{body['transaction_id']}"
            self.emit(
                events,
                at,
                {
                    "event_type": "page_view",
                    "page": {"url": url, "referrer": "", "title": "Your order | Example Electronics"},
                },
            )
            self.emit(
                events,
                at + timedelta(seconds=r.uniform(5, 40)),
                {
                    "event_type": "refund",
                    "page": {"url": url, "title": "Your order | Example Electronics"},
                    "transaction_id": body["transaction_id"],
                    "value": body["value"],
                    "currency": body["currency"],
                    "items": body["items"],
                },
            )
            truth = SessionTruth(anon, sub, at, events[-1].true_ts, device.kind, "direct", n_events=2)
            self.login_ts = at - timedelta(days=1) if sub else None
            ctx = {k: v for k, v in ctx.items() if k != "utm"}
            self.deliver(
                events,
                device,
                anon,
                ctx,
                sub=sub,
                username=username,
                internal_header=False,
                truth=truth,
                delay_s=0.0,
            )
            self.sessions.append(truth)
            self.bump("refunds")

    # -- requests --------------------------------------------------------------------------------------------
    def requests(self) -> list[SimRequest]:
        cfg, r = self.cfg, self.rng
        batches = sorted(self.batches, key=lambda b: b.send_true)
        all_events = [ev for b in batches for ev in b.events]
        self.corrupt_events(all_events)
        self.reuse_event_ids(batches)
        out: list[SimRequest] = []
        for b in batches:
            received = b.send_true + timedelta(seconds=r.uniform(0.03, 0.6))
            body_events = [ev.body for ev in b.events]
            if r.random() < cfg.in_request_duplicate_share and 0 < len(body_events) < 25:
                body_events = [*body_events, body_events[-1]]  # the tracker queued one event twice
                self.bump("in_request_duplicates")
            envelope = {
                "app_id": APP_ID,
                "sent_at": iso_ms(b.device_send),
                "anonymous_id": b.anonymous_id,
                "context": b.context,
                "events": body_events,
            }
            body = json.dumps(envelope, separators=(",", ":"))
            content_type = "text/plain;charset=UTF-8" if r.random() < 0.1 else "application/json"
            headers = self.headers(b.device, content_type, b.internal_header)
            event = self.api_event(received, body, headers, b.device.ip, b.claims, b.guest_identity)
            out.append(SimRequest(received, event, "tracker", len(body_events), 202))
        n_tracker = len(out)
        # Identical retries: the first copy arrived, the tracker timed out and sent the same request again.
        n_retries = max(2, round(cfg.retry_request_share * n_tracker))
        for original in r.sample(out[:n_tracker], k=min(n_retries, n_tracker)):
            received = original.received_at + timedelta(seconds=r.uniform(5, 90))
            event = json.loads(json.dumps(original.event))
            self.stamp(event, received)
            out.append(SimRequest(received, event, "retry", original.n_events, 202))
        self.bump("retried_requests", min(n_retries, n_tracker))
        self.bump("retried_events", sum(req.n_events for req in out[n_tracker:]))
        out.extend(self.malformed_requests(out[:n_tracker]))
        out.sort(key=lambda q: (q.received_at, q.event["requestContext"]["requestId"]))
        return out

    def corrupt_events(self, events: list[_Event]) -> None:
        """Malformed events inside otherwise valid requests: each breaks one rule the validator checks."""
        cfg, r = self.cfg, self.rng
        n = max(4, round(cfg.malformed_event_share * len(events)))
        purchases = [ev for ev in events if ev.body["event_type"] == "purchase"]
        priced = [
            ev
            for ev in events
            if ev.body.get("items") and ev.body["event_type"] in ("view_item", "add_to_cart")
        ]
        plain = [ev for ev in events if ev.body["event_type"] in ("page_view", "page_ping")]
        for pool in (purchases, priced, plain):
            r.shuffle(pool)
        # A purchase without its transaction id is rare (a few per cent of orders); the rest share the remainder.
        n_purchase = min(len(purchases), max(1, round(0.04 * len(purchases))))
        kinds = ["purchase_without_transaction_id"] * n_purchase
        others = ("missing_event_id", "bad_occurred_at", "negative_price", "unknown_event_type")
        kinds += [others[k % len(others)] for k in range(max(0, n - n_purchase))]
        for kind in kinds:
            pool = (
                purchases
                if kind == "purchase_without_transaction_id"
                else priced
                if kind == "negative_price"
                else plain
            )
            if not pool:
                continue
            ev = pool.pop()
            body = ev.body
            if kind == "missing_event_id":
                del body["event_id"]
            elif kind == "bad_occurred_at":
                body["occurred_at"] = r.choice(("yesterday", "2026-13-45T25:61:00Z", ""))
            elif kind == "negative_price":
                body["items"] = [dict(body["items"][0], price=-abs(body["items"][0]["price"]))]
            elif kind == "unknown_event_type":
                body["event_type"] = r.choice(("pageview", "PageView", "click!"))
            else:
                del body["transaction_id"]
            self.bump("malformed_events")
            self.bump(f"malformed_{kind}")

    def reuse_event_ids(self, batches: list[_Batch]) -> None:
        """A buggy tracker build reuses an event id for a different event: the later copy is a conflict."""
        r = self.rng
        pings = [
            (bi, ev)
            for bi, b in enumerate(batches)
            for ev in b.events
            if ev.body["event_type"] == "page_ping" and "event_id" in ev.body
        ]
        n = max(1, round(self.cfg.conflict_event_share * self.n_events))
        for bi, ev in r.sample(pings, k=min(n, len(pings))):
            later = [b for b in batches[bi + 1 : bi + 40] if b.anonymous_id == batches[bi].anonymous_id]
            target = later[0] if later else batches[bi]
            victims = [
                e
                for e in target.events
                if e is not ev and e.body["event_type"] == "page_ping" and "event_id" in e.body
            ]
            if not victims:
                continue
            r.choice(victims).body["event_id"] = ev.body["event_id"]
            self.bump("reused_event_ids")

    def malformed_requests(self, templates: list[SimRequest]) -> list[SimRequest]:
        """Requests the API must refuse: bad JSON, a missing anonymous_id, no identity, an unsupported type."""
        cfg, r = self.cfg, self.rng
        n = max(4, round(cfg.malformed_request_share * len(templates)))
        kinds = (
            ("bad_json", 400),
            ("missing_anonymous_id", 400),
            ("no_auth", 401),
            ("wrong_content_type", 415),
            ("empty_events", 400),
        )
        out: list[SimRequest] = []
        for k in range(n):
            kind, status = kinds[k % len(kinds)]
            tpl = r.choice(templates)
            received = tpl.received_at + timedelta(seconds=r.uniform(1, 600))
            envelope = json.loads(tpl.event["body"])
            # Fresh junk events: never part of what the shoppers produced.
            envelope["events"] = [
                {
                    "event_id": self.uuid(),
                    "event_type": "page_view",
                    "occurred_at": envelope["sent_at"],
                    "page": {"url": f"{STORE_ORIGIN}/"},
                }
            ]
            headers = dict(tpl.event["headers"])
            claims = tpl.event["requestContext"].get("authorizer", {}).get("claims")
            guest = tpl.event["requestContext"]["identity"].get("cognitoIdentityId")
            if kind == "bad_json":
                body = json.dumps(envelope)[: r.randrange(20, 60)]
            elif kind == "missing_anonymous_id":
                del envelope["anonymous_id"]
                body = json.dumps(envelope)
            elif kind == "empty_events":
                envelope["events"] = []
                body = json.dumps(envelope)
            else:
                body = json.dumps(envelope)
            if kind == "no_auth":  # the user-pool route without a token
                claims = guest = None
            if kind == "wrong_content_type":
                headers["Content-Type"] = "application/xml"
            event = self.api_event(
                received, body, headers, tpl.event["requestContext"]["identity"]["sourceIp"], claims, guest
            )
            n_events = 0 if kind == "bad_json" else len(envelope["events"])
            out.append(SimRequest(received, event, "malformed", n_events, status))
            self.bump("malformed_requests")
            self.bump(f"malformed_request_{kind}")
        return out

    def headers(self, device: Device, content_type: str, internal: bool) -> dict[str, str]:
        headers = {
            "Accept": "*/*",
            "Content-Type": content_type,
            "Host": API_DOMAIN,
            "Origin": STORE_ORIGIN,
            "Referer": f"{STORE_ORIGIN}/",
            "User-Agent": device.user_agent,
            "X-Forwarded-For": device.ip,
            "X-Forwarded-Proto": "https",
        }
        if internal:
            headers[INTERNAL_HEADER] = "1"
        return headers

    def api_event(
        self,
        received: datetime,
        body: str,
        headers: dict[str, str],
        ip: str,
        claims: dict[str, str] | None,
        guest_identity: str | None = None,
    ) -> dict[str, Any]:
        """An API Gateway REST proxy event as the authorizer leaves it: token claims, or the SigV4 identity."""
        stage = self.cfg.stage
        path = GUEST_EVENTS_PATH if guest_identity else EVENTS_PATH
        identity: dict[str, Any] = {"sourceIp": ip, "userAgent": headers.get("User-Agent", "")}
        if guest_identity:
            identity.update(
                {
                    "cognitoIdentityPoolId": self.identity_pool_id,
                    "cognitoIdentityId": guest_identity,
                    "cognitoAuthenticationType": "unauthenticated",
                    "cognitoAuthenticationProvider": None,
                    "caller": "CognitoIdentityCredentials",
                    "userArn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/clickstream-{stage}-guest/CognitoIdentityCredentials",
                }
            )
        ctx: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": "clickstream",
            "resourceId": "ev1234",
            "resourcePath": path,
            "httpMethod": "POST",
            "path": f"/{stage}{path}",
            "stage": stage,
            "protocol": "HTTP/1.1",
            "domainName": API_DOMAIN,
            "identity": identity,
        }
        if claims is not None:
            ctx["authorizer"] = {"claims": dict(claims)}
        event = {
            "resource": path,
            "path": path,
            "httpMethod": "POST",
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": ctx,
            "body": body,
            "isBase64Encoded": False,
        }
        self.stamp(event, received)
        return event

    def stamp(self, event: dict[str, Any], received: datetime) -> None:
        """Give an API Gateway event its own request id and receive time."""
        request_id = self.uuid()
        ctx = event["requestContext"]
        ctx["requestId"] = request_id
        ctx["extendedRequestId"] = request_id[:18]
        ctx["requestTimeEpoch"] = int(received.timestamp() * 1000)
        ctx["requestTime"] = received.strftime("%d/%b/%Y:%H:%M:%S +0000")


def _cart_event(event_type: str, cart: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An event about the whole cart: its items, their value, and ``extra`` fields."""
    return {
        "event_type": event_type,
        "items": [dict(i) for i in cart],
        "value": _cart_value(cart),
        "currency": CURRENCY,
        **extra,
    }


def _cart_value(cart: list[dict[str, Any]]) -> float:
    return _money(sum(i["price"] * i["quantity"] for i in cart))


def generate(config: TrafficConfig | None = None) -> Traffic:
    """Simulate the store's traffic: API Gateway events in receive-time order, plus what was generated."""
    config = config or TrafficConfig()
    sim = _Simulator(config)
    sim.run()
    requests = sim.requests()
    sim.counts["sessions"] = len(sim.sessions)
    return Traffic(
        requests=requests,
        generated_events=sim.n_events,
        sessions=sim.sessions,
        start=config.start,
        end=config.end,
        counts=dict(sim.counts),
    )
