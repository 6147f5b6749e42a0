// Shoppers in Debian's headless Chromium against a real `clickstream serve`, driven by playwright-core from
// web/node_modules (installed by `make web`): `node store_journeys.mjs <journey> <base URL>` runs one journey and
// prints what the browser showed as one JSON line, which tests/e2e/test_store_journeys.py compares with the
// warehouse.
//
//   purchase   accepts consent, browses a category, searches, views two products, adds one to the cart, signs in
//              on the local Hosted UI, checks out and buys
//   outage     accepts consent, browses; then every request to /v1/* is aborted (a network error) while the shopper
//              goes on and reloads a page; then the network comes back and the queue is flushed
//   declined   declines consent, browses, adds to the cart, reloads: every request the page makes is recorded
//   dashboard  opens /dashboard and reads the KPI tiles and the products table
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

import { CHROMIUM, FLAGS } from "../../web/test-support/chromium.mjs";

const require = createRequire(fileURLToPath(new URL("../../web/package.json", import.meta.url)));
const { chromium } = require("playwright-core");

const [journey, base, username = "ada@example.com"] = process.argv.slice(2);

// Headless Chromium says "HeadlessChrome" in its user agent, which the pipeline rightly counts as a bot (and the
// dashboard leaves out); these shoppers present the user agent of the same Chromium with a window.
let userAgent;

async function visit(browser) {
  if (!userAgent) {
    const probe = await browser.newPage();
    userAgent = (await probe.evaluate(() => navigator.userAgent)).replace("HeadlessChrome", "Chrome");
    await probe.close();
  }
  const context = await browser.newContext({ userAgent });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() == "error" && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_FAILED/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  // What the collector acknowledged: the event ids of every request either event route answered 202 (read from
  // the request's own body, gunzipped when gzip'd), so an event delivered twice would be listed twice.
  // Each acknowledged event's occurred_at (the browser's clock when it was recorded) orders the visit as the browser
  // saw it: the warehouse's event_ts corrects each request by its own sent_at and arrival, so two events a few
  // milliseconds apart that went in different requests may swap there.
  const delivery = { requests: 0, guestRequests: 0, eventIds: [], occurredAt: {} };
  page.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    if ((path == "/v1/events" || path == "/v1/guest/events") && r.status() == 202) {
      const raw = r.request().postDataBuffer();
      const text = (r.request().headers()["content-type"] || "").includes("gzip") ? gunzipSync(raw) : raw;
      delivery.requests++;
      if (path == "/v1/guest/events") delivery.guestRequests++;
      const events = JSON.parse(text.toString("utf8")).events;
      delivery.eventIds.push(...events.map((e) => e.event_id));
      for (const e of events) delivery.occurredAt[e.event_id] = e.occurred_at;
    }
  });
  return { context, page, problems, delivery };
}

const here = (page) => page.url().slice(base.length);
const anonymousId = async (context) => (await context.cookies()).find((c) => c.name == "_cs_aid")?.value ?? null;
const flush = (page) => page.evaluate(() => window.clickstream.flush());

// Opens the home page and accepts consent; `show` waits for a locator and records the page it is on.
async function arriveConsenting(page) {
  const shown = [];
  const show = async (locator) => {
    await locator.waitFor();
    shown.push(here(page));
  };
  await page.goto(base + "/");
  await page.getByTestId("consent-accept").click();
  await show(page.getByTestId("product-card").first());
  return { shown, show };
}

async function purchase(browser) {
  const { context, page, problems, delivery } = await visit(browser);
  const { shown, show } = await arriveConsenting(page);
  await page.getByRole("link", { name: "Laptops" }).first().click();
  await page.waitForURL(/\/c\/laptops$/);
  await show(page.getByTestId("product-card").first());
  await page.getByTestId("search-input").fill("logitech");
  await page.getByTestId("search-input").press("Enter");
  await show(page.getByRole("heading", { name: /Results for/ }));
  const first = page.getByTestId("product-card").first();
  const firstId = await first.getAttribute("data-product-id");
  await first.getByRole("link").click();
  await page.waitForURL(new RegExp(`/p/${firstId}/`));
  await show(page.getByTestId("add-to-cart"));
  const related = page.getByTestId("product-card").first();
  const secondId = await related.getAttribute("data-product-id");
  await related.getByRole("link").click();
  await page.waitForURL(new RegExp(`/p/${secondId}/`));
  await show(page.getByTestId("add-to-cart"));
  await page.getByLabel("Quantity").selectOption("2");
  await page.getByTestId("add-to-cart").click();
  await page.getByTestId("cart-link").click();
  await show(page.getByTestId("cart-line").first());
  const before = await anonymousId(context);

  // sign in on the local Hosted UI: a wrong password first, then the right one
  await page.getByTestId("sign-in").click();
  await page.getByTestId("username").fill(username);
  await page.getByTestId("password").fill("wrong");
  await page.getByTestId("sign-in-submit").click();
  await page.getByRole("alert").waitFor();
  await page.getByTestId("username").fill(username);
  await page.getByTestId("password").fill("demo");
  await page.getByTestId("sign-in-submit").click();
  await page.getByTestId("sign-out").waitFor();
  await page.waitForURL(/\/cart$/);
  await show(page.getByTestId("cart-line").first());

  await page.getByTestId("checkout").click();
  await show(page.getByLabel("Full name"));
  await page.getByLabel("Full name").fill("Ada Lovelace");
  await page.getByLabel("Email").fill(username);
  await page.getByLabel("Address").fill("12 Analytical Row");
  await page.getByLabel("City").fill("London");
  await page.getByLabel("Postal code").fill("N1 7AA");
  await page.getByTestId("continue-to-payment").click();
  await show(page.getByLabel("Card number"));
  await page.getByLabel("Name on card").fill("Ada Lovelace");
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry (MM/YY)").fill("12/29");
  await page.getByLabel("Security code").fill("123");
  await page.getByTestId("place-order").click();
  const confirmation = page.getByTestId("order-confirmation");
  await show(confirmation);
  const order = {
    id: await confirmation.getAttribute("data-order-id"),
    total: await confirmation.getAttribute("data-order-total"),
    items: [[secondId, 2]],
  };
  await flush(page);
  const stats = await page.evaluate(() => window.clickstream.stats());
  const after = await anonymousId(context);
  await context.close();
  return { shown, order, anonymousId: before, anonymousIdAfterSignIn: after, products: [firstId, secondId], stats, delivery, problems };
}

