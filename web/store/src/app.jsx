// The storefront: Preact components, one per page, and a small history-API router.
//
// Every page, once rendered, sets the document title and tracks its page view (clickstream.page()), then its
// GA4 event (view_item_list, view_item, view_cart, begin_checkout ...). Test hooks are data-testid attributes
// (listed in web/README.md).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";

import clickstream from "../../tracker/src/index.js";
import * as cartOps from "./cart.js";
import * as catalog from "./catalog.js";
import * as orders from "./orders.js";
import { href, isInternalClick, match } from "./routes.js";

const SHOP = "Example Electronics";
const CART_KEY = "store_cart";
const SHIPPING_KEY = "store_shipping";
const money = (cents) => cartOps.formatMoney(cents, catalog.CURRENCY);
const price = (p) => money(Math.round(p.price * 100));

// ---- state shared by the pages --------------------------------------------------------------------------------

function useLocation() {
  const read = () => ({ path: location.pathname, search: location.search });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const onPop = () => setLoc(read());
    addEventListener("popstate", onPop);
    return () => removeEventListener("popstate", onPop);
  }, []);
  const navigate = (to, { replace = false } = {}) => {
    history[replace ? "replaceState" : "pushState"](null, "", to);
    setLoc(read());
    scrollTo(0, 0);
  };
  return [loc, navigate];
}

function useCart() {
  const [cart, setCart] = useState(() => cartOps.parse(localStorage.getItem(CART_KEY)));
  useEffect(() => {
    const onStorage = (e) => e.key == CART_KEY && setCart(cartOps.parse(e.newValue));
    addEventListener("storage", onStorage);
    return () => removeEventListener("storage", onStorage);
  }, []);
  const update = (next) => {
    localStorage.setItem(CART_KEY, JSON.stringify(next));
    setCart(next);
  };
  return [cart, update];
}

// The page's title and page view, then its own events: once per URL.
function usePage(title, key, after) {
  useEffect(() => {
    document.title = title ? `${title} | ${SHOP}` : SHOP;
    clickstream.page();
    if (after) after();
  }, [key]);
}

// ---- pieces -----------------------------------------------------------------------------------------------------

function ProductCard({ p, list }) {
  const select = () => clickstream.select_item({ item_list_id: list.id, item_list_name: list.name, items: [catalog.item(p)] });
  return (
    <li class="card" data-testid="product-card" data-product-id={p.product_id}>
      <a href={href.product(p)} onClick={select}>
        <span class="thumb" aria-hidden="true">
          {p.brand}
        </span>
        <span class="name">{p.name}</span>
      </a>
      <span class="meta">{p.category}</span>
      <span class="price">{price(p)}</span>
    </li>
  );
}

function Grid({ items, list, label }) {
  return (
    <ul class="grid" aria-label={label}>
      {items.map((p) => (
        <ProductCard key={p.product_id} p={p} list={list} />
      ))}
    </ul>
  );
}

const listEvent = (list, items) =>
  clickstream.view_item_list({ item_list_id: list.id, item_list_name: list.name, items: items.map((p) => catalog.item(p)) });

// ---- pages ------------------------------------------------------------------------------------------------------

function Home({ url }) {
  const items = catalog.featured();
  const list = { id: "featured", name: "Featured" };
  usePage("", url, () => listEvent(list, items));
  return (
    <>
      <h1>Laptops, monitors and everything around them</h1>
      <p class="lead">Free shipping on orders of $50 or more.</p>
      <h2>Featured</h2>
      <Grid items={items} list={list} label="Featured products" />
    </>
  );
}

function Category({ url, slug }) {
  const c = catalog.category(slug);
  const items = c ? catalog.inCategory(c) : [];
  const list = { id: slug, name: c ? c.name : slug };
  usePage(c ? c.name : "Not found", url, () => c && listEvent(list, items));
  if (!c) return <NotFoundBody />;
  return (
    <>
      <h1>{c.name}</h1>
      <p>{items.length} products</p>
      <Grid items={items} list={list} label={c.name} />
    </>
  );
}

function Search({ url, q }) {
  const items = useMemo(() => catalog.search(q), [q]);
  const list = { id: "search_results", name: "Search results" };
  usePage(q ? `Search: ${q}` : "Search", url, () => {
    if (!q.trim()) return;
    clickstream.search({ search_term: q.slice(0, 200) });
    if (items.length) listEvent(list, items);
  });
  return (
    <>
      <h1>{q ? `Results for “${q}”` : "Search"}</h1>
      <p role="status">{q ? `${items.length} ${items.length == 1 ? "product" : "products"} found` : "Type what you are looking for in the search box."}</p>
      {items.length > 0 && <Grid items={items} list={list} label="Search results" />}
    </>
  );
}

