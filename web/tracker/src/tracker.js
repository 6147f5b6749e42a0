// The shop's tracker: events in the native contract, batched, persisted, retried, signed in or not.
//
// createTracker(w) takes the window it runs in (tests pass a fake one: fetch, localStorage, document, navigator,
// location, setTimeout/clearTimeout, Date, Math, addEventListener); the module's default export is the one for
// the real window. Nothing is read from the page before init(config).
import { NAMES, eventType, fields } from "./events.js";
import { guestCredentials, signedHeaders } from "./guest.js";

export const VERSION = "1.0.0";
export const MAX_EVENTS = 500; // the API's limits per request
export const MAX_BYTES = 1048576; // (the body, and the body after decompression)
export const KEEPALIVE_BYTES = 65536; // the browser's budget for keepalive bodies in flight
const MAX_WAIT = 864e5; // longest Retry-After honoured (a day): setTimeout cannot wait past 2^31 ms
const AID = "_cs_aid";
const YEAR_S = 31536000;
const ACTIVITY = ["mousemove", "mousedown", "keydown", "scroll", "touchstart", "wheel"];

const DEFAULTS = {
  apiBase: "",
  batchSize: 10,
  flushInterval: 5000,
  maxQueue: 1000,
  minRetryDelay: 1000,
  maxRetryDelay: 60000,
  tokenMinValidity: 60,
  heartbeat: 10,
  minVisit: 5,
  autoPageView: true,
  pagePings: true,
  gzip: true,
  requireConsent: false,
  respectDoNotTrack: true,
  currency: "USD",
};

const bytes = (s) => new TextEncoder().encode(s).length;

// Seconds (or an HTTP date) in a Retry-After header, as milliseconds; null when absent or unreadable.
export function retryAfterMs(value, nowMs) {
  if (value == null || !String(value).trim()) return null;
  const ms = /^\s*\d+\s*$/.test(value) ? value * 1000 : Date.parse(value) - nowMs;
  return ms >= 0 ? Math.min(ms, MAX_WAIT) : ms < 0 ? 0 : null;
}

// The `exp` claim of a JWT, in milliseconds; null for a token that is not a readable JWT.
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part)).exp;
    return typeof exp == "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

// A key-value store over localStorage that survives its absence (private modes, blocked storage): memory then.
function storage(w) {
  const mem = {};
  let ls = null;
  try {
    ls = w.localStorage;
    ls.setItem("_cs_t", "1");
    ls.removeItem("_cs_t");
  } catch {
    ls = null;
  }
  const put = (k, v) => (ls ? ls.setItem(k, v) : (mem[k] = v));
  return {
    get: (k) => (ls ? ls.getItem(k) : k in mem ? mem[k] : null),
    put, // throws when the storage is full
    set(k, v) {
      try {
        put(k, v);
      } catch {}
    },
    del: (k) => (ls ? ls.removeItem(k) : delete mem[k]),
  };
}

