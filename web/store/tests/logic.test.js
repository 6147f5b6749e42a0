// The store's pure logic: catalog, cart totals, routes, orders.
import assert from "node:assert/strict";
import { test } from "node:test";

import * as cart from "../src/cart.js";
import * as catalog from "../src/catalog.js";
import * as orders from "../src/orders.js";
import { href, isInternalClick, match, safeReturnPath } from "../src/routes.js";

const lookup = catalog.product;

// ---- catalog ----------------------------------------------------------------------------------------------------

test("the catalog: ~90 products, unique ids, every product in a known category, positive prices", () => {
  assert.ok(catalog.products.length >= 85 && catalog.products.length <= 100);
  assert.equal(new Set(catalog.products.map((p) => p.product_id)).size, catalog.products.length);
  const names = new Set(catalog.categories.map((c) => c.name));
  for (const p of catalog.products) {
    assert.ok(names.has(p.category), p.product_id);
    assert.ok(p.price > 0 && Number.isFinite(p.price));
    assert.match(p.slug, /^[a-z0-9-]+$/);
  }
  assert.equal(catalog.featured().length, catalog.categories.length * 2);
});

test("search: every word must match name, brand or category; case and accents ignored", () => {
  const ids = (q) => catalog.search(q).map((p) => p.product_id);
  assert.deepEqual(ids("mx master"), ["MOU-0001"]);
  assert.deepEqual(ids("  MX   MASTER "), ["MOU-0001"]);
  assert.ok(ids("logitech").length >= 5);
  assert.ok(ids("thunderbolt dock").every((id) => id.startsWith("DCK-")));
  assert.deepEqual(ids("mx mäster"), ["MOU-0001"]);
  assert.deepEqual(ids(""), []);
  assert.deepEqual(ids("zzzz-nothing"), []);
  assert.deepEqual(ids("x".repeat(100000)), []);
});

// ---- cart -------------------------------------------------------------------------------------------------------

test("cart: add merges lines, setQty 0 removes, quantities stay within 1..99", () => {
  let c = cart.add([], "MOU-0001");
  c = cart.add(c, "MOU-0001", 2);
  c = cart.add(c, "LAP-0001");
  assert.deepEqual(c, [
    { id: "MOU-0001", qty: 3 },
    { id: "LAP-0001", qty: 1 },
  ]);
  assert.equal(cart.count(c), 4);
  assert.deepEqual(cart.add(c, "MOU-0001", 500)[0], { id: "MOU-0001", qty: 99 });
  assert.deepEqual(cart.setQty(c, "MOU-0001", 0), [{ id: "LAP-0001", qty: 1 }]);
  assert.deepEqual(cart.setQty(c, "LAP-0001", 7.9)[1], { id: "LAP-0001", qty: 7 });
  assert.deepEqual(cart.remove(c, "LAP-0001"), [{ id: "MOU-0001", qty: 3 }]);
  assert.deepEqual(cart.add([], "X", -3), []);
});

test("cart totals in cents: subtotal, shipping under $50, free from $50", () => {
  // 3 x 19.99 = 59.97 (the float sum would be 59.970000000000006)
  let p = cart.priced([{ id: "CBL-0001", qty: 3 }], lookup);
  assert.deepEqual([p.subtotal, p.shipping, p.total], [5997, 0, 5997]);
  p = cart.priced([{ id: "CBL-0009", qty: 1 }], lookup); // 11.99
  assert.deepEqual([p.subtotal, p.shipping, p.total], [1199, 799, 1998]);
  p = cart.priced(
    [
      { id: "LAP-0001", qty: 1 },
      { id: "MOU-0001", qty: 2 },
      { id: "GONE-0001", qty: 4 },
    ],
    lookup,
  );
  assert.deepEqual([p.subtotal, p.shipping, p.total], [109900 + 2 * 9999, 0, 129898]);
  assert.equal(p.lines.length, 2, "a product no longer in the catalog is left out");
  assert.deepEqual(cart.priced([], lookup).total, 0);
  assert.equal(cart.dollars(129898), 1298.98);
  assert.equal(cart.formatMoney(129898), "$1,298.98");
});

test("a stored cart is read defensively", () => {
  assert.deepEqual(cart.parse("not json"), []);
  assert.deepEqual(cart.parse('{"id":"A"}'), []);
  assert.deepEqual(cart.parse(null), []);
  assert.deepEqual(
    cart.parse(JSON.stringify([{ id: "A", qty: 2 }, { id: "A", qty: 5 }, { id: 3, qty: 1 }, { id: "B", qty: 0 }, { id: "C", qty: 1e9 }, null])),
    [
      { id: "A", qty: 2 },
      { id: "C", qty: 99 },
    ],
  );
});

// ---- routes -----------------------------------------------------------------------------------------------------