function Product({ url, id, cart, setCart }) {
  const p = catalog.product(id);
  const [qty, setQty] = useState(1);
  const [added, setAdded] = useState(0);
  usePage(p ? p.name : "Not found", url, () => {
    setQty(1);
    setAdded(0);
    if (p) clickstream.view_item({ items: [catalog.item(p)] });
  });
  if (!p) return <NotFoundBody />;
  const c = catalog.categoryOf(p);
  const related = catalog.inCategory(c).filter((o) => o.product_id != p.product_id).slice(0, 4);
  const addToCart = (e) => {
    e.preventDefault();
    setCart(cartOps.add(cart, p.product_id, qty));
    clickstream.add_to_cart({ items: [catalog.item(p, qty)] });
    setAdded((n) => n + qty);
  };
  return (
    <>
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href={href.category(c.slug)}>{c.name}</a>
      </nav>
      <article class="product">
        <div class="thumb big" aria-hidden="true">
          {p.brand}
        </div>
        <div>
          <h1>{p.name}</h1>
          <p class="meta">
            {p.brand} · {p.category} · <span class="sku">{p.product_id}</span>
          </p>
          <p class="price big-price">{price(p)}</p>
          <form class="buy" onSubmit={addToCart}>
            <label for="qty">Quantity</label>
            <select id="qty" value={qty} onChange={(e) => setQty(+e.currentTarget.value)}>
              {[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => (
                <option value={n}>{n}</option>
              ))}
            </select>
            <button type="submit" class="primary" data-testid="add-to-cart">
              Add to cart
            </button>
          </form>
          <p role="status" class="added">
            {added > 0 && (
              <>
                Added {added} to your cart. <a href={href.cart()}>View cart</a>
              </>
            )}
          </p>
        </div>
      </article>
      {related.length > 0 && (
        <>
          <h2>More {c.name.toLowerCase()}</h2>
          <Grid items={related} list={{ id: "related", name: "Related products" }} label={`More ${c.name}`} />
        </>
      )}
    </>
  );
}

function Cart({ url, cart, setCart, navigate }) {
  const priced = cartOps.priced(cart, catalog.product);
  const items = priced.lines.map((l) => catalog.item(l.product, l.qty));
  usePage("Cart", url, () => clickstream.view_cart({ items }));
  const change = (l, qty) => {
    qty = Math.max(0, Math.min(cartOps.MAX_QTY, qty));
    const delta = qty - l.qty;
    if (!delta) return;
    setCart(cartOps.setQty(cart, l.product.product_id, qty));
    const event = delta > 0 ? "add_to_cart" : "remove_from_cart";
    clickstream[event]({ items: [catalog.item(l.product, Math.abs(delta))] });
  };
  if (!priced.lines.length) {
    return (
      <>
        <h1>Your cart</h1>
        <p>Your cart is empty.</p>
        <p>
          <a href={href.home()}>Continue shopping</a>
        </p>
      </>
    );
  }
  return (
    <>
      <h1>Your cart</h1>
      <ul class="lines" aria-label="Cart">
        {priced.lines.map((l) => (
          <li class="line" data-testid="cart-line" data-product-id={l.product.product_id}>
            <a href={href.product(l.product)}>{l.product.name}</a>
            <span class="unit">{price(l.product)}</span>
            <label>
              <span class="visually-hidden">Quantity of {l.product.name}</span>
              <input
                type="number"
                min="0"
                max={cartOps.MAX_QTY}
                value={l.qty}
                data-testid="quantity"
                onChange={(e) => change(l, Math.floor(+e.currentTarget.value) || 0)}
              />
            </label>
            <span class="line-total">{money(l.cents)}</span>
            <button type="button" class="link" data-testid="remove-from-cart" onClick={() => change(l, 0)}>
              Remove<span class="visually-hidden"> {l.product.name}</span>
            </button>
          </li>
        ))}
      </ul>
      <Totals priced={priced} />
      <button type="button" class="primary" data-testid="checkout" onClick={() => navigate(href.checkout())}>
        Checkout
      </button>
    </>
  );
}

