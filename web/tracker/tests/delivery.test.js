// Batching, request limits, retries, Retry-After, the persistent queue, keepalive and gzip.
import assert from "node:assert/strict";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";

import { KEEPALIVE_BYTES, MAX_BYTES, MAX_EVENTS, retryAfterMs } from "../src/tracker.js";
import { FakeClock, FakeStorage, bodyOf, drive, eventsOf, fakeWindow, settle, tracker } from "./fakes.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test("a batch goes when batchSize events are queued, not before", async () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 3, flushInterval: 60000 });
  t.track("search", { search_term: "usb-c" });
  t.track("search", { search_term: "dock" });
  await settle();
  assert.equal(w.requests.length, 0);
  t.track("search", { search_term: "monitor" });
  await settle();
  assert.equal(w.requests.length, 1);
  assert.deepEqual(
    bodyOf(w.requests[0]).events.map((e) => e.properties.search_term),
    ["usb-c", "dock", "monitor"],
  );
});

test("a smaller batch goes flushInterval after its first event", async () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 10, flushInterval: 5000 });
  t.track("view_cart");
  await w.clock.advance(4999);
  assert.equal(w.requests.length, 0);
  await w.clock.advance(1);
  assert.equal(w.requests.length, 1);
});

test("the envelope: app_id, anonymous_id, sent_at stamped at send time; events keep their own time and id", async () => {
  const w = fakeWindow({ href: "https://shop.example.com/c/laptops?utm_source=news&utm_medium=email" });
  w.document.title = "Laptops | Example Electronics";
  const t = tracker(w, { flushInterval: 5000 });
  const id = t.track("view_item_list", { item_list_id: "laptops", items: [{ product_id: "LAP-0001", price: 1099 }] });
  const trackedAt = new Date(w.clock.t).toISOString();
  await w.clock.advance(5000);
  const body = bodyOf(w.requests[0]);
  assert.equal(body.app_id, "shop-web");
  assert.match(body.anonymous_id, UUID_V4);
  assert.equal(body.sent_at, new Date(w.clock.t).toISOString());
  assert.notEqual(body.sent_at, trackedAt);
  assert.deepEqual(body.context.utm, { source: "news", medium: "email" });
  assert.deepEqual(body.context.library, { name: "clickstream-web", version: "1.0.0" });
  const [e] = body.events;
  assert.equal(e.event_id, id);
  assert.match(e.event_id, UUID_V4);
  assert.match(e.occurred_at, ISO_MS);
  assert.equal(e.occurred_at, trackedAt);
  assert.deepEqual(e.page, {
    url: "https://shop.example.com/c/laptops?utm_source=news&utm_medium=email",
    referrer: "",
    title: "Laptops | Example Electronics",
  });
});

test("no request carries more than 500 events", async () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 2000, maxQueue: 5000, flushInterval: 1000 });
  for (let i = 0; i < 1201; i++) t.track("page_ping", { n: i });
  await drive(w.clock, t.flush());
  const sizes = w.requests.map((r) => bodyOf(r).events.length);
  assert.deepEqual(sizes, [MAX_EVENTS, MAX_EVENTS, 201]);
  assert.deepEqual(
    eventsOf(w.requests).map((e) => e.properties.n),
    [...Array(1201).keys()],
  );
});

test("no request body is over 1 MB; every event arrives once, in order", async () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 1000, flushInterval: 1000 });
  const blob = "x".repeat(200 * 1024);
  for (let i = 0; i < 12; i++) t.track("custom:note", { n: i, blob });
  await drive(w.clock, t.flush());
  assert.ok(w.requests.length >= 3);
  for (const r of w.requests) assert.ok(new TextEncoder().encode(r.body).length <= MAX_BYTES);
  assert.deepEqual(
    eventsOf(w.requests).map((e) => e.properties.n),
    [...Array(12).keys()],
  );
});

