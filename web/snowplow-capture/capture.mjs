// Capture what the real Snowplow browser tracker v4 sends, as test fixtures for the ingest API's tp2 route.
//
// A tiny HTTP server on 127.0.0.1 plays two hosts: the shop (http://shop.example.com, a product page running the
// tracker) and the collector (http://collector.example.com, which records every tp2 POST: body as sent, headers,
// arrival time). Debian's headless Chromium resolves both names to that server (--host-resolver-rules), so the
// requests are genuinely cross-origin: the tracker's customHeaders (Authorization) go through a CORS preflight, as
// they would against API Gateway. Each scenario runs in a fresh browser context (new cookies, so a new duid).
//
// Usage: node capture.mjs [OUT_DIR]   (default: ../../tests/fixtures/snowplow)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium } from "playwright-core";

import { CHROMIUM, FLAGS } from "../test-support/chromium.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT_DIR = resolve(process.argv[2] ?? join(HERE, "../../tests/fixtures/snowplow"));
const SHOP = "shop.example.com";
const COLLECTOR = "collector.example.com";
const TP2_PATH = "/com.snowplowanalytics.snowplow/tp2";
// Not a real token: the API's authorizer verifies tokens; the fixtures only need to show where the tracker puts it.
const TOKEN = "eyJraWQiOiJjYXB0dXJlIiwiYWxnIjoiUlMyNTYifQ.eyJzdWIiOiJjYXB0dXJlIn0.c2lnbmF0dXJl";
const PAGE_URL = `http://${SHOP}/laptops/zenbook-14?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale`;
const REFERRER = `http://${SHOP}/laptops`;
const QUIET_MS = 1500; // the collector has seen everything once no POST arrived for this long
const MAX_WAIT_MS = 20000;

const SCENARIOS = [
  { name: "tp2_plain_contexts", encodeBase64: false },
  { name: "tp2_base64_contexts", encodeBase64: true },
];

const PRODUCT = {
  id: "LAP-ZB14",
  name: "Zenbook 14 OLED",
  category: "Laptops/Ultrabooks",
  brand: "ASUS",
  price: 1299.0,
  currency: "USD",
};
const MOUSE = { id: "ACC-MX3S", name: "MX Master 3S", category: "Accessories/Mice", brand: "Logitech", price: 99.99, currency: "USD" };