test("routes: every page's URL, the generator's URL shapes, unknown paths", () => {
  const mouse = catalog.product("MOU-0001");
  assert.equal(href.product(mouse), "/p/MOU-0001/logitech-mx-master-3s");
  assert.deepEqual(match(href.product(mouse)), { name: "product", id: "MOU-0001" });
  assert.deepEqual(match("/p/MOU-0001"), { name: "product", id: "MOU-0001" });
  assert.deepEqual(match("/"), { name: "home" });
  assert.deepEqual(match("/c/cables-chargers"), { name: "category", slug: "cables-chargers" });
  assert.deepEqual(match("/search", "?q=usb+c"), { name: "search", q: "usb c" });
  assert.deepEqual(match(...splitUrl(href.search("mx & co"))), { name: "search", q: "mx & co" });
  assert.deepEqual(match("/cart"), { name: "cart" });
  assert.deepEqual(match("/checkout"), { name: "checkout" });
  assert.deepEqual(match("/checkout/payment"), { name: "payment" });
  assert.deepEqual(match(...splitUrl(href.confirmation("T-ABC"))), { name: "confirmation", order: "T-ABC" });
  assert.deepEqual(match("/account"), { name: "account" });
  assert.deepEqual(match("/auth/callback", "?code=c&state=s"), { name: "callback", code: "c", state: "s", error: null });
  assert.deepEqual(match("/v1/events"), { name: "not-found" });
  assert.deepEqual(match("/p/%E0%A4%A"), { name: "product", id: "%E0%A4%A" });
});

function splitUrl(u) {
  const url = new URL(u, "http://x");
  return [url.pathname, url.search];
}

test("the page to come back to after sign-in stays on this site", () => {
  assert.equal(safeReturnPath("/cart"), "/cart");
  assert.equal(safeReturnPath("/search?q=a"), "/search?q=a");
  for (const bad of ["//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "", null, "/a\nb"]) {
    assert.equal(safeReturnPath(bad), "/", String(bad));
  }
});

test("only plain left clicks on same-origin links are handled in the page", () => {
  const a = (h, attrs = {}) => ({ href: h, target: attrs.target || "", hasAttribute: (n) => n in attrs });
  const click = (o = {}) => ({ defaultPrevented: false, button: 0, metaKey: false, ctrlKey: false, shiftKey: false, altKey: false, ...o });
  const origin = "https://shop.example.com";
  assert.equal(isInternalClick(click(), a("https://shop.example.com/cart"), origin), true);
  assert.equal(isInternalClick(click({ ctrlKey: true }), a("https://shop.example.com/cart"), origin), false);
  assert.equal(isInternalClick(click({ button: 1 }), a("https://shop.example.com/cart"), origin), false);
  assert.equal(isInternalClick(click(), a("https://other.example/"), origin), false);
  assert.equal(isInternalClick(click(), a("https://shop.example.com/x", { target: "_blank" }), origin), false);
  assert.equal(isInternalClick(click(), a("https://shop.example.com/x", { download: "" }), origin), false);
});

// ---- orders -----------------------------------------------------------------------------------------------------

class MemoryStorage {
  constructor() {
    this.m = new Map();
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}

test("orders are kept per user, newest first, at most 50", () => {
  const s = new MemoryStorage();
  const priced = cart.priced([{ id: "MOU-0001", qty: 2 }], lookup);
  const order = orders.makeOrder("T-1", priced, "2026-03-02T10:00:00.000Z", "USD");
  assert.deepEqual(order.items, [
    { product_id: "MOU-0001", name: "Logitech MX Master 3S", category: "Mice", brand: "Logitech", price: 99.99, quantity: 2 },
  ]);
  assert.deepEqual([order.subtotal, order.shipping, order.total], [19998, 0, 19998]);
  orders.save(s, "user-a", order);
  orders.save(s, "user-a", { ...order, id: "T-2" });
  orders.save(s, undefined, { ...order, id: "T-G" });
  assert.deepEqual(
    orders.list(s, "user-a").map((o) => o.id),
    ["T-2", "T-1"],
  );
  assert.deepEqual(orders.list(s, "user-b"), []);
  assert.equal(orders.find(s, null, "T-G").id, "T-G");
  assert.equal(orders.find(s, "user-b", "T-1"), null);
  for (let i = 0; i < 60; i++) orders.save(s, "user-a", { ...order, id: `T-${i + 10}` });
  assert.equal(orders.list(s, "user-a").length, orders.MAX_ORDERS);
  s.setItem("store_orders:user-c", "{broken");
  assert.deepEqual(orders.list(s, "user-c"), []);
});

test("order ids: T- and 12 characters, different each time", () => {
  const ids = new Set(Array.from({ length: 1000 }, () => orders.newOrderId()));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^T-[0-9A-Z]{12}$/);
});
