// The native contract's event shape (docs/openapi.json, events[]): what track(type, params) puts on the wire.
//
// An event is {event_id, event_type, occurred_at, page?, items?, value?, currency?, transaction_id?, properties?}.
// Parameters with a field of their own go there; every other parameter (search_term, item_list_id, payment_type,
// shipping, heartbeat_s, ...) goes into `properties`, as GA4 keeps event parameters.

// The pipeline's event names (clickstream.core.schema.GA4_EVENT_TYPES; tests/unit/core/test_event_names.py holds them equal); anything else is sent
// as `custom:<name>`, the contract's namespace for a site's own events.
export const NAMES = [
  "page_view",
  "page_ping",
  "view_item_list",
  "select_item",
  "view_item",
  "search",
  "add_to_cart",
  "remove_from_cart",
  "view_cart",
  "begin_checkout",
  "add_payment_info",
  "purchase",
  "refund",
  "login",
  "sign_up",
];

const FIELDS = ["value", "currency", "transaction_id", "page"];
// Events whose value, when the caller gives none, is the sum of price x quantity over their items (as GA4 does).
const VALUED = ["view_item", "add_to_cart", "remove_from_cart", "view_cart", "begin_checkout", "add_payment_info"];

export const money = (x) => Math.round(x * 100) / 100;

// A GA4 name as is; anything else as custom:<name> with the characters the pipeline accepts there
// ([A-Za-z0-9_] first, then also . : / -; at most 120), others replaced by "_".
export function eventType(type) {
  type = String(type);
  if (NAMES.includes(type)) return type;
  const name = type.replace(/^custom:/, "").replace(/[^\w.:/-]/g, "_").slice(0, 120);
  return "custom:" + (/^\w/.test(name) ? name : ("_" + name).slice(0, 120));
}

// An item in the contract's names; GA4's own names (item_id, item_name, item_category, item_brand) are accepted.
export function item(i) {
  const out = {
    product_id: String(i.product_id ?? i.item_id),
    name: i.name ?? i.item_name,
    category: i.category ?? i.item_category,
    brand: i.brand ?? i.item_brand,
    price: i.price,
    quantity: i.quantity ?? 1,
  };
  for (const k in out) if (out[k] == null) delete out[k];
  return out;
}

// The event's fields (everything but its id, type, time and default page) from the caller's parameters.
export function fields(type, params, currency) {
  const out = {};
  const props = {};
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined) continue;
    if (k === "items" || k === "item") out.items = [].concat(v).map(item);
    else if (FIELDS.includes(k)) out[k] = v;
    else if (k === "properties") Object.assign(props, v);
    else props[k] = v;
  }
  if (out.value == null && out.items && VALUED.includes(type)) {
    out.value = out.items.reduce((sum, i) => sum + (i.price || 0) * i.quantity, 0);
  }
  if (typeof out.value == "number") {
    out.value = money(out.value);
    out.currency = out.currency || currency;
  }
  if (Object.keys(props).length) out.properties = props;
  return out;
}
