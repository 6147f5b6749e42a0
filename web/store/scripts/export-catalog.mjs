// Writes web/store/src/catalog.json from the demo generator's catalog (clickstream.local.generator.catalog()):
// the same product ids, names, categories, brands, prices and URL slugs.
//
//   node store/scripts/export-catalog.mjs          write the file
//   node store/scripts/export-catalog.mjs --check  exit 1 when the file differs from what the generator says
//
// Python: $PYTHON, else the repository's .venv/bin/python, else python3 (3.11+; only the standard library is
// imported).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../../..");
export const CATALOG_FILE = join(HERE, "../src/catalog.json");

const PROGRAM = `
import json
from clickstream.local import generator as g
categories = [{"name": name, "slug": slug} for name, _code, slug, _weight, _entries in g._CATALOG_SPEC]
products = [
    {"product_id": p.product_id, "name": p.name, "category": p.category, "brand": p.brand, "price": p.price,
     "slug": p.slug}
    for p in g.catalog()
]
print(json.dumps({"currency": g.CURRENCY, "categories": categories, "products": products}, indent=2,
                 ensure_ascii=False))
`;

export function python() {
  if (process.env.PYTHON) return process.env.PYTHON;
  const venv = join(ROOT, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

export function exportCatalog() {
  return execFileSync(python(), ["-c", PROGRAM], {
    env: { ...process.env, PYTHONPATH: join(ROOT, "layers/domain") },
    encoding: "utf8",
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = exportCatalog();
  if (process.argv.includes("--check")) {
    const same = existsSync(CATALOG_FILE) && readFileSync(CATALOG_FILE, "utf8") === text;
    console.log(same ? "catalog.json matches the generator" : "catalog.json differs from the generator: run npm run catalog");
    process.exit(same ? 0 : 1);
  }
  writeFileSync(CATALOG_FILE, text);
  console.log(`wrote ${CATALOG_FILE}: ${JSON.parse(text).products.length} products`);
}
