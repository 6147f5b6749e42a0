// The size budget: the minified tracker, aws4fetch's signer included, is at most 8 KB gzip'd.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { constants, gzipSync } from "node:zlib";

import { build } from "../build.mjs";

export const BUDGET = 8 * 1024;

test("clickstream.min.js, gzip'd, is at most 8 KB (signer included)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tracker-size-"));
  try {
    await build({ outdir: dir, only: "min" }); // the file `make web` publishes
    const code = readFileSync(join(dir, "clickstream.min.js"));
    assert.ok(code.includes("AWS4-HMAC-SHA256") && code.includes("aws4_request"), "the signer is in the bundle");
    const gz = gzipSync(code, { level: constants.Z_BEST_COMPRESSION }).length;
    console.log(`# tracker: ${code.length} bytes minified, ${gz} bytes gzip -9 (budget ${BUDGET})`);
    assert.ok(gz <= BUDGET, `${gz} bytes gzip'd > ${BUDGET}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
