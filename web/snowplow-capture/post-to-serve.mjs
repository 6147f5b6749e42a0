// The real Snowplow browser tracker, with its default settings, posting from a page of another origin to a running
// `clickstream serve`, in Debian's headless Chromium. Used by tests/e2e/test_snowplow_tracker_browser.py.
//
// A tiny HTTP server on 127.0.0.1 serves the shop's page and the bundled tracker (entry.js, bundled by esbuild);
// the page is opened as http://localhost:<port>/, so the collector (http://127.0.0.1:<serve port>) is another
// origin: the tracker's fetch (credentials: 'include' by default) with its customHeaders (Authorization) goes
// through a CORS preflight, as it would against API Gateway. The tracker is configured with an app id and the
// Authorization header only. Every tp2 POST's outcome, failed request, console message and the `credentials` of
// every fetch the tracker made are printed as one JSON document on stdout.
//
// Usage: node post-to-serve.mjs COLLECTOR_URL TOKEN
import http from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium } from "playwright-core";

import { CHROMIUM, FLAGS } from "../test-support/chromium.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const TP2_PATH = "/com.snowplowanalytics.snowplow/tp2";
const EXPECTED_EVENTS = 3;
const MAX_WAIT_MS = 20000;

const [collector, token] = process.argv.slice(2);
if (!collector || !token) {
  console.error("usage: node post-to-serve.mjs COLLECTOR_URL TOKEN");
  process.exit(2);
}

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

function startShop(script) {
  const server = http.createServer((req, res) => {
    if (req.url === "/tracker.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(script);
      return;
    }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Zenbook 14 OLED | Shop</title></head>
<body><h1>Zenbook 14 OLED</h1><script src="/tracker.js"></script></body></html>`);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

// Records the credentials mode of every fetch the page makes, and passes the call on unchanged.
const FETCH_SPY = `(() => {
  const original = window.fetch;
  window.__fetches = [];
  window.fetch = function (input, init) {
    const credentials = init && init.credentials ? init.credentials : input instanceof Request ? input.credentials : "same-origin";
    window.__fetches.push({ url: String(input instanceof Request ? input.url : input), credentials });
    return original.apply(this, arguments);
  };
})();`;

async function main() {
  const shop = await startShop(await bundle());
  const pageUrl = `http://localhost:${shop.address().port}/laptops/zenbook-14`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
  });
  const result = { page: pageUrl, collector, posts: [], failed: [], console: [], errors: [], fetches: [] };
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.addInitScript(FETCH_SPY);
    page.on("console", (msg) => result.console.push(`${msg.type()}: ${msg.text()}`));
    page.on("pageerror", (err) => result.errors.push(String(err)));
    page.on("requestfailed", (req) => {
      if (req.url().includes(TP2_PATH)) result.failed.push({ url: req.url(), error: req.failure()?.errorText ?? "" });
    });
    page.on("response", async (resp) => {
      const req = resp.request();
      if (req.method() === "POST" && req.url().includes(TP2_PATH)) {
        let body = "";
        try {
          body = await resp.text();
        } catch (err) {
          body = `(unreadable: ${err})`;
        }
        let accepted = 0;
        try {
          accepted = JSON.parse(body).accepted ?? 0;
        } catch {
          accepted = 0;
        }
        result.posts.push({ status: resp.status(), body, accepted, authorization: Boolean(req.headers().authorization) });
      }
    });
    await page.goto(pageUrl, { waitUntil: "load" });
    await page.waitForFunction(() => window.capture !== undefined);
    await page.evaluate(
      ({ collector, token }) => {
        const c = window.capture;
        c.newTracker("sp", collector, { appId: "shop-web", customHeaders: { Authorization: `Bearer ${token}` } });
        c.trackPageView();
        c.trackStructEvent({ category: "newsletter", action: "signup", label: "footer" });
        c.trackStructEvent({ category: "site", action: "search", label: "oled laptop" });
      },
      { collector, token },
    );
    const started = Date.now();
    while (Date.now() - started < MAX_WAIT_MS) {
      await page.waitForTimeout(200);
      const accepted = result.posts.reduce((n, p) => n + (p.status === 202 ? p.accepted : 0), 0);
      // Done once every event was accepted; a refusal is final enough after a few seconds (the tracker retries).
      if (accepted >= EXPECTED_EVENTS) break;
      if (result.failed.length && Date.now() - started > 5000) break;
    }
    await page.waitForTimeout(300);
    result.fetches = await page.evaluate(() => window.__fetches);
    await context.close();
  } finally {
    await browser.close();
    shop.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