function Totals({ priced }) {
  return (
    <dl class="totals">
      <dt>Subtotal</dt>
      <dd>{money(priced.subtotal)}</dd>
      <dt>Shipping</dt>
      <dd>{priced.shipping ? money(priced.shipping) : "Free"}</dd>
      <dt>Total</dt>
      <dd data-testid="cart-total">{money(priced.total)}</dd>
    </dl>
  );
}

function EmptyCheckout() {
  return (
    <>
      <h1>Checkout</h1>
      <p>
        Your cart is empty. <a href={href.home()}>Continue shopping</a>
      </p>
    </>
  );
}

// An uncontrolled input (the browser keeps what is typed across re-renders); `value` is its initial value.
function Field({ id, label, value, ...props }) {
  return (
    <p class="field">
      <label for={id}>{label}</label>
      <input id={id} name={id} required defaultValue={value} {...props} />
    </p>
  );
}

function Checkout({ url, cart, user, navigate }) {
  const priced = cartOps.priced(cart, catalog.product);
  usePage("Checkout", url, () => {
    if (priced.lines.length) clickstream.begin_checkout({ items: priced.lines.map((l) => catalog.item(l.product, l.qty)) });
  });
  if (!priced.lines.length) return <EmptyCheckout />;
  let saved = {};
  try {
    saved = JSON.parse(sessionStorage.getItem(SHIPPING_KEY)) || {};
  } catch {}
  const submit = (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(e.currentTarget));
    sessionStorage.setItem(SHIPPING_KEY, JSON.stringify(data));
    navigate(href.payment());
  };
  return (
    <>
      <h1>Checkout</h1>
      <form class="form" onSubmit={submit} aria-describedby="ship-note">
        <h2>Shipping</h2>
        <p id="ship-note">Step 1 of 2. We ship to the address below.</p>
        <Field id="name" label="Full name" autocomplete="name" value={saved.name ?? user?.name ?? ""} />
        <Field id="email" label="Email" type="email" autocomplete="email" value={saved.email ?? user?.email ?? ""} />
        <Field id="address" label="Address" autocomplete="street-address" value={saved.address ?? ""} />
        <Field id="city" label="City" autocomplete="address-level2" value={saved.city ?? ""} />
        <Field id="postal" label="Postal code" autocomplete="postal-code" value={saved.postal ?? ""} />
        <Totals priced={priced} />
        <button type="submit" class="primary" data-testid="continue-to-payment">
          Continue to payment
        </button>
      </form>
    </>
  );
}

function Payment({ url, cart, setCart, user, navigate }) {
  const priced = cartOps.priced(cart, catalog.product);
  const [error, setError] = useState("");
  usePage("Payment", url);
  if (!priced.lines.length) return <EmptyCheckout />;
  const submit = (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(e.currentTarget));
    const digits = String(data.card).replace(/[\s-]/g, "");
    if (!/^\d{12,19}$/.test(digits)) return setError("The card number must have 12 to 19 digits.");
    if (!/^(0[1-9]|1[0-2])\/\d\d$/.test(String(data.expiry).trim())) return setError("The expiry date must look like MM/YY.");
    if (!/^\d{3,4}$/.test(String(data.cvc).trim())) return setError("The security code has 3 or 4 digits.");
    const items = priced.lines.map((l) => catalog.item(l.product, l.qty));
    clickstream.add_payment_info({ items, payment_type: "card" });
    const order = orders.makeOrder(orders.newOrderId(), priced, new Date().toISOString(), catalog.CURRENCY);
    orders.save(localStorage, user?.sub, order);
    clickstream.purchase({
      transaction_id: order.id,
      value: cartOps.dollars(order.total),
      currency: order.currency,
      items,
      shipping: cartOps.dollars(order.shipping),
    });
    setCart([]);
    sessionStorage.removeItem(SHIPPING_KEY);
    navigate(href.confirmation(order.id));
  };
  return (
    <>
      <h1>Payment</h1>
      <form class="form" onSubmit={submit} noValidate>
        <p>Step 2 of 2. This is a demo store: no card is charged, any 12 to 19 digits will do.</p>
        <Field id="cardname" label="Name on card" autocomplete="cc-name" value={user?.name ?? ""} />
        <Field id="card" label="Card number" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242" />
        <Field id="expiry" label="Expiry (MM/YY)" autocomplete="cc-exp" placeholder="12/29" />
        <Field id="cvc" label="Security code" inputmode="numeric" autocomplete="cc-csc" placeholder="123" />
        <p role="alert" class="error">
          {error}
        </p>
        <Totals priced={priced} />
        <button type="submit" class="primary" data-testid="place-order">
          Place order · {money(priced.total)}
        </button>
      </form>
    </>
  );
}