async function outage(browser) {
  const { context, page, problems, delivery } = await visit(browser);
  const { shown, show } = await arriveConsenting(page);
  await flush(page);
  const beforeOutage = delivery.eventIds.length;

  // the network to the collector is cut: every request to /v1/* fails as a disconnected network would
  let aborted = 0;
  const cut = (route) => {
    aborted++;
    return route.abort("internetdisconnected");
  };
  await page.route("**/v1/**", cut);
  await page.getByRole("link", { name: "Monitors" }).first().click();
  await page.waitForURL(/\/c\/monitors$/);
  await show(page.getByTestId("product-card").first());
  await page.getByTestId("product-card").first().getByRole("link").click();
  await show(page.getByTestId("add-to-cart"));
  await page.getByTestId("add-to-cart").click();
  await page.getByTestId("cart-link").click();
  await show(page.getByTestId("cart-line").first());
  page.evaluate(() => window.clickstream.flush()).catch(() => {}); // settles only once delivered
  await page.waitForFunction(() => window.clickstream.stats().retries > 0);
  const retriesBeforeReload = await page.evaluate(() => window.clickstream.stats().retries);
  const queuedOffline = await page.evaluate(() => window.clickstream.stats().queued);
  // a reload while offline: the queue is in localStorage
  await page.reload();
  await show(page.getByTestId("cart-line").first());
  await page.waitForFunction(() => window.clickstream.stats().retries > 0);
  const retriesAfterReload = await page.evaluate(() => window.clickstream.stats().retries);
  const duringOutage = delivery.eventIds.length;
  await page.unroute("**/v1/**", cut);
  await flush(page);
  const stats = await page.evaluate(() => window.clickstream.stats());
  const id = await anonymousId(context);
  await context.close();
  return {
    shown,
    anonymousId: id,
    aborted,
    retries: retriesBeforeReload + retriesAfterReload,
    queuedOffline,
    beforeOutage,
    duringOutage,
    delivery,
    stats,
    problems,
  };
}

async function declined(browser) {
  const { context, page, problems } = await visit(browser);
  const requests = [];
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (r.method() != "GET" || path.startsWith("/v1/") || path.startsWith("/local/")) requests.push(`${r.method()} ${path}`);
  });
  await page.goto(base + "/");
  await page.getByTestId("consent-decline").click();
  await page.getByTestId("search-input").fill("dock");
  await page.getByTestId("search-input").press("Enter");
  await page.getByTestId("product-card").first().getByRole("link").click();
  await page.getByTestId("add-to-cart").click();
  await page.getByTestId("cart-link").click();
  await page.getByTestId("cart-line").first().waitFor();
  await flush(page);
  await page.reload();
  await page.getByTestId("cart-line").first().waitFor();
  await page.waitForTimeout(1500); // longer than nothing: a batch timer or a page ping would have fired by now
  const banner = await page.getByTestId("consent-banner").count();
  const cookies = (await context.cookies()).map((c) => c.name);
  const storage = await page.evaluate(() => Object.keys(localStorage));
  await context.close();
  return { requests, banner, cookies, storage, problems };
}

async function dashboard(browser) {
  const { context, page, problems } = await visit(browser);
  await page.goto(base + "/dashboard");
  await page.locator("#kpi-gross_revenue").waitFor();
  const tiles = await page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll("[data-kpi]")].map((t) => [t.dataset.kpi, t.dataset.value])),
  );
  const products = await page.evaluate(() =>
    [...document.querySelectorAll("#products-table tbody tr")].map((tr) =>
      Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [td.dataset.col, { value: td.dataset.value, shown: td.textContent.trim() }])),
    ),
  );
  const revenueShown = (await page.locator("#kpi-gross_revenue").textContent()).trim();
  await context.close();
  return { tiles, products, revenueShown, problems };
}

const journeys = { purchase, outage, declined, dashboard };
const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
try {
  const result = await journeys[journey](browser);
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  await browser.close();
}
