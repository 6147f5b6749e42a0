// A fake window for the tracker: a clock with timers under the test's control, localStorage, document (cookies,
// visibility, listeners), navigator, location, and a fetch that answers from a handler without any network.
import { createTracker } from "../src/tracker.js";

export const START = Date.parse("2026-03-02T10:00:00.000Z");

// Lets pending promise callbacks (and the event loop's I/O, for real crypto and compression) run.
export async function settle(turns = 5) {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock {
  constructor(start = START) {
    this.t = start;
    this.timers = new Map();
    this.seq = 0;
    this.now = () => this.t;
    this.setTimeout = (fn, ms = 0) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.t + Math.max(0, +ms || 0), fn, id });
      return id;
    };
    this.clearTimeout = (id) => this.timers.delete(id);
  }

  next() {
    let best = null;
    for (const t of this.timers.values()) if (!best || t.at < best.at || (t.at == best.at && t.id < best.id)) best = t;
    return best;
  }

  // Moves time forward by `ms`, firing each timer due on the way at its own time, letting the code it starts run.
  async advance(ms) {
    const end = this.t + ms;
    await settle();
    for (let t = this.next(); t && t.at <= end; t = this.next()) {
      this.timers.delete(t.id);
      this.t = t.at;
      t.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

export class FakeStorage {
  constructor(quota = Infinity) {
    this.data = new Map();
    this.quota = quota;
  }
  getItem(k) {
    return this.data.has(k) ? this.data.get(k) : null;
  }
  setItem(k, v) {
    v = String(v);
    let size = v.length + k.length;
    for (const [key, value] of this.data) if (key != k) size += key.length + value.length;
    if (size > this.quota) throw new Error("QuotaExceededError");
    this.data.set(k, v);
  }
  removeItem(k) {
    this.data.delete(k);
  }
}

class Listeners {
  constructor() {
    this.map = {};
  }
  addEventListener(type, fn) {
    (this.map[type] ||= []).push(fn);
  }
  dispatch(type) {
    for (const fn of this.map[type] || []) fn({ type });
  }
}

class FakeDocument extends Listeners {
  constructor() {
    super();
    this.jar = new Map();
    this.title = "Home | Example Electronics";
    this.referrer = "";
    this.visibilityState = "visible";
    this.documentElement = { scrollHeight: 2000 };
    this.writes = [];
  }
  get cookie() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  set cookie(text) {
    this.writes.push(text);
    const [pair, ...attrs] = text.split(";");
    const [name, value] = pair.split("=");
    const maxAge = attrs.map((a) => a.trim().split("=")).find(([k]) => k.toLowerCase() == "max-age");
    if (maxAge && +maxAge[1] <= 0) this.jar.delete(name.trim());
    else this.jar.set(name.trim(), value);
  }
}

// The fake API: `handle(request)` answers {status, headers?, body?} or throws (a network error). Every request is
// recorded: {url, method, headers (a Headers), body (string or Uint8Array), keepalive, at}.
export function fakeFetch(clock, handle = () => ({ status: 202, body: { accepted: 1 } })) {
  const requests = [];
  const fetch = (url, init = {}) => {
    const req = {
      url: String(url),
      method: init.method || "GET",
      headers: new Headers(init.headers),
      body: init.body,
      keepalive: !!init.keepalive,
      at: clock.t,
    };
    requests.push(req);
    let answer;
    try {
      answer = handle(req);
    } catch (e) {
      return Promise.reject(e);
    }
    const body = answer.body ?? {};
    return Promise.resolve({
      status: answer.status,
      ok: answer.status >= 200 && answer.status < 300,
      headers: new Headers(answer.headers || {}),
      json: async () => body,
    });
  };
  return { fetch, requests };
}

export function fakeWindow({
  clock = new FakeClock(),
  storage = new FakeStorage(),
  href = "https://shop.example.com/",
  handle,
  navigator = {},
  compression = false,
  random = () => 0.5,
} = {}) {
  const w = new Listeners();
  const net = fakeFetch(clock, handle);
  Object.assign(w, {
    clock,
    net,
    requests: net.requests,
    fetch: net.fetch,
    Date: { now: clock.now },
    Math: { random },
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    localStorage: storage,
    document: new FakeDocument(),
    navigator: { language: "en-US", ...navigator },
    location: new URL(href),
    crypto: globalThis.crypto,
    screen: { width: 1440, height: 900 },
    innerHeight: 900,
    scrollY: 0,
  });
  if (compression) w.CompressionStream = CompressionStream;
  return w;
}

// A tracker on a fake window, signed in with a token that never expires unless told otherwise.
export function tracker(w, config = {}) {
  return createTracker(w).init({
    appId: "shop-web",
    getToken: () => "opaque-token",
    autoPageView: false,
    ...config,
  });
}

export const bodyOf = (req) => JSON.parse(typeof req.body == "string" ? req.body : new TextDecoder().decode(req.body));
export const eventsOf = (requests) => requests.filter((r) => r.url.includes("/events")).flatMap((r) => bodyOf(r).events);

// Runs the clock until `promise` settles (each step fires the next timer), or fails after `limitMs` of fake time.
export async function drive(clock, promise, limitMs = 36e5) {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  const end = clock.t + limitMs;
  await settle();
  while (!done) {
    const t = clock.next();
    if (!t || t.at > end) throw new Error("drive: the promise did not settle");
    await clock.advance(t.at - clock.t);
  }
  return promise;
}
