// Past orders, kept in localStorage per user (the ID token's sub; "guest" when signed out), newest first.
export const MAX_ORDERS = 50;
const key = (owner) => `store_orders:${owner || "guest"}`;

export function list(storage, owner) {
  try {
    const v = JSON.parse(storage.getItem(key(owner)));
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

export function save(storage, owner, order) {
  const orders = [order, ...list(storage, owner).filter((o) => o.id != order.id)].slice(0, MAX_ORDERS);
  storage.setItem(key(owner), JSON.stringify(orders));
}

export const find = (storage, owner, id) => list(storage, owner).find((o) => o.id == id) || null;

// An order id: T- and 12 random base-36 characters (about 62 bits).
export function newOrderId(c = crypto) {
  const bytes = c.getRandomValues(new Uint8Array(12));
  return "T-" + [...bytes].map((b) => (b % 36).toString(36)).join("").toUpperCase();
}

// The order for a priced cart: what the confirmation page shows and what `purchase` sends.
export function makeOrder(id, pricedCart, placedAt, currency) {
  return {
    id,
    placedAt,
    currency,
    items: pricedCart.lines.map((l) => ({
      product_id: l.product.product_id,
      name: l.product.name,
      category: l.product.category,
      brand: l.product.brand,
      price: l.product.price,
      quantity: l.qty,
    })),
    subtotal: pricedCart.subtotal,
    shipping: pricedCart.shipping,
    total: pricedCart.total,
  };
}