export function createTracker(w = globalThis) {
  const now = () => w.Date.now();
  const iso = () => new Date(now()).toISOString();
  const doc = () => w.document;
  let cfg = null;
  let store, keys, creds;
  let state; // "granted" | "pending" | "denied"
  let signal = false; // Do-Not-Track or Global Privacy Control, when the site respects them
  let aid = null;
  let buffer = []; // events tracked before consent: in memory only
  let timer = 0;
  let pumping = null;
  let waiters = [];
  let attempt = 0;
  let wake = null;
  let keepalive = false;
  let notBefore = 0; // no request before this time (Retry-After)
  let started = false;
  let lastUrl = "";
  let referrer = "";
  let hbTimer = 0;
  let active = false;
  let depth = 0;
  let utm = null;
  const stats = { sent: 0, rejected: 0, retries: 0, dropped: 0 };

  // ---- identity -------------------------------------------------------------------------------------------
  const uuid = () => {
    const c = w.crypto;
    if (c.randomUUID) return c.randomUUID();
    const b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = [...b].map((x) => (x + 256).toString(16).slice(1)).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  function cookie(value, maxAge) {
    const secure = w.location.protocol == "https:" ? "; Secure" : "";
    doc().cookie = `${AID}=${value}; Max-Age=${maxAge}; Path=/; SameSite=Lax${secure}`;
  }

  const valid = (id) => (/^[\w-]{8,128}$/.test(id) ? id : null); // an id someone else wrote is not trusted

  function readCookie() {
    const m = (doc().cookie || "").match(/(?:^|;\s*)_cs_aid=([^;]+)/);
    return m && valid(m[1]);
  }

  // The browser's anonymous id: the first-party cookie, else localStorage, else a new UUID; written back to both
  // once the visitor consents (never before).
  function anonymousId() {
    aid = aid || readCookie() || valid(store.get(AID)) || uuid();
    if (state == "granted") {
      cookie(aid, 2 * YEAR_S);
      store.set(AID, aid);
    }
    return aid;
  }

  function forget() {
    cookie("", 0);
    store.del(AID);
    store.del(keys.id);
    store.del(keys.creds);
  }

  // ---- the persistent queue ---------------------------------------------------------------------------------
  // Entries {a: anonymous id, n: bytes of the event's JSON, e: event}, oldest first, read and written whole on
  // every change so that tabs of one site share one queue without losing each other's events.
  let raw, parsed; // the stored text last read or written, and its entries
  function load() {
    const text = store.get(keys.q);
    if (text !== raw) {
      raw = text;
      parsed = null;
      try {
        parsed = JSON.parse(text);
      } catch {}
      if (!Array.isArray(parsed)) parsed = [];
    }
    return parsed.slice();
  }

  function mutate(fn) {
    const q = load();
    fn(q);
    while (q.length > cfg.maxQueue) drop(q);
    for (;;) {
      try {
        const text = q.length ? JSON.stringify(q) : null;
        text ? store.put(keys.q, text) : store.del(keys.q);
        raw = text;
        parsed = q;
        return;
      } catch {
        drop(q); // storage full: the oldest events go first
      }
    }
  }

  function drop(q) {
    q.shift();
    stats.dropped++;
    store.set(keys.d, String(+store.get(keys.d) + 1 || 1));
  }

  function enqueue(entry) {
    if (state == "pending") {
      buffer.push(entry);
      if (buffer.length > cfg.maxQueue) buffer.shift(), stats.dropped++;
      return;
    }
    mutate((q) => q.push(entry));
    schedule();
  }

  // ---- delivery -----------------------------------------------------------------------------------------------
  function schedule() {
    if (state != "granted") return;
    if (load().length >= cfg.batchSize) pump();
    else if (!timer) timer = w.setTimeout(pump, cfg.flushInterval);
  }

  function pump() {
    w.clearTimeout(timer);
    timer = 0;
    return (pumping ||= run().finally(() => {
      pumping = null;
      settle();
    }));
  }

  function settle() {
    if (state != "granted" || !load().length) {
      waiters.forEach((resolve) => resolve());
      waiters = [];
    }
  }

  function sleep(ms) {
    return new Promise((resolve) => {
      const t = w.setTimeout(resolve, ms);
      wake = () => (w.clearTimeout(t), resolve());
    }).then(() => (wake = null));
  }

  function envelope(a, events) {
    const nav = w.navigator || {};
    const context = {
      locale: nav.language,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      screen: w.screen && { width: w.screen.width, height: w.screen.height },
      consent: { analytics: true },
      library: { name: "clickstream-web", version: VERSION },
    };
    if (utm) context.utm = utm;
    return { app_id: cfg.appId, sent_at: iso(), anonymous_id: a, context, events };
  }

  // The oldest events of one anonymous id that fit one request: ≤ 500 events and ≤ `limit` bytes of JSON.
  function take(q, limit) {
    const a = q[0].a;
    let size = bytes(JSON.stringify(envelope(a, [])));
    const out = [];
    for (const x of q) {
      if (x.a != a || out.length == MAX_EVENTS || size + x.n + 1 > limit) break;
      size += x.n + 1;
      out.push(x);
    }
    return out;
  }

  async function run() {
    while (state == "granted") {
      const q = load();
      if (!q.length) return;
      const batch = take(q, keepalive ? KEEPALIVE_BYTES : MAX_BYTES);
      if (!batch.length) {
        if (keepalive) return; // an event bigger than the keepalive budget waits for the next page
        mutate(drop); // one that fits no request at all (its envelope alone is too big) is dropped
        continue;
      }
      const result = await deliver(batch);
      if (result === true || result === false) {
        const ids = new Set(batch.map((x) => x.e.event_id));
        mutate((q) => q.splice(0, q.length, ...q.filter((x) => !ids.has(x.e.event_id))));
        stats[result ? "sent" : "rejected"] += batch.length;
        attempt = 0;
      } else {
        stats.retries++;
        attempt++;
        const d = Math.min(cfg.maxRetryDelay, cfg.minRetryDelay * 2 ** (attempt - 1));
        const backoff = d / 2 + (w.Math.random() * d) / 2;
        notBefore = now() + result;
        await sleep(Math.max(backoff, result));
      }
    }
  }

  async function gzip(text) {
    const stream = new Blob([text]).stream().pipeThrough(new w.CompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  async function token(force) {
    let t = await cfg.getToken?.(force ? { forceRefresh: true } : undefined);
    const exp = t && tokenExpiry(t);
    if (t && !force && exp && exp - now() < cfg.tokenMinValidity * 1000) {
      t = await cfg.getToken({ forceRefresh: true });
    }
    return t || null;
  }

  const url = (path) => new URL(cfg.apiBase + path, w.location.href).href;

  // One request: true (accepted), false (refused for good: a 4xx), or a number (retry; ≥ that many ms from now).
  async function deliver(batch) {
    const ka = keepalive;
    const text = JSON.stringify(envelope(batch[0].a, batch.map((x) => x.e)));
    const zip = cfg.gzip && !ka && w.CompressionStream && text.length > 1024;
    const body = zip ? await gzip(text) : text;
    const type = zip ? "application/gzip" : "application/json";
    for (let round = 0; ; round++) {
      let res;
      try {
        const t = await token(round > 0);
        let target, headers;
        if (t) {
          target = url("/v1/events");
          headers = { "content-type": type, authorization: "Bearer " + t };
        } else {
          target = url("/v1/guest/events");
          const c = await creds(round > 0);
          headers = await signedHeaders(target, { "content-type": type }, body, c, cfg.region, now());
        }
        res = await w.fetch(target, { method: "POST", headers, body, keepalive: ka });
      } catch {
        return 0; // the network, the identity service or the app's getToken failed: retried
      }
      const s = res.status;
      if (s < 300) return true;
      // Refused credentials (an expired token, guest credentials revoked): fresh ones, one more time.
      if ((s == 401 || s == 403) && !round) continue;
      if (s == 429 || s > 499) return retryAfterMs(res.headers.get("retry-after"), now()) || 0;
      return false;
    }
  }

  // ---- page views, page pings ---------------------------------------------------------------------------------
  function page() {
    return { url: w.location.href, referrer, title: doc().title };
  }

  function scrolled() {
    const h = doc().documentElement.scrollHeight;
    const pct = h ? Math.round(((w.scrollY + w.innerHeight) / h) * 100) : 100;
    depth = Math.min(100, Math.max(depth, pct));
  }

  function heartbeat(ms) {
    w.clearTimeout(hbTimer);
    hbTimer = w.setTimeout(() => {
      if (active && doc().visibilityState == "visible") {
        active = false;
        api.track("page_ping", { heartbeat_s: cfg.heartbeat, scroll_depth_pct: depth });
      }
      heartbeat(cfg.heartbeat * 1000);
    }, ms);
  }

  // The page is hidden (maybe for good): what is queued goes now, in requests the browser keeps alive past the
  // page's end, unless the API asked us to wait (Retry-After).
  function hidden() {
    keepalive = true;
    if (wake && now() >= notBefore) wake();
    if (state == "granted" && load().length) pump();
  }

  // Listeners, the first page view and the queue left by the last page: once, when tracking may begin.
  function start() {
    if (started) return;
    started = true;
    anonymousId();
    const query = new URL(w.location.href).searchParams;
    for (const k of ["source", "medium", "campaign", "term", "content"]) {
      const v = query.get("utm_" + k);
      if (v) (utm ||= {})[k] = v.slice(0, 256);
    }
    referrer = doc().referrer || "";
    doc().addEventListener("visibilitychange", () => {
      if (doc().visibilityState == "hidden") hidden();
      else keepalive = false;
    });
    w.addEventListener("pagehide", hidden);
    w.addEventListener("online", () => wake && wake());
    if (cfg.pagePings) {
      for (const type of ACTIVITY) {
        w.addEventListener(
          type,
          () => {
            active = true;
            if (type == "scroll") scrolled();
          },
          { passive: true },
        );
      }
    }
    if (cfg.autoPageView) api.page();
  }

  // ---- the API ------------------------------------------------------------------------------------------------
  const api = {
    version: VERSION,

    init(config) {
      if (cfg) return api;
      cfg = { ...DEFAULTS, ...config };
      if (!cfg.appId) throw new Error("clickstream: appId is required");
      if (!cfg.identityPoolId && !cfg.getToken) throw new Error("clickstream: identityPoolId or getToken is required");
      store = storage(w);
      const p = `:${cfg.appId}`;
      keys = { q: "_cs_q" + p, d: "_cs_d" + p, id: "_cs_iid", creds: "_cs_gc", consent: "_cs_consent" };
      creds = guestCredentials(w, cfg, store, keys, now);
      const nav = w.navigator || {};
      signal =
        cfg.respectDoNotTrack && (nav.doNotTrack == "1" || w.doNotTrack == "1" || nav.globalPrivacyControl === true);
      const choice = store.get(keys.consent);
      state = signal || choice == "0" ? "denied" : choice == "1" || !cfg.requireConsent ? "granted" : "pending";
      if (state != "denied") start();
      schedule();
      return api;
    },

    // Record an event; returns its event_id (null when nothing is recorded: before init, or consent refused).
    track(type, params) {
      if (!cfg || state == "denied") return null;
      type = eventType(type);
      const e = { event_id: uuid(), event_type: type, occurred_at: iso(), page: page() };
      let n = Infinity;
      try {
        Object.assign(e, fields(type, params, cfg.currency));
        n = bytes(JSON.stringify(e));
      } catch {} // parameters JSON cannot hold (a cycle, a BigInt): the event is dropped, the page goes on
      if (n > MAX_BYTES - 4096) {
        stats.dropped++; // or it can never fit a request
        return null;
      }
      enqueue({ a: anonymousId(), n, e });
      return e.event_id;
    },

    // A page view of the current URL and title (single-page apps call it after each route has rendered); the
    // previous page becomes the referrer, and the page pings start again for this page.
    page(params) {
      if (!cfg || state == "denied") return null;
      const href = w.location.href;
      if (lastUrl && lastUrl != href) referrer = lastUrl;
      lastUrl = href;
      depth = 0;
      active = false;
      scrolled();
      if (cfg.pagePings) heartbeat(cfg.minVisit * 1000);
      return api.track("page_view", params);
    },

    // After sign-in: a `login` event, and the queue sent now with the signed-in user's token (getToken), so the
    // visit's anonymous events reach the pipeline next to the user's.
    identify(params) {
      api.track("login", { method: "cognito", ...params });
      return api.flush();
    },

    // On sign-out: what is queued is sent as recorded, then a new anonymous id and a new guest identity, so the
    // next visitor on this browser is not joined to the last one.
    reset() {
      const done = api.flush();
      if (cfg && state != "denied") {
        aid = null;
        forget();
        anonymousId();
      }
      return done;
    },

    // Settles once the queue is empty (at once when nothing can be sent: no consent).
    flush() {
      return new Promise((resolve) => {
        waiters.push(resolve);
        if (cfg && state == "granted") pump();
        else settle();
      });
    },

    // The visitor's answer to the consent prompt (kept). Refusal discards what was recorded and the ids.
    consent(granted) {
      if (!cfg || signal) return api.consentState();
      store.set(keys.consent, granted ? "1" : "0");
      if (granted) {
        const was = state;
        state = "granted";
        anonymousId();
        if (was == "pending") mutate((q) => q.push(...buffer));
        buffer = [];
        start();
        schedule();
      } else {
        state = "denied";
        buffer = [];
        w.clearTimeout(hbTimer);
        mutate((q) => q.splice(0));
        forget();
        aid = null;
      }
      return state;
    },

    consentState: () => (cfg ? state : "pending"),

    // Counters for this page: sent, rejected (a 4xx), retries, dropped (queue cap or storage full); queued now;
    // droppedTotal across page loads of this browser.
    stats() {
      return {
        ...stats,
        queued: (cfg ? load().length : 0) + buffer.length,
        droppedTotal: cfg ? +store.get(keys.d) || 0 : 0,
      };
    },
  };
  for (const name of NAMES.slice(2)) api[name] = (params) => api.track(name, params);
  return api;
}
