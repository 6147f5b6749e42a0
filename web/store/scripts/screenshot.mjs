// docs/store.png: the built store's home page (store/dist, `npm run build` first) in Debian's headless Chromium,
// served by the browser tests' fake server with analytics consent already answered.
//
//   node store/scripts/screenshot.mjs [OUT]   (default: ../../docs/store.png)
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { startFakeServer } from "../../test-support/fake-server.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = resolve(process.argv[2] ?? join(HERE, "../../../docs/store.png"));
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const server = await startFakeServer({ dist: join(HERE, "../dist") });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium", args: FLAGS, headless: true });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  await page.goto(server.origin + "/");
  await page.getByTestId("product-card").first().waitFor();
  await page.screenshot({ path: OUT });
  console.log(`wrote ${OUT}`);
} finally {
  await browser.close();
  await server.close();
}
