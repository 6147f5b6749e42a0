// The catalog: the one catalog.json of the repository (the demo generator reads the same file), bundled by esbuild;
// lookups, featured products, search.
import data from "../../../src/clickstream_local/generator/catalog.json" with { type: "json" };

export const CURRENCY = data.currency;
export const categories = data.categories;
export const products = data.products;

const byId = new Map(products.map((p) => [p.product_id, p]));
const bySlug = new Map(categories.map((c) => [c.slug, c]));

export const product = (id) => byId.get(id) || null;
export const category = (slug) => bySlug.get(slug) || null;
export const categoryOf = (p) => categories.find((c) => c.name == p.category);
export const inCategory = (c) => products.filter((p) => p.category == c.name);

// The home page's featured products: the first two of each category.
export const featured = () => categories.flatMap((c) => inCategory(c).slice(0, 2));

const fold = (s) =>
  s
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();

// Products whose name, brand or category contains every word of the query (case and accents ignored).
export function search(query) {
  const words = fold(String(query).slice(0, 200)).split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  return products.filter((p) => {
    const text = fold(`${p.name} ${p.brand} ${p.category}`);
    return words.every((w) => text.includes(w));
  });
}

// The tracker's item for a product (the contract's names).
export const item = (p, quantity = 1) => ({
  product_id: p.product_id,
  name: p.name,
  category: p.category,
  brand: p.brand,
  price: p.price,
  quantity,
});