test("network errors, 5xx and 429 are retried until the batch is accepted", async () => {
  for (const failure of [500, 502, 503, 504, 429, "network"]) {
    let calls = 0;
    const w = fakeWindow({
      handle: () => {
        calls++;
        if (calls <= 3) {
          if (failure == "network") throw new TypeError("Failed to fetch");
          return { status: failure };
        }
        return { status: 202 };
      },
    });
    const t = tracker(w, { batchSize: 1 });
    t.track("view_cart");
    await drive(w.clock, t.flush());
    assert.equal(w.requests.length, 4, `failure ${failure}`);
    assert.equal(eventsOf(w.requests).length, 4);
    assert.equal(new Set(eventsOf(w.requests).map((e) => e.event_id)).size, 1, "the same event each time");
    assert.deepEqual({ ...t.stats(), droppedTotal: 0 }, {
      sent: 1,
      rejected: 0,
      retries: 3,
      dropped: 0,
      queued: 0,
      droppedTotal: 0,
    });
  }
});

test("any other 4xx is never retried: the batch is dropped and counted", async () => {
  for (const status of [400, 404, 405, 413, 415, 422]) {
    const w = fakeWindow({ handle: () => ({ status }) });
    const t = tracker(w, { batchSize: 1 });
    t.track("view_cart");
    await drive(w.clock, t.flush());
    await w.clock.advance(600000);
    assert.equal(w.requests.length, 1, `status ${status}`);
    assert.equal(t.stats().rejected, 1);
    assert.equal(t.stats().queued, 0);
  }
});

test("backoff doubles from minRetryDelay up to maxRetryDelay, with jitter in [d/2, d]", async () => {
  for (const [random, factor] of [
    [0, 0.5],
    [0.999999, 1],
  ]) {
    let calls = 0;
    const w = fakeWindow({ random: () => random, handle: () => (++calls <= 9 ? { status: 503 } : { status: 202 }) });
    const t = tracker(w, { batchSize: 1, minRetryDelay: 1000, maxRetryDelay: 60000 });
    t.track("view_cart");
    await drive(w.clock, t.flush());
    const gaps = w.requests.slice(1).map((r, i) => Math.round(r.at - w.requests[i].at));
    const full = [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000];
    assert.deepEqual(
      gaps,
      full.map((d) => Math.round(d * factor)),
    );
  }
});

test("429 and 503 wait at least Retry-After (seconds or an HTTP date)", async () => {
  for (const [status, header, wait] of [
    [429, "7", 7000],
    [503, "120", 120000],
    [429, new Date(Date.parse("2026-03-02T10:00:30.000Z")).toUTCString(), 30000],
  ]) {
    let calls = 0;
    const w = fakeWindow({
      handle: () => (++calls == 1 ? { status, headers: { "Retry-After": header } } : { status: 202 }),
    });
    const t = tracker(w, { batchSize: 1 });
    t.track("view_cart");
    await settle();
    assert.equal(w.requests.length, 1);
    await w.clock.advance(wait - 1);
    assert.equal(w.requests.length, 1, `no retry before Retry-After ${header}`);
    await w.clock.advance(1);
    assert.equal(w.requests.length, 2);
  }
});

test("retryAfterMs reads seconds and HTTP dates, ignores nonsense", () => {
  const now = Date.parse("2026-03-02T10:00:00Z");
  assert.equal(retryAfterMs("5", now), 5000);
  assert.equal(retryAfterMs("Mon, 02 Mar 2026 10:01:00 GMT", now), 60000);
  assert.equal(retryAfterMs("Mon, 02 Mar 2026 09:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon", now), null);
  assert.equal(retryAfterMs(null, now), null);
  assert.equal(retryAfterMs("99999999999", now), 864e5);
});

test("the queue keeps at most 1,000 events: the oldest are dropped and counted", async () => {
  const w = fakeWindow({
    handle: () => {
      throw new TypeError("offline");
    },
  });
  const t = tracker(w, { batchSize: 5000 });
  const ids = [];
  for (let i = 0; i < 1005; i++) ids.push(t.track("page_ping", { n: i }));
  const stored = JSON.parse(w.localStorage.getItem("_cs_q:shop-web"));
  assert.equal(stored.length, 1000);
  assert.deepEqual(
    stored.map((x) => x.e.event_id),
    ids.slice(5),
  );
  assert.equal(t.stats().dropped, 5);
  assert.equal(t.stats().droppedTotal, 5);
  assert.equal(t.stats().queued, 1000);
});

test("a full localStorage drops the oldest events rather than the new one, and nothing throws", async () => {
  const w = fakeWindow({ storage: new FakeStorage(20000) });
  const t = tracker(w, { batchSize: 5000, flushInterval: 1e9 });
  let last;
  for (let i = 0; i < 200; i++) last = t.track("custom:x", { n: i, pad: "y".repeat(100) });
  const stored = JSON.parse(w.localStorage.getItem("_cs_q:shop-web"));
  assert.ok(stored.length < 200);
  assert.equal(stored.at(-1).e.event_id, last);
  assert.equal(t.stats().dropped, 200 - stored.length);
});

