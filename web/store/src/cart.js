// The cart: lines of {id, qty}, kept in localStorage; totals in integer cents (no floating-point drift).
export const MAX_QTY = 99;
export const FREE_SHIPPING_CENTS = 5000; // orders of $50 or more ship free
export const SHIPPING_CENTS = 799;

const cents = (price) => Math.round(price * 100);
export const dollars = (c) => Math.round(c) / 100;

const clamp = (qty) => Math.max(0, Math.min(MAX_QTY, Math.floor(Number(qty)) || 0));

// A new cart with `qty` more of product `id` (a line never goes past MAX_QTY).
export function add(cart, id, qty = 1) {
  const found = cart.find((l) => l.id == id);
  if (!found) return clamp(qty) ? [...cart, { id, qty: clamp(qty) }] : cart;
  return cart.map((l) => (l.id == id ? { id, qty: clamp(l.qty + clamp(qty)) } : l));
}

// A new cart with the line of `id` at `qty` (0 removes it).
export function setQty(cart, id, qty) {
  const q = clamp(qty);
  return q ? cart.map((l) => (l.id == id ? { id, qty: q } : l)) : cart.filter((l) => l.id != id);
}

export const remove = (cart, id) => cart.filter((l) => l.id != id);
export const count = (cart) => cart.reduce((n, l) => n + l.qty, 0);

// The cart's lines with their products (lines of unknown products are left out), and its totals.
export function priced(cart, lookup) {
  const lines = [];
  for (const l of cart) {
    const p = lookup(l.id);
    if (p && l.qty > 0) lines.push({ product: p, qty: l.qty, cents: cents(p.price) * l.qty });
  }
  const subtotal = lines.reduce((s, l) => s + l.cents, 0);
  const shipping = !lines.length || subtotal >= FREE_SHIPPING_CENTS ? 0 : SHIPPING_CENTS;
  return { lines, subtotal, shipping, total: subtotal + shipping };
}

// A cart read back from storage: anything that is not a list of {id: string, qty: 1..99} is dropped.
export function parse(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  const out = [];
  for (const l of value) {
    if (l && typeof l.id == "string" && clamp(l.qty) && !out.some((o) => o.id == l.id)) out.push({ id: l.id, qty: clamp(l.qty) });
  }
  return out;
}

export function formatMoney(c, currency = "USD") {
  return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(dollars(c));
}
