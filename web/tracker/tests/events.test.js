// What the events look like: page views and pings, the GA4 e-commerce helpers, identify().
import assert from "node:assert/strict";
import { test } from "node:test";

import { NAMES, fields, item } from "../src/events.js";
import { createTracker } from "../src/tracker.js";
import { bodyOf, drive, eventsOf, fakeWindow, settle, tracker } from "./fakes.js";

const LAPTOP = { product_id: "LAP-0001", name: 'Apple MacBook Air 13" M3 8GB 256GB', category: "Laptops", brand: "Apple", price: 1099 };
const MOUSE = { product_id: "MOU-0001", name: "Logitech MX Master 3S", category: "Mice", brand: "Logitech", price: 99.99 };

test("init tracks a page_view of the page (autoPageView), with url, referrer and title", async () => {
  const w = fakeWindow({ href: "https://shop.example.com/p/LAP-0001/apple" });
  w.document.referrer = "https://www.google.com/";
  w.document.title = "MacBook Air | Example Electronics";
  const t = createTracker(w).init({ appId: "shop-web", getToken: () => "t", batchSize: 1 });
  await settle();
  const [e] = eventsOf(w.requests);
  assert.equal(e.event_type, "page_view");
  assert.deepEqual(e.page, {
    url: "https://shop.example.com/p/LAP-0001/apple",
    referrer: "https://www.google.com/",
    title: "MacBook Air | Example Electronics",
  });
  assert.equal(t.consentState(), "granted");
});

test("page() in a single-page app: the previous URL becomes the referrer", async () => {
  const w = fakeWindow({ href: "https://shop.example.com/" });
  w.document.referrer = "https://www.bing.com/";
  const t = tracker(w, { batchSize: 100 });
  t.page();
  w.location = new URL("https://shop.example.com/c/laptops");
  w.document.title = "Laptops";
  t.page();
  await drive(w.clock, t.flush());
  const [home, laptops] = eventsOf(w.requests);
  assert.equal(home.page.referrer, "https://www.bing.com/");
  assert.equal(laptops.page.referrer, "https://shop.example.com/");
  assert.equal(laptops.page.url, "https://shop.example.com/c/laptops");
  assert.equal(laptops.page.title, "Laptops");
});

test("page pings: after minVisit then every heartbeat, only while visible and used, with the deepest scroll", async () => {
  const w = fakeWindow();
  w.document.documentElement.scrollHeight = 3000;
  const t = tracker(w, { batchSize: 1000, flushInterval: 1e9 });
  t.page();
  const pings = () =>
    JSON.parse(w.localStorage.getItem("_cs_q:shop-web"))
      .map((x) => x.e)
      .filter((e) => e.event_type == "page_ping");

  await w.clock.advance(5000);
  assert.equal(pings().length, 0, "no activity: no ping");

  w.dispatch("mousemove");
  await w.clock.advance(10000);
  assert.equal(pings().length, 1);
  assert.deepEqual(pings()[0].properties, { heartbeat_s: 10, scroll_depth_pct: 30 });

  w.scrollY = 1500;
  w.dispatch("scroll");
  w.scrollY = 0;
  w.dispatch("scroll");
  await w.clock.advance(10000);
  assert.equal(pings().length, 2);
  assert.equal(pings()[1].properties.scroll_depth_pct, 80, "the deepest point of this page view");

  w.document.visibilityState = "hidden";
  w.dispatch("keydown");
  await w.clock.advance(10000);
  assert.equal(pings().length, 2, "hidden: no ping");

  w.document.visibilityState = "visible";
  t.page(); // a new page: depth and timer start again
  w.dispatch("keydown");
  await w.clock.advance(4999);
  assert.equal(pings().length, 2);
  await w.clock.advance(1);
  assert.equal(pings().length, 3);
  assert.equal(pings()[2].properties.scroll_depth_pct, 30);
});

test("the first ping comes minVisit seconds after the page view (the sessionizer's engaged-time model)", async () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 1000, flushInterval: 1e9, minVisit: 5, heartbeat: 10 });
  const start = w.clock.t;
  t.page();
  w.dispatch("touchstart");
  await w.clock.advance(30000);
  w.dispatch("wheel");
  await w.clock.advance(10000);
  const times = JSON.parse(w.localStorage.getItem("_cs_q:shop-web"))
    .map((x) => x.e)
    .filter((e) => e.event_type == "page_ping")
    .map((e) => (Date.parse(e.occurred_at) - start) / 1000);
  assert.deepEqual(times, [5, 35]);
});