function Confirmation({ url, order: id, user }) {
  const order = orders.find(localStorage, user?.sub, id);
  usePage(order ? "Thank you" : "Order not found", url);
  if (!order) {
    return (
      <>
        <h1>Order not found</h1>
        <p>We could not find that order in this browser.</p>
      </>
    );
  }
  return (
    <section data-testid="order-confirmation" data-order-id={order.id} data-order-total={(order.total / 100).toFixed(2)}>
      <h1>Thank you for your order</h1>
      <p>
        Order <strong class="sku">{order.id}</strong>, total <strong>{money(order.total)}</strong>.
      </p>
      <OrderItems order={order} />
      <p>
        <a href={href.home()}>Continue shopping</a>
      </p>
    </section>
  );
}

function OrderItems({ order }) {
  return (
    <ul class="order-items">
      {order.items.map((i) => (
        <li>
          {i.quantity} × {i.name} — {money(Math.round(i.price * 100) * i.quantity)}
        </li>
      ))}
      {order.shipping > 0 && <li>Shipping — {money(order.shipping)}</li>}
    </ul>
  );
}

function Account({ url, user, signIn }) {
  usePage("Your account", url);
  const mine = orders.list(localStorage, user?.sub);
  return (
    <>
      <h1>Your account</h1>
      {user ? (
        <p>Signed in as {user.email || user["cognito:username"] || user.sub}.</p>
      ) : (
        <p>
          <button type="button" class="primary" onClick={signIn}>
            Sign in
          </button>{" "}
          to see the orders of your account.
        </p>
      )}
      <h2>{user ? "Past orders" : "Orders placed in this browser without signing in"}</h2>
      {mine.length ? (
        <ul class="orders" data-testid="account-orders">
          {mine.map((o) => (
            <li data-testid="order-row" data-order-id={o.id}>
              <a href={href.confirmation(o.id)} class="sku">
                {o.id}
              </a>{" "}
              · {new Date(o.placedAt).toLocaleDateString("en-US", { dateStyle: "medium" })} · {money(o.total)} ·{" "}
              {o.items.reduce((n, i) => n + i.quantity, 0)} items
            </li>
          ))}
        </ul>
      ) : (
        <p>No orders yet.</p>
      )}
    </>
  );
}

function Callback({ route, auth, onSignedIn, navigate }) {
  const [error, setError] = useState("");
  const once = useRef(false);
  useEffect(() => {
    if (once.current) return;
    once.current = true;
    document.title = `Signing in | ${SHOP}`;
    auth
      .complete(route)
      .then((returnTo) => {
        // the code and state leave the address bar before anything is tracked on this page
        navigate(returnTo, { replace: true });
        onSignedIn();
        clickstream.identify();
      })
      .catch((e) => setError(e.message || String(e)));
  }, []);
  return (
    <>
      <h1>Signing in</h1>
      <p role="status">{error ? "" : "One moment…"}</p>
      {error && (
        <p role="alert" class="error">
          {error} <a href={href.account()}>Back to your account</a>
        </p>
      )}
    </>
  );
}

function NotFoundBody() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        That page does not exist. <a href={href.home()}>Go to the home page</a>
      </p>
    </>
  );
}

function NotFound({ url }) {
  usePage("Page not found", url);
  return <NotFoundBody />;
}

function ConsentBanner({ onAnswer }) {
  return (
    <section class="consent" aria-label="Privacy choices" data-testid="consent-banner">
      <p>We would like to measure how this store is used (pages seen, products viewed, orders) to improve it. May we?</p>
      <div class="actions">
        <button type="button" class="primary" data-testid="consent-accept" onClick={() => onAnswer(true)}>
          Accept
        </button>
        <button type="button" data-testid="consent-decline" onClick={() => onAnswer(false)}>
          Decline
        </button>
      </div>
    </section>
  );
}

// ---- the shell --------------------------------------------------------------------------------------------------