test("the queue outlives the page: the next page sends what the last one could not", async () => {
  const storage = new FakeStorage();
  const clock = new FakeClock();
  let online = false;
  const handle = () => {
    if (!online) throw new TypeError("offline");
    return { status: 202 };
  };
  const w1 = fakeWindow({ storage, clock, handle });
  const t1 = tracker(w1, { batchSize: 1 });
  const ids = [t1.track("add_to_cart", { items: [{ product_id: "MOU-0001", price: 99.99 }] }), t1.track("view_cart")];
  await clock.advance(3000);
  assert.ok(w1.requests.length >= 1);
  online = true;
  const w2 = fakeWindow({ storage, clock, handle });
  const t2 = tracker(w2, { batchSize: 10, flushInterval: 5000 });
  await drive(clock, t2.flush());
  assert.deepEqual(
    eventsOf(w2.requests).map((e) => e.event_id),
    ids,
  );
  assert.equal(bodyOf(w2.requests[0]).anonymous_id, bodyOf(w1.requests[0]).anonymous_id);
});

test("flush() settles only once the queue is empty", async () => {
  let up = false;
  const w = fakeWindow({
    handle: () => {
      if (!up) throw new TypeError("offline");
      return { status: 202 };
    },
  });
  const t = tracker(w, { batchSize: 100 });
  t.track("view_cart");
  let settled = false;
  t.flush().then(() => (settled = true));
  await w.clock.advance(30000);
  assert.equal(settled, false);
  up = true;
  await w.clock.advance(60000);
  assert.equal(settled, true);
  assert.equal(t.stats().queued, 0);
});

test("on pagehide / hidden: keepalive requests of at most 64 KB, not compressed", async () => {
  for (const how of ["visibilitychange", "pagehide"]) {
    const w = fakeWindow({ compression: true });
    const t = tracker(w, { batchSize: 5000, flushInterval: 1e9 });
    for (let i = 0; i < 400; i++) t.track("custom:note", { n: i, text: "z".repeat(500) });
    if (how == "visibilitychange") {
      w.document.visibilityState = "hidden";
      w.document.dispatch("visibilitychange");
    } else w.dispatch("pagehide");
    await settle(20);
    assert.ok(w.requests.length >= 2, how);
    for (const r of w.requests) {
      assert.equal(r.keepalive, true);
      assert.equal(r.headers.get("content-type"), "application/json");
      assert.ok(new TextEncoder().encode(r.body).length <= KEEPALIVE_BYTES);
    }
    assert.deepEqual(
      eventsOf(w.requests).map((e) => e.properties.n),
      [...Array(400).keys()],
    );
  }
});

test("gzip with CompressionStream: Content-Type application/gzip, JSON inside; small or unsupported: JSON", async () => {
  const w = fakeWindow({ compression: true });
  const t = tracker(w, { batchSize: 50 });
  for (let i = 0; i < 50; i++) t.track("page_ping", { heartbeat_s: 10, scroll_depth_pct: i });
  const until = Date.now() + 5000;
  while (!w.requests.length && Date.now() < until) await settle();
  const [r] = w.requests;
  assert.equal(r.headers.get("content-type"), "application/gzip");
  assert.equal(r.headers.get("content-encoding"), null);
  assert.ok(r.body instanceof Uint8Array);
  const inside = JSON.parse(gunzipSync(r.body).toString("utf8"));
  assert.equal(inside.events.length, 50);
  assert.ok(r.body.length < new TextEncoder().encode(JSON.stringify(inside)).length / 3);

  const small = fakeWindow({ compression: true });
  tracker(small, { batchSize: 1 }).track("view_cart");
  await settle();
  assert.equal(small.requests[0].headers.get("content-type"), "application/json");

  const none = fakeWindow({ compression: false });
  const t3 = tracker(none, { batchSize: 50 });
  for (let i = 0; i < 50; i++) t3.track("page_ping", { heartbeat_s: 10, scroll_depth_pct: i });
  await settle();
  assert.equal(none.requests[0].headers.get("content-type"), "application/json");
});