async function bundle() {
  const result = await build({
    entryPoints: [join(HERE, "entry.js")],
    bundle: true,
    format: "iife",
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

function pageHtml() {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Zenbook 14 OLED | Shop</title></head>
<body style="height: 4000px"><h1>Zenbook 14 OLED</h1><p>14" OLED laptop.</p>
<script src="/tracker.js"></script></body></html>`;
}

function startServer(script) {
  const captured = [];
  let lastPostAt = 0;
  const server = http.createServer((req, res) => {
    const host = (req.headers.host ?? "").split(":")[0];
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (host === COLLECTOR) {
        const origin = req.headers.origin ?? "*";
        const cors = {
          "Access-Control-Allow-Origin": origin,
          "Access-Control-Allow-Credentials": "true",
          Vary: "Origin",
        };
        if (req.method === "OPTIONS") {
          res.writeHead(204, {
            ...cors,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": req.headers["access-control-request-headers"] ?? "",
            "Access-Control-Max-Age": "600",
          });
          res.end();
          return;
        }
        if (req.method === "POST" && req.url === TP2_PATH) {
          lastPostAt = Date.now();
          const headers = { ...req.headers };
          delete headers.host;
          delete headers.connection;
          captured.push({
            method: req.method,
            path: req.url,
            headers,
            body: Buffer.concat(chunks).toString("utf8"),
            received_at_ms: lastPostAt,
          });
          res.writeHead(200, { ...cors, "Content-Type": "application/json" });
          res.end('{"accepted":true}');
          return;
        }
        res.writeHead(404);
        res.end();
        return;
      }
      if (host === SHOP && req.method === "GET") {
        if (req.url === "/tracker.js") {
          res.writeHead(200, { "Content-Type": "text/javascript" });
          res.end(script);
          return;
        }
        res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
        res.end(pageHtml());
        return;
      }
      res.writeHead(404);
      res.end();
    });
  });
  return new Promise((ok) =>
    server.listen(0, "127.0.0.1", () =>
      ok({ server, captured, port: server.address().port, lastPost: () => lastPostAt }),
    ),
  );
}

async function runScenario(browser, scenario, state) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const failures = [];
  page.on("pageerror", (err) => failures.push(String(err)));
  await page.goto(PAGE_URL, { referer: REFERRER, waitUntil: "load" });
  await page.waitForFunction(() => window.capture !== undefined);
  const first = state.captured.length;

  await page.evaluate(
    ({ collector, token, encodeBase64 }) => {
      const c = window.capture;
      c.newTracker("sp", `http://${collector}`, {
        appId: "shop-web",
        platform: "web",
        eventMethod: "post",
        bufferSize: 4,
        encodeBase64,
        customHeaders: { Authorization: `Bearer ${token}` },
        contexts: { webPage: true },
        plugins: [c.SnowplowEcommercePlugin()],
      });
      // A body claiming a user: the API must ignore it (identity comes from the token only).
      c.setUserId("spoofed-user@example.com");
      c.enableActivityTracking({ minimumVisitLength: 1, heartbeatDelay: 1 });
      c.trackPageView({ title: "Zenbook 14 OLED | Shop" });
    },
    { collector: COLLECTOR, token: TOKEN, encodeBase64: scenario.encodeBase64 },
  );

  // Activity for page pings: scroll and move the mouse for a few heartbeats.
  for (let i = 0; i < 8; i++) {
    await page.mouse.move(100 + i * 40, 200 + i * 10);
    await page.mouse.wheel(0, 250);
    await page.waitForTimeout(400);
  }

  await page.evaluate(
    ({ product, mouse }) => {
      const c = window.capture;
      const productEntity = (p) => ({ schema: "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0", data: p });
      // Structured events: a GA4 action with a product entity, a GA4 action without one, and a custom one.
      c.trackStructEvent({ category: "ecommerce", action: "add_to_cart", label: product.id, value: product.price, context: [productEntity(product)] });
      c.trackStructEvent({ category: "site", action: "search", label: "oled laptop" });
      c.trackStructEvent({ category: "Video Player", action: "play clicked", label: "zenbook-review", property: "hero", value: 12 });
      // Self-describing e-commerce events (the plugin's snowplow_ecommerce_action schema and its entities).
      c.trackProductView(product);
      c.trackAddToCart({ products: [{ ...product, quantity: 1 }, { ...mouse, quantity: 2 }], total_value: product.price + 2 * mouse.price, currency: "USD" });
      c.trackRemoveFromCart({ products: [{ ...mouse, quantity: 1 }], total_value: product.price + mouse.price, currency: "USD" });
      // The checkout step carries the cart's products as entities (GA4's begin_checkout has items).
      c.trackCheckoutStep({
        step: 1,
        delivery_method: "standard",
        context: [productEntity({ ...product, quantity: 1 }), productEntity({ ...mouse, quantity: 1 })],
      });
      c.trackTransaction({
        transaction_id: "T-10042",
        revenue: 1398.99,
        currency: "USD",
        payment_method: "card",
        total_quantity: 2,
        tax: 0,
        shipping: 0,
        products: [{ ...product, quantity: 1 }, { ...mouse, quantity: 1 }],
      });
      c.trackRefund({ transaction_id: "T-10042", currency: "USD", refund_amount: 99.99, refund_reason: "changed mind", products: [{ ...mouse, quantity: 1 }] });
      // A self-describing event of the shop's own schema.
      c.trackSelfDescribingEvent({ event: { schema: "iglu:com.example.shop/newsletter_signup/jsonschema/1-0-0", data: { list: "deals", placement: "footer" } } });
      c.flushBuffer();
    },
    { product: PRODUCT, mouse: MOUSE },
  );

  const started = Date.now();
  while (Date.now() - started < MAX_WAIT_MS) {
    await page.waitForTimeout(200);
    if (state.captured.length > first && Date.now() - state.lastPost() > QUIET_MS) break;
  }
  await context.close();
  if (failures.length) throw new Error(`page errors in ${scenario.name}: ${failures.join("; ")}`);
  const requests = state.captured.slice(first);
  if (!requests.length) throw new Error(`no tp2 request captured for ${scenario.name}`);
  return requests;
}

function versionOf(pkg) {
  return JSON.parse(readFileSync(join(HERE, "node_modules", pkg, "package.json"), "utf8")).version;
}

async function main() {
  const script = await bundle();
  const state = await startServer(script);
  const rules = `MAP ${SHOP} 127.0.0.1:${state.port}, MAP ${COLLECTOR} 127.0.0.1:${state.port}`;
  // playwright-core starts Chromium with a fresh temporary profile (--user-data-dir) of its own.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      ...FLAGS,
      `--host-resolver-rules=${rules}`,
    ],
  });
  const chromiumVersion = execFileSync(CHROMIUM, ["--version"], { encoding: "utf8" }).trim();
  mkdirSync(OUT_DIR, { recursive: true });
  try {
    for (const scenario of SCENARIOS) {
      const requests = await runScenario(browser, scenario, state);
      const fixture = {
        captured_with: {
          tracker: `@snowplow/browser-tracker ${versionOf("@snowplow/browser-tracker")}`,
          plugin: `@snowplow/browser-plugin-snowplow-ecommerce ${versionOf("@snowplow/browser-plugin-snowplow-ecommerce")}`,
          browser: chromiumVersion,
          script: "web/snowplow-capture/capture.mjs",
        },
        scenario: { name: scenario.name, encodeBase64: scenario.encodeBase64, page_url: PAGE_URL, referrer: REFERRER },
        requests,
      };
      const path = join(OUT_DIR, `${scenario.name}.json`);
      writeFileSync(path, `${JSON.stringify(fixture, null, 2)}\n`);
      const events = requests.reduce((n, r) => n + JSON.parse(r.body).data.length, 0);
      console.log(`${path}: ${requests.length} request(s), ${events} event(s)`);
    }
  } finally {
    await browser.close();
    state.server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