export function App({ config, auth }) {
  const [loc, navigate] = useLocation();
  const [cart, setCart] = useCart();
  const [user, setUser] = useState(() => auth.user());
  const [consent, setConsent] = useState(() => clickstream.consentState());
  const main = useRef(null);
  const searchBox = useRef(null);
  const first = useRef(true);
  const route = match(loc.path, loc.search);
  const url = loc.path + loc.search;

  // Links are followed in the page (no reload); focus moves to the new page's content for screen readers.
  useEffect(() => {
    const onClick = (e) => {
      const a = e.target.closest && e.target.closest("a[href]");
      if (a && isInternalClick(e, a, location.origin)) {
        e.preventDefault();
        navigate(a.pathname + a.search);
      }
    };
    document.addEventListener("click", onClick);
    return () => document.removeEventListener("click", onClick);
  }, []);
  useEffect(() => {
    if (first.current) first.current = false;
    else if (main.current) main.current.focus();
    if (searchBox.current) searchBox.current.value = route.name == "search" ? route.q : "";
  }, [url]);

  // Before leaving the page (the Hosted UI) or the identity (sign-out), what is queued is sent and acknowledged,
  // within a second and a half: a batch still in flight when a page unloads is sent again by the next page.
  const flushed = () => Promise.race([clickstream.flush(), new Promise((r) => setTimeout(r, 1500))]);
  const signIn = async () => {
    const here = route.name == "callback" ? "/" : location.pathname + location.search;
    const url = await auth.signInUrl(here);
    await flushed();
    location.assign(url);
  };
  const signOut = async () => {
    // what the signed-in visit recorded leaves with the user's token, then a new anonymous id
    await flushed();
    clickstream.reset();
    auth.signOut();
    setUser(null);
    if (config.logoutUri) {
      const q = new URLSearchParams({ client_id: config.clientId, logout_uri: config.logoutUri });
      location.assign(`${(config.authDomain || "").replace(/\/+$/, "")}/logout?${q}`);
    } else navigate(href.home());
  };
  const onSearch = (e) => {
    e.preventDefault();
    const q = String(new FormData(e.currentTarget).get("q") || "").trim();
    if (q) navigate(href.search(q));
  };

  const props = { url, cart, setCart, user, navigate, signIn };
  let page;
  switch (route.name) {
    case "home":
      page = <Home {...props} />;
      break;
    case "category":
      page = <Category {...props} slug={route.slug} />;
      break;
    case "search":
      page = <Search {...props} q={route.q} />;
      break;
    case "product":
      page = <Product {...props} id={route.id} />;
      break;
    case "cart":
      page = <Cart {...props} />;
      break;
    case "checkout":
      page = <Checkout {...props} />;
      break;
    case "payment":
      page = <Payment {...props} />;
      break;
    case "confirmation":
      page = <Confirmation {...props} order={route.order} />;
      break;
    case "account":
      page = <Account {...props} />;
      break;
    case "callback":
      page = <Callback route={route} auth={auth} navigate={navigate} onSignedIn={() => setUser(auth.user())} />;
      break;
    default:
      page = <NotFound {...props} />;
  }
  const n = cartOps.count(cart);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href.home()}>
          {SHOP}
        </a>
        <form role="search" class="search" onSubmit={onSearch}>
          <label for="q" class="visually-hidden">
            Search products
          </label>
          <input id="q" name="q" type="search" placeholder="Search products" data-testid="search-input" ref={searchBox} />
          <button type="submit">Search</button>
        </form>
        <nav class="account" aria-label="Account and cart">
          <a href={href.account()}>Account</a>
          {user ? (
            <button type="button" class="link" data-testid="sign-out" onClick={signOut}>
              Sign out
            </button>
          ) : (
            <button type="button" class="link" data-testid="sign-in" onClick={signIn}>
              Sign in
            </button>
          )}
          <a href={href.cart()} data-testid="cart-link">
            Cart (<span data-testid="cart-count">{n}</span>)<span class="visually-hidden"> items</span>
          </a>
        </nav>
      </header>
      <nav class="cats" aria-label="Categories">
        <ul>
          {catalog.categories.map((c) => (
            <li>
              <a href={href.category(c.slug)} aria-current={route.name == "category" && route.slug == c.slug ? "page" : undefined}>
                {c.name}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1} ref={main}>
        {page}
      </main>
      <footer class="bottom">
        <p>{SHOP} is a demo store: nothing is for sale.</p>
      </footer>
      {config.requireConsent && consent == "pending" && <ConsentBanner onAnswer={(yes) => setConsent(clickstream.consent(yes))} />}
    </>
  );
}
