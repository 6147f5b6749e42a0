// The built store in Debian's headless Chromium against the fake server (test-support/fake-server.mjs):
// a shopper who consents, browses signed out (guest route, SigV4), signs in (code + PKCE) and buys; one whose
// network to the collector is cut for part of the visit; one who declines consent. Skips without Chromium unless
// CI=true (then it fails).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { constants, gzipSync } from "node:zlib";

import { CHROMIUM, FLAGS } from "../../test-support/chromium.mjs";
import { startFakeServer } from "../../test-support/fake-server.mjs";
import { build as buildTracker } from "../../tracker/build.mjs";
import { NAMES } from "../../tracker/src/events.js";
import { build } from "../build.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const KNOWN = new Set(NAMES);

const missing = !existsSync(CHROMIUM);
if (missing && process.env.CI === "true") throw new Error(`${CHROMIUM} not found; browser tests never skip under CI=true`);
const skip = missing ? `no Chromium at ${CHROMIUM}` : false;

let browser;
let dist;
let tmp;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "store-"));
  dist = (await build({ outdir: join(tmp, "dist") })).outdir;
  if (skip) return;
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
});

after(async () => {
  await browser?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function session(server, { mobile = false } = {}) {
  const context = await browser.newContext(mobile ? { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true } : {});
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() == "error" && !/Failed to load resource|ERR_EMPTY_RESPONSE|ERR_CONNECTION/.test(m.text()) && problems.push(`console: ${m.text()}`));
  await page.goto(server.origin + "/");
  return { context, page, problems };
}

// Every event in the native contract's shape, with its page an absolute URL of the store.
function checkShape(events, origin) {
  for (const e of events) {
    assert.match(e.event_id, UUID);
    assert.ok(KNOWN.has(e.event_type), e.event_type);
    assert.match(e.occurred_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(e.page.url.startsWith(origin + "/"), e.page.url);
    assert.doesNotMatch(e.page.url, /[?&]code=/, "the sign-in code never reaches analytics");
  }
  assert.equal(new Set(events.map((e) => e.event_id)).size, events.length, "no event twice");
}

const paths = (events, origin, type = "page_view") => events.filter((e) => e.event_type == type).map((e) => e.page.url.slice(origin.length));

test("a shopper browses signed out, signs in and buys: every page, the order and the identity reach the API", { skip }, async () => {
  const server = await startFakeServer({ dist, requireConsent: true });
  try {
    const { page, problems, context } = await session(server);
    const origin = server.origin;
    await page.getByTestId("consent-accept").click();
    await page.getByTestId("search-input").fill("logitech");
    await page.getByTestId("search-input").press("Enter");
    await page.getByRole("heading", { name: /Results for/ }).waitFor();
    const first = page.getByTestId("product-card").first();
    const firstId = await first.getAttribute("data-product-id");
    await first.getByRole("link").click();
    await page.getByTestId("add-to-cart").waitFor();
    const related = page.getByTestId("product-card").first();
    const secondId = await related.getAttribute("data-product-id");
    await related.getByRole("link").click();
    await page.waitForURL(new RegExp(`/p/${secondId}/`));
    await page.getByLabel("Quantity").selectOption("2");
    await page.getByTestId("add-to-cart").click();
    await page.getByTestId("cart-link").click();
    await page.getByTestId("cart-line").first().waitFor();
    assert.equal(await page.getByTestId("cart-count").textContent(), "2");

    // sign in from the cart: the Hosted UI and back to the cart, signed in
    await page.getByTestId("sign-in").click();
    await page.getByTestId("sign-out").waitFor();
    assert.equal(new URL(page.url()).pathname, "/cart");

    await page.getByTestId("checkout").click();
    await page.getByLabel("Full name").fill("Ada Lovelace");
    await page.getByLabel("Address").fill("12 Analytical Row");
    await page.getByLabel("City").fill("London");
    await page.getByLabel("Postal code").fill("N1 7AA");
    await page.getByTestId("continue-to-payment").click();
    await page.getByLabel("Card number").fill("4242 4242 4242 4242");
    await page.getByLabel("Expiry (MM/YY)").fill("12/29");
    await page.getByLabel("Security code").fill("123");
    await page.getByTestId("place-order").click();
    const confirmation = page.getByTestId("order-confirmation");
    await confirmation.waitFor();
    const orderId = await confirmation.getAttribute("data-order-id");
    const orderTotal = await confirmation.getAttribute("data-order-total");
    await page.evaluate(() => window.clickstream.flush());

    const events = server.events();
    checkShape(events, origin);
    assert.deepEqual(server.state.refused, []);
    assert.deepEqual(paths(events, origin), [
      "/",
      "/search?q=logitech",
      `/p/${firstId}/` + (await slug(firstId)),
      `/p/${secondId}/` + (await slug(secondId)),
      "/cart",
      "/cart",
      "/checkout",
      "/checkout/payment",
      `/checkout/confirmation?order=${orderId}`,
    ]);
    const purchase = events.filter((e) => e.event_type == "purchase");
    assert.equal(purchase.length, 1);
    assert.equal(purchase[0].transaction_id, orderId);
    assert.equal(purchase[0].value.toFixed(2), orderTotal);
    assert.equal(purchase[0].currency, "USD");
    assert.deepEqual(
      purchase[0].items.map((i) => [i.product_id, i.quantity]),
      [[secondId, 2]],
    );
    assert.ok(purchase[0].items.every((i) => i.name && i.category && i.brand && i.price > 0));
    const types = new Set(events.map((e) => e.event_type));
    for (const t of ["search", "view_item_list", "select_item", "view_item", "add_to_cart", "view_cart", "login", "begin_checkout", "add_payment_info"]) {
      assert.ok(types.has(t), `a ${t} event`);
    }
    // one anonymous id for the whole visit; signed out on the guest route (SigV4), signed in with the token
    assert.equal(new Set(events.map((e) => e._anon)).size, 1);
    const guest = events.filter((e) => e._route == "guest");
    const user = events.filter((e) => e._route == "user");
    assert.ok(guest.length >= 1, "signed-out batches on the guest route");
    assert.ok(user.length >= 1 && user.every((e) => e._user == "shopper-1"));
    assert.ok(user.some((e) => e.event_type == "purchase"));
    const cookies = await context.cookies();
    assert.equal(cookies.find((c) => c.name == "_cs_aid")?.value, events[0]._anon);

    // the order is in the account's past orders
    await page.getByRole("link", { name: "Account" }).click();
    await page.getByTestId("account-orders").waitFor();
    assert.equal(await page.getByTestId("order-row").first().getAttribute("data-order-id"), orderId);
    // sign-out: a new anonymous id for whoever comes next
    await page.getByTestId("sign-out").click();
    await page.getByTestId("sign-in").waitFor();
    await page.waitForFunction((old) => !document.cookie.includes(old), events[0]._anon);
    assert.deepEqual(problems, []);
  } finally {
    await server.close();
  }
});

async function slug(id) {
  const { product } = await import("../src/catalog.js");
  return product(id).slug;
}

test("a shopper whose network to the collector is cut: the queue delivers later, each event once", { skip }, async () => {
  const server = await startFakeServer({ dist });
  try {
    const { page, problems } = await session(server, { mobile: true });
    const origin = server.origin;
    await page.getByTestId("product-card").first().waitFor();
    await page.evaluate(() => window.clickstream.flush());
    const before = server.events().length;
    server.state.outage = true;
    await page.getByRole("link", { name: "Monitors" }).click();
    await page.getByTestId("product-card").first().getByRole("link").click();
    await page.getByTestId("add-to-cart").click();
    await page.getByTestId("cart-link").click();
    await page.getByTestId("cart-line").waitFor();
    // a full batch was attempted during the outage and failed
    await page.evaluate(() => window.clickstream.flush() && null);
    await page.waitForFunction(() => window.clickstream.stats().retries > 0);
    const queued = await page.evaluate(() => window.clickstream.stats().queued);
    assert.ok(queued >= 5, `events kept while offline (${queued})`);
    assert.equal(server.events().length, before);
    // a reload while offline: the queue is in localStorage
    await page.reload();
    await page.getByTestId("cart-line").waitFor();
    server.state.outage = false;
    await page.evaluate(() => window.clickstream.flush());
    const events = server.events();
    checkShape(events, origin);
    assert.deepEqual(paths(events, origin).slice(-4), ["/c/monitors", paths(events, origin).at(-3), "/cart", "/cart"]);
    assert.match(paths(events, origin).at(-3), /^\/p\/MON-/);
    assert.equal(await page.evaluate(() => window.clickstream.stats().queued), 0);
    // a phone-sized viewport: nothing wider than the screen
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
    assert.deepEqual(problems, []);
  } finally {
    await server.close();
  }
});

test("a shopper who declines consent: nothing reaches the API, no identity is created, no cookie", { skip }, async () => {
  const server = await startFakeServer({ dist, requireConsent: true });
  try {
    const { page, context, problems } = await session(server);
    await page.getByTestId("consent-decline").click();
    await page.getByTestId("search-input").fill("dock");
    await page.getByTestId("search-input").press("Enter");
    await page.getByTestId("product-card").first().getByRole("link").click();
    await page.getByTestId("add-to-cart").click();
    await page.getByTestId("cart-link").click();
    await page.getByTestId("cart-line").waitFor();
    await page.evaluate(() => window.clickstream.flush());
    await page.reload();
    await page.getByTestId("cart-line").waitFor();
    assert.equal(await page.getByTestId("consent-banner").count(), 0, "the answer is remembered");
    await page.waitForTimeout(300);
    assert.deepEqual(server.state.received, []);
    assert.equal(server.state.identities.size, 0);
    assert.equal((await context.cookies()).filter((c) => c.name == "_cs_aid").length, 0);
    assert.deepEqual(problems, []);
  } finally {
    await server.close();
  }
});

test("keyboard only: skip link, search, a product, add to cart", { skip }, async () => {
  const server = await startFakeServer({ dist });
  try {
    const { page, problems } = await session(server);
    await page.getByTestId("product-card").first().waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
    await page.getByTestId("search-input").focus();
    await page.keyboard.type("airpods");
    await page.keyboard.press("Enter");
    await page.getByTestId("product-card").first().waitFor();
    await page.getByTestId("product-card").first().getByRole("link").focus();
    await page.keyboard.press("Enter");
    await page.getByTestId("add-to-cart").focus();
    await page.keyboard.press("Enter");
    await page.getByText(/Added 1 to your cart/).waitFor();
    assert.equal(await page.getByTestId("cart-count").textContent(), "1");
    assert.deepEqual(problems, []);
  } finally {
    await server.close();
  }
});

// WCAG 2 contrast of each visible text element against the first opaque background behind it.
function lowContrast() {
  const rgb = (c) => c.match(/[\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0.9) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll("a, button, input, select, label, p, h1, h2, dt, dd, span, li")) {
    const text = el.tagName == "INPUT" || el.tagName == "SELECT" ? "x" : [...el.childNodes].filter((n) => n.nodeType == 3).map((n) => n.textContent).join("").trim();
    const box = el.getBoundingClientRect();
    if (!text || !box.width || el.closest(".visually-hidden")) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push(`${el.tagName}.${el.className} "${text.slice(0, 30)}": ${ratio.toFixed(2)}`);
  }
  return out;
}

test("text contrast is at least 4.5:1 on the pages and the consent banner, wide and narrow", { skip }, async () => {
  const server = await startFakeServer({ dist, requireConsent: true });
  try {
    for (const mobile of [false, true]) {
      const { page, context } = await session(server, { mobile });
      for (const path of ["/", "/p/MOU-0001/x", "/cart", "/account"]) {
        await page.goto(server.origin + path);
        await page.locator("main h1").waitFor();
        await page.getByTestId("search-input").fill("typed text");
        assert.deepEqual(await page.evaluate(lowContrast), [], `${path} (${mobile ? "phone" : "desktop"})`);
      }
      await context.close();
    }
  } finally {
    await server.close();
  }
});

test("the published tracker file on a plain page: window.clickstream, a page view, guest batches that verify", { skip }, async () => {
  const site = join(tmp, "plain");
  mkdirSync(site, { recursive: true });
  await buildTracker({ outdir: site, only: "min" });
  writeFileSync(
    join(site, "index.html"),
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Plain page</title>
<script type="module">
  import "/clickstream.min.js";
  const config = await (await fetch("/config.json")).json();
  window.clickstream.init({ appId: "plain-site", region: config.region, identityPoolId: config.identityPoolId,
    identityEndpoint: config.identityEndpoint, batchSize: 2 });
  window.clickstream.track("newsletter_signup", { list: "weekly" });
</script></head><body><p>Hello</p></body></html>`,
  );
  const server = await startFakeServer({ dist: site });
  try {
    const { page, problems } = await session(server);
    await page.waitForFunction(() => window.clickstream && window.clickstream.stats().sent == 2);
    const [batch] = server.state.received;
    assert.equal(batch.route, "guest");
    assert.equal(batch.envelope.app_id, "plain-site");
    assert.deepEqual(
      batch.envelope.events.map((e) => [e.event_type, e.page.title]),
      [
        ["page_view", "Plain page"],
        ["custom:newsletter_signup", "Plain page"],
      ],
    );
    assert.deepEqual(problems, []);
  } finally {
    await server.close();
  }
});

test("first load of the store (HTML + JS + CSS), gzip'd", () => {
  const html = readFileSync(join(dist, "index.html"), "utf8");
  const assets = [...html.matchAll(/\/assets\/([\w.-]+)/g)].map((m) => m[1]);
  assert.equal(assets.length, 2);
  const files = [join(dist, "index.html"), ...assets.map((a) => join(dist, "assets", a))];
  const sizes = files.map((f) => {
    const data = readFileSync(f);
    return [data.length, gzipSync(data, { level: constants.Z_BEST_COMPRESSION }).length];
  });
  const raw = sizes.reduce((s, [r]) => s + r, 0);
  const gz = sizes.reduce((s, [, g]) => s + g, 0);
  console.log(`# store first load: ${raw} bytes, ${gz} bytes gzip -9 (index.html + ${assets.join(" + ")})`);
  assert.ok(gz < 40 * 1024, `${gz} bytes`);
});
