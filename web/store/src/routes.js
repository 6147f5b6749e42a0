// The store's URLs (real paths, history API): the same shapes as the demo generator's pages.
export const href = {
  home: () => "/",
  category: (slug) => `/c/${slug}`,
  product: (p) => `/p/${encodeURIComponent(p.product_id)}/${p.slug}`,
  search: (q) => `/search?${new URLSearchParams({ q })}`,
  cart: () => "/cart",
  checkout: () => "/checkout",
  payment: () => "/checkout/payment",
  confirmation: (order) => `/checkout/confirmation?${new URLSearchParams({ order })}`,
  account: () => "/account",
  callback: () => "/auth/callback",
};

const RULES = [
  [/^\/$/, () => ({ name: "home" })],
  [/^\/c\/([a-z0-9-]+)\/?$/, (m) => ({ name: "category", slug: m[1] })],
  [/^\/p\/([^/]+)(?:\/[^/]*)?\/?$/, (m) => ({ name: "product", id: safeDecode(m[1]) })],
  [/^\/search\/?$/, (m, q) => ({ name: "search", q: q.get("q") || "" })],
  [/^\/cart\/?$/, () => ({ name: "cart" })],
  [/^\/checkout\/?$/, () => ({ name: "checkout" })],
  [/^\/checkout\/payment\/?$/, () => ({ name: "payment" })],
  [/^\/checkout\/confirmation\/?$/, (m, q) => ({ name: "confirmation", order: q.get("order") || "" })],
  [/^\/account\/?$/, () => ({ name: "account" })],
  [/^\/auth\/callback\/?$/, (m, q) => ({ name: "callback", code: q.get("code"), state: q.get("state"), error: q.get("error") })],
];

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// The route of a path and query string: {name, ...params}; unknown paths are {name: "not-found"}.
export function match(pathname, search = "") {
  const q = new URLSearchParams(search);
  for (const [re, make] of RULES) {
    const m = re.exec(pathname);
    if (m) return make(m, q);
  }
  return { name: "not-found" };
}

// A same-origin path to come back to after sign-in; anything else (another origin, //host, odd schemes) is "/".
export function safeReturnPath(path) {
  return typeof path == "string" && /^\/(?![/\\])/.test(path) && !/[\u0000-\u001f]/.test(path) ? path : "/";
}

// Whether a click on a link should be handled in the page (a plain left click on a same-origin link).
export function isInternalClick(event, anchor, origin) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  if (!anchor || anchor.target || anchor.hasAttribute("download")) return false;
  const url = new URL(anchor.href, origin);
  return url.origin == origin;
}
