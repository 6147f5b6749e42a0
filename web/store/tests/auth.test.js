// Sign-in: PKCE, the authorize URL, the code exchange and the refresh, against a fake token endpoint.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { AuthError, PENDING_KEY, TOKENS_KEY, createAuth } from "../src/auth.js";
import { challenge, decodeJwt, randomToken } from "../src/pkce.js";

class MemoryStorage {
  constructor() {
    this.m = new Map();
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = (claims) => `${b64({ alg: "RS256" })}.${b64(claims)}.sig`;
const CONFIG = {
  authDomain: "https://auth.example.com/",
  clientId: "client-1",
  redirectUri: "https://shop.example.com/auth/callback",
};

// A fake Hosted UI token endpoint that checks what a real one checks: client, redirect URI, PKCE, one-time codes.
function hostedUi(clock) {
  const codes = new Map();
  const refreshTokens = new Set();
  const calls = [];
  let n = 0;
  const idToken = (sub = "user-1") => jwt({ sub, aud: "client-1", email: "ada@example.com", exp: Math.floor(clock.t / 1000) + 3600 });
  return {
    calls,
    // what /oauth2/authorize does once the user signed in: a code bound to the challenge
    authorize(url) {
      const q = new URL(url).searchParams;
      const code = `code-${++n}`;
      codes.set(code, { challenge: q.get("code_challenge"), redirect: q.get("redirect_uri"), client: q.get("client_id") });
      return { code, state: q.get("state") };
    },
    fetch: async (url, init) => {
      assert.equal(url, "https://auth.example.com/oauth2/token");
      assert.equal(init.method, "POST");
      assert.equal(init.headers["content-type"], "application/x-www-form-urlencoded");
      const f = new URLSearchParams(init.body);
      calls.push(Object.fromEntries(f));
      const answer = (status, body) => ({ ok: status < 300, status, json: async () => body });
      if (f.get("client_id") != "client-1") return answer(400, { error: "invalid_client" });
      if (f.get("grant_type") == "authorization_code") {
        const c = codes.get(f.get("code"));
        codes.delete(f.get("code"));
        if (!c || c.redirect != f.get("redirect_uri")) return answer(400, { error: "invalid_grant" });
        const s256 = createHash("sha256").update(f.get("code_verifier")).digest("base64url");
        if (s256 != c.challenge) return answer(400, { error: "invalid_grant" });
        const refresh = `refresh-${n}`;
        refreshTokens.add(refresh);
        return answer(200, { id_token: idToken(), access_token: "access", refresh_token: refresh, expires_in: 3600 });
      }
      if (f.get("grant_type") == "refresh_token") {
        if (!refreshTokens.has(f.get("refresh_token"))) return answer(400, { error: "invalid_grant" });
        return answer(200, { id_token: idToken(), access_token: "access-2", expires_in: 3600 });
      }
      return answer(400, { error: "unsupported_grant_type" });
    },
    revokeAll: () => refreshTokens.clear(),
  };
}

function setup() {
  const clock = { t: Date.parse("2026-03-02T10:00:00Z") };
  const ui = hostedUi(clock);
  const storage = new MemoryStorage();
  const session = new MemoryStorage();
  const auth = createAuth({ config: CONFIG, fetch: ui.fetch, storage, session, now: () => clock.t });
  return { clock, ui, storage, session, auth };
}

test("PKCE S256 matches RFC 7636's appendix B example", async () => {
  assert.equal(await challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  const v = randomToken();
  assert.match(v, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(v, randomToken());
});

test("the authorize URL: code flow, client, redirect URI, S256 challenge of the kept verifier, scopes, state", async () => {
  const { auth, session } = setup();
  const url = new URL(await auth.signInUrl("/cart"));
  assert.equal(url.origin + url.pathname, "https://auth.example.com/oauth2/authorize");
  const q = url.searchParams;
  const pending = JSON.parse(session.getItem(PENDING_KEY));
  assert.deepEqual(Object.fromEntries(q), {
    response_type: "code",
    client_id: "client-1",
    redirect_uri: "https://shop.example.com/auth/callback",
    code_challenge: await challenge(pending.verifier),
    code_challenge_method: "S256",
    scope: "openid email profile",
    state: pending.state,
  });
  assert.match(url.search, /scope=openid\+email\+profile/);
  assert.equal(pending.returnTo, "/cart");
});

test("sign-in: the code is exchanged with the verifier; the user is known; back to the page we left", async () => {
  const { auth, ui, session } = setup();
  const back = ui.authorize(await auth.signInUrl("/p/MOU-0001/x"));
  assert.equal(await auth.complete(back), "/p/MOU-0001/x");
  assert.equal(auth.user().sub, "user-1");
  assert.equal(auth.user().email, "ada@example.com");
  assert.equal(session.getItem(PENDING_KEY), null, "the verifier is used once");
  assert.deepEqual(Object.keys(ui.calls[0]).sort(), ["client_id", "code", "code_verifier", "grant_type", "redirect_uri"]);
  assert.ok(decodeJwt(await auth.getIdToken()).sub == "user-1");
});

test("a callback with a wrong or missing state, an error, or no pending sign-in is refused", async () => {
  for (const tamper of [(b) => ({ ...b, state: "forged" }), (b) => ({ ...b, state: null }), (b) => ({ error: "access_denied" })]) {
    const { auth, ui, storage } = setup();
    const back = ui.authorize(await auth.signInUrl("/"));
    await assert.rejects(auth.complete(tamper(back)), AuthError);
    assert.equal(storage.getItem(TOKENS_KEY), null);
    assert.equal(ui.calls.length, 0, "no code exchange");
  }
  const { auth } = setup();
  await assert.rejects(auth.complete({ code: "c", state: "s" }), /stale|not started here/);
});

test("a sign-in that comes back after ten minutes is refused", async () => {
  const { auth, ui, clock } = setup();
  const back = ui.authorize(await auth.signInUrl("/"));
  clock.t += 11 * 60 * 1000;
  await assert.rejects(auth.complete(back), /stale/);
});

test("a replayed code is refused by the token endpoint", async () => {
  const { auth, ui } = setup();
  const back = ui.authorize(await auth.signInUrl("/"));
  await auth.complete(back);
  auth.signOut();
  const again = new URL(await auth.signInUrl("/")).searchParams.get("state");
  await assert.rejects(auth.complete({ code: back.code, state: again }), /invalid_grant/);
  assert.equal(auth.user(), null);
});

test("the ID token is refreshed when less than a minute is left, and on demand", async () => {
  const { auth, ui, clock } = setup();
  await auth.complete(ui.authorize(await auth.signInUrl("/")));
  const first = await auth.getIdToken();
  assert.equal(ui.calls.length, 1);
  clock.t += 3530 * 1000; // 70 s left
  assert.equal(await auth.getIdToken(), first);
  assert.equal(ui.calls.length, 1);
  clock.t += 20 * 1000; // 50 s left
  const second = await auth.getIdToken();
  assert.notEqual(second, first);
  assert.deepEqual(ui.calls[1], { client_id: "client-1", grant_type: "refresh_token", refresh_token: "refresh-1" });
  assert.equal(decodeJwt(second).exp, Math.floor(clock.t / 1000) + 3600);
  await auth.getIdToken({ forceRefresh: true });
  assert.equal(ui.calls.length, 3);
  // concurrent callers share one refresh
  await Promise.all([auth.getIdToken({ forceRefresh: true }), auth.getIdToken({ forceRefresh: true })]);
  assert.equal(ui.calls.length, 4);
});

test("a refused refresh token signs the user out; a network failure does not", async () => {
  const { auth, ui, clock, storage } = setup();
  await auth.complete(ui.authorize(await auth.signInUrl("/")));
  clock.t += 3590 * 1000;
  const down = createAuth({
    config: CONFIG,
    fetch: () => Promise.reject(new TypeError("offline")),
    storage,
    session: new MemoryStorage(),
    now: () => clock.t,
  });
  await assert.rejects(down.getIdToken(), TypeError);
  assert.ok(down.user(), "still signed in");
  ui.revokeAll();
  assert.equal(await auth.getIdToken(), null);
  assert.equal(auth.user(), null);
  assert.equal(storage.getItem(TOKENS_KEY), null);
});

test("an ID token for another client is not accepted", async () => {
  const { storage, session } = setup();
  const clock = { t: Date.now() };
  const evil = {
    fetch: async () => ({ ok: true, status: 200, json: async () => ({ id_token: jwt({ sub: "x", aud: "other-client" }) }) }),
  };
  const auth = createAuth({ config: CONFIG, fetch: evil.fetch, storage, session, now: () => clock.t });
  const url = new URL(await auth.signInUrl("/"));
  await assert.rejects(auth.complete({ code: "c", state: url.searchParams.get("state") }), /not for this client/);
  assert.equal(storage.getItem(TOKENS_KEY), null);
});

test("signed out: no token; signOut() forgets the tokens", async () => {
  const { auth, ui } = setup();
  assert.equal(await auth.getIdToken(), null);
  assert.equal(auth.user(), null);
  await auth.complete(ui.authorize(await auth.signInUrl("/")));
  auth.signOut();
  assert.equal(await auth.getIdToken(), null);
});