test("GA4 helpers produce the native contract's fields", async () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 1000 });
  t.view_item_list({ item_list_id: "laptops", item_list_name: "Laptops", items: [LAPTOP, MOUSE] });
  t.select_item({ item_list_id: "laptops", items: [LAPTOP] });
  t.view_item({ items: [LAPTOP] });
  t.search({ search_term: "mx master" });
  t.add_to_cart({ items: [{ ...MOUSE, quantity: 2 }] });
  t.remove_from_cart({ items: [{ ...MOUSE, quantity: 1 }] });
  t.view_cart({ items: [LAPTOP, MOUSE] });
  t.begin_checkout({ items: [LAPTOP, MOUSE] });
  t.add_payment_info({ items: [LAPTOP, MOUSE], payment_type: "card" });
  t.purchase({ transaction_id: "T-42", value: 1198.99, currency: "USD", items: [LAPTOP, MOUSE], shipping: 0 });
  t.refund({ transaction_id: "T-42", value: 99.99, items: [MOUSE] });
  await drive(w.clock, t.flush());
  const events = eventsOf(w.requests).map(({ event_id, occurred_at, page, ...rest }) => rest);
  const withQty = (i, quantity = 1) => ({ ...i, quantity });
  assert.deepEqual(events, [
    {
      event_type: "view_item_list",
      items: [withQty(LAPTOP), withQty(MOUSE)],
      properties: { item_list_id: "laptops", item_list_name: "Laptops" },
    },
    { event_type: "select_item", items: [withQty(LAPTOP)], properties: { item_list_id: "laptops" } },
    { event_type: "view_item", items: [withQty(LAPTOP)], value: 1099, currency: "USD" },
    { event_type: "search", properties: { search_term: "mx master" } },
    { event_type: "add_to_cart", items: [withQty(MOUSE, 2)], value: 199.98, currency: "USD" },
    { event_type: "remove_from_cart", items: [withQty(MOUSE)], value: 99.99, currency: "USD" },
    { event_type: "view_cart", items: [withQty(LAPTOP), withQty(MOUSE)], value: 1198.99, currency: "USD" },
    { event_type: "begin_checkout", items: [withQty(LAPTOP), withQty(MOUSE)], value: 1198.99, currency: "USD" },
    {
      event_type: "add_payment_info",
      items: [withQty(LAPTOP), withQty(MOUSE)],
      value: 1198.99,
      currency: "USD",
      properties: { payment_type: "card" },
    },
    {
      event_type: "purchase",
      transaction_id: "T-42",
      value: 1198.99,
      currency: "USD",
      items: [withQty(LAPTOP), withQty(MOUSE)],
      properties: { shipping: 0 },
    },
    { event_type: "refund", transaction_id: "T-42", value: 99.99, currency: "USD", items: [withQty(MOUSE)] },
  ]);
});

test("GA4's own item parameter names are accepted; unknown event names become custom:<name>", () => {
  assert.deepEqual(item({ item_id: 7, item_name: "Dock", item_category: "Docks", item_brand: "CalDigit", price: 399.99 }), {
    product_id: "7",
    name: "Dock",
    category: "Docks",
    brand: "CalDigit",
    price: 399.99,
    quantity: 1,
  });
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 1000 });
  t.track("newsletter_signup", { list: "weekly" });
  t.track("custom:chat_opened");
  const types = JSON.parse(w.localStorage.getItem("_cs_q:shop-web")).map((x) => x.e.event_type);
  assert.deepEqual(types, ["custom:newsletter_signup", "custom:chat_opened"]);
  assert.deepEqual(fields("purchase", { value: 0.1 + 0.2 }, "EUR"), { value: 0.3, currency: "EUR" });
});

test("every event name the tracker knows (tests/unit/core/test_event_names.py holds it to the pipeline's list) has a helper or is page_view / page_ping", () => {
  const t = createTracker(fakeWindow());
  for (const name of NAMES.slice(2)) assert.equal(typeof t[name], "function", name);
});

test("identify(): a login event, and the queue goes at once with the signed-in token", async () => {
  const w = fakeWindow();
  let token = null;
  const t = tracker(w, {
    batchSize: 100,
    flushInterval: 60000,
    getToken: () => token,
    identityPoolId: "us-east-1:pool",
    region: "us-east-1",
  });
  t.page();
  t.view_item({ items: [LAPTOP] });
  token = "id-token";
  const flushed = t.identify();
  await drive(w.clock, flushed);
  assert.equal(w.requests.length, 1);
  assert.equal(w.requests[0].url, "https://shop.example.com/v1/events");
  assert.deepEqual(
    bodyOf(w.requests[0]).events.map((e) => [e.event_type, e.properties]),
    [
      ["page_view", undefined],
      ["view_item", undefined],
      ["login", { method: "cognito" }],
    ],
  );
});

test("parameters JSON cannot hold, or an event too big for any request: dropped and counted, never thrown", () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 1000 });
  const cycle = {};
  cycle.self = cycle;
  assert.equal(t.track("custom:x", { cycle }), null);
  assert.equal(t.track("custom:x", { n: 10n }), null);
  assert.equal(t.track("custom:x", { blob: "b".repeat(1048576) }), null);
  assert.equal(t.stats().dropped, 3);
  assert.equal(t.stats().queued, 0);
  assert.match(t.track("custom:x", { ok: true }), /^[0-9a-f-]{36}$/);
});

test("before init nothing is recorded and nothing throws", async () => {
  const t = createTracker(fakeWindow());
  assert.equal(t.track("view_cart"), null);
  assert.equal(t.page(), null);
  await t.flush();
  assert.deepEqual(t.stats(), { sent: 0, rejected: 0, retries: 0, dropped: 0, queued: 0, droppedTotal: 0 });
  assert.throws(() => createTracker(fakeWindow()).init({}), /appId/);
  assert.throws(() => createTracker(fakeWindow()).init({ appId: "x" }), /identityPoolId or getToken/);
});
