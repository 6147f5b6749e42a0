// The size budget: the minified tracker, aws4fetch's signer included, is at most 8 KB gzip'd.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { constants, gzipSync } from "node:zlib";

import { build } from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
export const BUDGET = 8 * 1024;

test("clickstream.min.js, gzip'd, is at most 8 KB (signer included)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tracker-size-"));
  try {
    const outfile = join(dir, "clickstream.min.js");
    // the same options as tracker/build.mjs
    const result = await build({
      entryPoints: [join(HERE, "../src/index.js")],
      outfile,
      bundle: true,
      format: "esm",
      target: "es2020",
      minify: true,
      legalComments: "eof",
      metafile: true,
      logLevel: "silent",
    });
    const code = readFileSync(outfile);
    const gz = gzipSync(code, { level: constants.Z_BEST_COMPRESSION }).length;
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((p) => p.includes("aws4fetch")), "the signer is in the bundle");
    console.log(`# tracker: ${code.length} bytes minified, ${gz} bytes gzip -9 (budget ${BUDGET})`);
    assert.ok(gz <= BUDGET, `${gz} bytes gzip'd > ${BUDGET}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
