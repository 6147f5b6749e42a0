// The store's build carries the repository's one catalog (src/clickstream_local/generator/catalog.json, which the
// demo generator reads too): every product with its id, name, category, brand, price and slug, exactly as written.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runInNewContext } from "node:vm";

import { build } from "../build.mjs";

const CATALOG = join(dirname(fileURLToPath(import.meta.url)), "../../../src/clickstream_local/generator/catalog.json");

// The catalog's object literal inside the minified bundle: from `{currency:"…",categories:[` to its closing brace
// (strings skipped, quotes and escapes honoured), evaluated on its own as a data literal.
function catalogInBundle(js) {
  const start = js.search(/\{currency:(["'`])[A-Z]{3}\1,categories:\[/);
  assert.ok(start >= 0, "no catalog literal ({currency:…,categories:[…]}) in the bundle");
  let depth = 0;
  for (let i = start; i < js.length; i++) {
    const ch = js[i];
    if (ch == '"' || ch == "'" || ch == "`") {
      for (i++; js[i] != ch; i++) if (js[i] == "\\") i++;
    } else if (ch == "{" || ch == "[") depth++;
    else if (ch == "}" || ch == "]") {
      depth--;
      if (depth == 0) return runInNewContext(`(${js.slice(start, i + 1)})`, Object.create(null));
    }
  }
  assert.fail("the catalog literal in the bundle is not closed");
}

test("the store's build contains catalog.json's products, every field as the generator reads them", async () => {
  const catalog = JSON.parse(readFileSync(CATALOG, "utf8"));
  const tmp = mkdtempSync(join(tmpdir(), "store-build-"));
  try {
    const { outdir, js } = await build({ outdir: join(tmp, "dist") });
    const bundled = catalogInBundle(readFileSync(join(outdir, "assets", js), "utf8"));
    assert.equal(bundled.products.length, catalog.products.length);
    // JSON round trip: the vm context's objects compare by value with the file's
    assert.deepEqual(JSON.parse(JSON.stringify(bundled)), catalog);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
