// Who the events are from: the anonymous id, consent and Do-Not-Track / GPC, signed-in tokens, signed-out SigV4.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AwsV4Signer } from "aws4fetch";

import { verifySigV4 } from "../../test-support/sigv4.mjs";
import { tokenExpiry } from "../src/tracker.js";
import { FakeClock, FakeStorage, bodyOf, drive, eventsOf, fakeWindow, settle, tracker } from "./fakes.js";

const AID_COOKIE = /(?:^|; )_cs_aid=([0-9a-f-]{36})(?:;|$)/;

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "RS256", kid: "test" })}.${b64(claims)}.c2ln`;
}

// ---- the anonymous id -----------------------------------------------------------------------------------------

test("one anonymous id per browser: cookie and localStorage, kept across pages, restored from either", async () => {
  const storage = new FakeStorage();
  const w1 = fakeWindow({ storage });
  tracker(w1).track("view_cart");
  const aid = AID_COOKIE.exec(w1.document.cookie)[1];
  assert.equal(storage.getItem("_cs_aid"), aid);
  assert.match(w1.document.writes[0], /^_cs_aid=[0-9a-f-]{36}; Max-Age=63072000; Path=\/; SameSite=Lax; Secure$/);

  // the next page: same id
  const w2 = fakeWindow({ storage });
  w2.document.jar = new Map(w1.document.jar);
  const t2 = tracker(w2, { batchSize: 1 });
  t2.track("view_cart");
  await settle();
  assert.equal(bodyOf(w2.requests[0]).anonymous_id, aid);

  // cookies cleared: localStorage brings the id back, and the cookie with it
  const w3 = fakeWindow({ storage });
  tracker(w3).track("view_cart");
  assert.equal(AID_COOKIE.exec(w3.document.cookie)[1], aid);

  // localStorage cleared: the cookie brings it back
  const w4 = fakeWindow();
  w4.document.jar = new Map(w1.document.jar);
  tracker(w4).track("view_cart");
  assert.equal(w4.localStorage.getItem("_cs_aid"), aid);
});

test("an anonymous id that is not ours (too long, control characters) is replaced, not sent", async () => {
  for (const bad of ["x".repeat(500), "abc\u0001defghijk", "<script>", ""]) {
    const w = fakeWindow();
    w.document.jar.set("_cs_aid", bad);
    w.localStorage.setItem("_cs_aid", bad);
    const t = tracker(w, { batchSize: 1 });
    t.track("view_cart");
    await settle();
    assert.match(bodyOf(w.requests[0]).anonymous_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  }
});

test("the cookie is not Secure on plain http (localhost)", () => {
  const w = fakeWindow({ href: "http://127.0.0.1:8080/" });
  tracker(w).track("view_cart");
  assert.doesNotMatch(w.document.writes[0], /Secure/);
});

test("reset(): queued events keep the id they were recorded with; later ones get a new id and guest identity", async () => {
  const w = fakeWindow();
  const t = tracker(w, { batchSize: 100, flushInterval: 1000 });
  w.localStorage.setItem("_cs_iid", "us-east-1:old");
  w.localStorage.setItem("_cs_gc", "{}");
  t.track("view_cart");
  const before = AID_COOKIE.exec(w.document.cookie)[1];
  const done = t.reset();
  t.track("view_cart");
  await drive(w.clock, Promise.all([done, t.flush()]));
  const after = AID_COOKIE.exec(w.document.cookie)[1];
  assert.notEqual(after, before);
  assert.equal(w.localStorage.getItem("_cs_iid"), null);
  assert.equal(w.localStorage.getItem("_cs_gc"), null);
  assert.deepEqual(
    w.requests.map((r) => bodyOf(r).anonymous_id),
    [before, after],
  );
});

// ---- consent, Do-Not-Track, Global Privacy Control --------------------------------------------------------------

test("requireConsent: nothing is sent or stored before consent; accepting sends what was recorded", async () => {
  const w = fakeWindow();
  const t = tracker(w, { requireConsent: true, batchSize: 1, autoPageView: true });
  t.track("view_cart");
  await w.clock.advance(60000);
  assert.equal(w.requests.length, 0);
  assert.equal(w.document.cookie, "");
  assert.deepEqual([...w.localStorage.data.keys()], []);
  assert.equal(t.consentState(), "pending");
  assert.equal(t.stats().queued, 2);
  assert.equal(t.consent(true), "granted");
  await drive(w.clock, t.flush());
  assert.deepEqual(
    eventsOf(w.requests).map((e) => e.event_type),
    ["page_view", "view_cart"],
  );
  assert.equal(w.localStorage.getItem("_cs_consent"), "1");
  assert.match(w.document.cookie, AID_COOKIE);
});

test("consent refused: what was recorded is discarded, nothing is ever sent, and the refusal is remembered", async () => {
  const storage = new FakeStorage();
  const w = fakeWindow({ storage });
  const t = tracker(w, { requireConsent: true, batchSize: 1, autoPageView: true });
  t.track("view_cart");
  assert.equal(t.consent(false), "denied");
  assert.equal(t.track("purchase", { transaction_id: "T-1", value: 10, items: [{ product_id: "A" }] }), null);
  await t.flush();
  await w.clock.advance(600000);
  assert.equal(w.requests.length, 0);
  assert.equal(w.document.cookie, "");
  assert.deepEqual([...storage.data.keys()], ["_cs_consent"]);

  const next = fakeWindow({ storage });
  const t2 = tracker(next, { requireConsent: true, batchSize: 1, autoPageView: true });
  assert.equal(t2.consentState(), "denied");
  t2.track("view_cart");
  await next.clock.advance(60000);
  assert.equal(next.requests.length, 0);
});

test("consent withdrawn later: the queue and ids are erased", async () => {
  const w = fakeWindow({ handle: () => ({ status: 503 }) });
  const t = tracker(w, { batchSize: 1 });
  t.track("view_cart");
  await w.clock.advance(1000);
  t.consent(false);
  const seen = w.requests.length;
  await w.clock.advance(600000);
  assert.equal(w.requests.length, seen);
  assert.equal(w.localStorage.getItem("_cs_q:shop-web"), null);
  assert.equal(w.localStorage.getItem("_cs_aid"), null);
  assert.equal(w.document.cookie, "");
});

test("Do-Not-Track and Global Privacy Control: nothing is tracked (respectDoNotTrack, the default)", async () => {
  for (const navigator of [{ doNotTrack: "1" }, { globalPrivacyControl: true }]) {
    const w = fakeWindow({ navigator });
    const t = tracker(w, { batchSize: 1, autoPageView: true });
    assert.equal(t.consentState(), "denied");
    assert.equal(t.track("view_cart"), null);
    assert.equal(t.consent(true), "denied", "the signal wins over the banner");
    await w.clock.advance(60000);
    assert.equal(w.requests.length, 0);
    assert.equal(w.document.cookie, "");

    const off = fakeWindow({ navigator });
    const t2 = tracker(off, { batchSize: 1, respectDoNotTrack: false });
    t2.track("view_cart");
    await settle();
    assert.equal(off.requests.length, 1);
  }
});

// ---- signed in: the Cognito ID token ---------------------------------------------------------------------------

test("signed in: /v1/events with Authorization: Bearer <token>", async () => {
  const w = fakeWindow();
  const token = jwt({ sub: "u-1", exp: (w.clock.t + 3600e3) / 1000 });
  const t = tracker(w, { batchSize: 1, getToken: () => token });
  t.track("view_cart");
  await settle();
  const [r] = w.requests;
  assert.equal(r.url, "https://shop.example.com/v1/events");
  assert.equal(r.headers.get("authorization"), "Bearer " + token);
  assert.equal(r.headers.get("x-amz-date"), null);
});

test("a token about to expire is refreshed before it is used", async () => {
  const w = fakeWindow();
  const stale = jwt({ sub: "u-1", exp: (w.clock.t + 30e3) / 1000 });
  const fresh = jwt({ sub: "u-1", exp: (w.clock.t + 3600e3) / 1000 });
  const calls = [];
  const getToken = async (opts) => {
    calls.push(opts);
    return opts?.forceRefresh ? fresh : stale;
  };
  const t = tracker(w, { batchSize: 1, getToken });
  t.track("view_cart");
  await settle();
  assert.deepEqual(calls, [undefined, { forceRefresh: true }]);
  assert.equal(w.requests[0].headers.get("authorization"), "Bearer " + fresh);
});

test("a 401 gets one more try with a refreshed token, then the batch is dropped", async () => {
  for (const second of [202, 401]) {
    let n = 0;
    const w = fakeWindow({ handle: () => ({ status: ++n == 1 ? 401 : second }) });
    const tokens = [];
    const t = tracker(w, {
      batchSize: 1,
      getToken: (opts) => (opts?.forceRefresh ? "new" : "old"),
    });
    t.track("view_cart");
    await drive(w.clock, t.flush());
    await w.clock.advance(600000);
    for (const r of w.requests) tokens.push(r.headers.get("authorization"));
    assert.deepEqual(tokens, ["Bearer old", "Bearer new"]);
    assert.deepEqual([t.stats().sent, t.stats().rejected], second == 202 ? [1, 0] : [0, 1]);
  }
});

test("tokenExpiry reads a JWT's exp; anything else is null", () => {
  assert.equal(tokenExpiry(jwt({ exp: 1700000000 })), 1700000000000);
  assert.equal(tokenExpiry("opaque"), null);
  assert.equal(tokenExpiry("a.!!!.c"), null);
});

// ---- signed out: the identity pool's guest credentials and SigV4 ----------------------------------------------------

const POOL = "us-east-1:0e5d6a5c-1111-2222-3333-444455556666";

// A fake Cognito identity service and guest route: credentials it issued verify, others do not.
function guestApi(clock, { expiresInS = 3600, unknownIdentity = false, guestStatus = () => 202 } = {}) {
  const issued = new Map();
  const log = [];
  let ids = 0;
  let keys = 0;
  return {
    log,
    issued,
    handle(req) {
      if (req.url == "https://cognito-identity.us-east-1.amazonaws.com/") {
        const op = req.headers.get("x-amz-target");
        const body = JSON.parse(req.body);
        log.push([op, body]);
        assert.equal(req.headers.get("content-type"), "application/x-amz-json-1.1");
        if (op == "AWSCognitoIdentityService.GetId") {
          assert.equal(body.IdentityPoolId, POOL);
          return { status: 200, body: { IdentityId: `us-east-1:id-${++ids}` } };
        }
        if (op == "AWSCognitoIdentityService.GetCredentialsForIdentity") {
          if (unknownIdentity && body.IdentityId == "us-east-1:stale") {
            return { status: 400, body: { __type: "ResourceNotFoundException", message: "Identity not found" } };
          }
          const k = `ASIA${++keys}`;
          const cred = { secretAccessKey: `secret-${keys}`, sessionToken: `session-${keys}` };
          issued.set(k, cred);
          return {
            status: 200,
            body: {
              IdentityId: body.IdentityId,
              Credentials: {
                AccessKeyId: k,
                SecretKey: cred.secretAccessKey,
                SessionToken: cred.sessionToken,
                Expiration: clock.t / 1000 + expiresInS,
              },
            },
          };
        }
        return { status: 400, body: { __type: "UnknownOperationException" } };
      }
      const url = new URL(req.url);
      const headers = Object.fromEntries([...req.headers].map(([k, v]) => [k, v]));
      headers.host = url.host;
      const check = verifySigV4(
        { method: req.method, path: url.pathname, query: url.search, headers, body: Buffer.from(req.body) },
        (k) => issued.get(k),
        { now: clock.t, region: "us-east-1" },
      );
      log.push(["POST " + url.pathname, check]);
      if (!check.ok) return { status: 403, body: { message: check.reason } };
      return { status: guestStatus() };
    },
  };
}

const guestConfig = { getToken: undefined, identityPoolId: POOL, region: "us-east-1", batchSize: 1 };

async function until(cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await settle();
  }
}

test("signed out: GetId, GetCredentialsForIdentity, then /v1/guest/events signed with SigV4 (verified independently)", async () => {
  const clock = new FakeClock();
  const api = guestApi(clock);
  const w = fakeWindow({ clock, handle: api.handle, compression: true });
  const t = tracker(w, guestConfig);
  t.track("custom:big", { text: "q".repeat(600) });
  await until(() => t.stats().sent == 1);
  t.track("custom:big", { text: "q".repeat(600) });
  t.track("custom:big", { text: "r".repeat(600) });
  await until(() => t.stats().sent == 3);
  const calls = api.log.map(([what]) => what);
  assert.deepEqual(
    calls.slice(0, 3),
    ["AWSCognitoIdentityService.GetId", "AWSCognitoIdentityService.GetCredentialsForIdentity", "POST /v1/guest/events"],
  );
  assert.ok(calls.length >= 4);
  assert.deepEqual(new Set(calls.slice(2)), new Set(["POST /v1/guest/events"]), "credentials are fetched once and reused");
  for (const [, check] of api.log.slice(2)) assert.deepEqual(check, { ok: true, accessKeyId: "ASIA1" });
  const r = w.requests.at(-1);
  assert.equal(r.url, "https://shop.example.com/v1/guest/events");
  assert.equal(r.headers.get("content-type"), "application/gzip");
  assert.equal(r.headers.get("x-amz-security-token"), "session-1");
  assert.match(
    r.headers.get("authorization"),
    /^AWS4-HMAC-SHA256 Credential=ASIA1\/20260302\/us-east-1\/execute-api\/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
  );
  assert.equal(w.localStorage.getItem("_cs_iid"), "us-east-1:id-1");
});

test("a signature made with other credentials, or over another body, does not verify (the verifier can fail)", async () => {
  const clock = new FakeClock();
  const api = guestApi(clock);
  const w = fakeWindow({ clock, handle: api.handle });
  const t = tracker(w, guestConfig);
  t.track("view_cart");
  await until(() => t.stats().sent == 1);
  const r = w.requests.at(-1);
  const url = new URL(r.url);
  const headers = Object.fromEntries([...r.headers]);
  headers.host = url.host;
  const base = { method: "POST", path: url.pathname, query: "", headers };
  const lookup = (k) => api.issued.get(k);
  assert.equal(verifySigV4({ ...base, body: Buffer.from(r.body) }, lookup, { now: clock.t }).ok, true);
  assert.equal(verifySigV4({ ...base, body: Buffer.from(r.body + " ") }, lookup, { now: clock.t }).reason, "signature mismatch");
  assert.equal(
    verifySigV4({ ...base, body: Buffer.from(r.body) }, () => ({ secretAccessKey: "other", sessionToken: "session-1" }), {
      now: clock.t,
    }).reason,
    "signature mismatch",
  );
  assert.equal(
    verifySigV4({ ...base, headers: { ...headers, host: "evil.example" }, body: Buffer.from(r.body) }, lookup, { now: clock.t }).reason,
    "signature mismatch",
  );
  assert.match(verifySigV4({ ...base, body: Buffer.from(r.body) }, lookup, { now: clock.t + 3600e3 }).reason, /expired/);
});

test("guest credentials are renewed before they expire, and a pool that forgot the identity gives a new one", async () => {
  const clock = new FakeClock();
  const api = guestApi(clock, { expiresInS: 600, unknownIdentity: true });
  const w = fakeWindow({ clock, handle: api.handle });
  w.localStorage.setItem("_cs_iid", "us-east-1:stale");
  const t = tracker(w, guestConfig);
  t.track("view_cart");
  await until(() => t.stats().sent == 1);
  assert.deepEqual(
    api.log.map(([what, body]) => [what, body.IdentityId ?? body.IdentityPoolId ?? body.ok]),
    [
      ["AWSCognitoIdentityService.GetCredentialsForIdentity", "us-east-1:stale"],
      ["AWSCognitoIdentityService.GetId", POOL],
      ["AWSCognitoIdentityService.GetCredentialsForIdentity", "us-east-1:id-1"],
      ["POST /v1/guest/events", true],
    ],
  );
  api.log.length = 0;
  await clock.advance(301e3); // 299 s left: renewed (they are renewed 5 minutes early)
  t.track("view_cart");
  await until(() => t.stats().sent == 2);
  assert.deepEqual(
    api.log.map(([what]) => what),
    ["AWSCognitoIdentityService.GetCredentialsForIdentity", "POST /v1/guest/events"],
  );
});

test("after reset() a signed-out visitor is a new guest identity too", async () => {
  const clock = new FakeClock();
  const api = guestApi(clock);
  const w = fakeWindow({ clock, handle: api.handle });
  const t = tracker(w, guestConfig);
  t.track("view_cart");
  await until(() => t.stats().sent == 1);
  await t.reset();
  t.track("view_cart");
  await until(() => t.stats().sent == 2);
  const posts = api.log.filter(([what]) => what.startsWith("POST"));
  assert.deepEqual(
    posts.map(([, check]) => check.accessKeyId),
    ["ASIA1", "ASIA2"],
  );
  assert.deepEqual(
    api.log.filter(([what]) => what.endsWith("GetId")).length,
    2,
  );
  assert.equal(w.localStorage.getItem("_cs_iid"), "us-east-1:id-2");
});

test("a 403 on the guest route gets one more try with new credentials", async () => {
  const clock = new FakeClock();
  let n = 0;
  const api = guestApi(clock, { guestStatus: () => (++n == 1 ? 403 : 202) });
  const w = fakeWindow({ clock, handle: api.handle });
  const t = tracker(w, guestConfig);
  t.track("view_cart");
  await until(() => t.stats().sent == 1);
  const keys = w.requests.filter((r) => r.url.endsWith("/guest/events")).map((r) => r.headers.get("authorization").slice(28, 33));
  assert.deepEqual(keys, ["ASIA1", "ASIA2"]);
});

test("the identity service down: the batch waits and is retried, nothing lost", async () => {
  const clock = new FakeClock();
  const api = guestApi(clock);
  let down = true;
  const w = fakeWindow({
    clock,
    handle: (req) => {
      if (down && req.url.includes("cognito-identity")) return { status: 500, body: { __type: "InternalErrorException" } };
      return api.handle(req);
    },
  });
  const t = tracker(w, guestConfig);
  t.track("view_cart");
  await clock.advance(10000);
  assert.equal(t.stats().sent, 0);
  assert.ok(t.stats().retries >= 2);
  down = false;
  await clock.advance(60000);
  await until(() => t.stats().sent == 1);
});

test("aws4fetch's signer against AWS's published SigV4 test vector (get-vanilla)", async () => {
  const signed = await new AwsV4Signer({
    method: "GET",
    url: "https://example.amazonaws.com/",
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    service: "service",
    region: "us-east-1",
    datetime: "20150830T123600Z",
  }).sign();
  assert.equal(
    signed.headers.get("authorization"),
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, " +
      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  );
  // and the independent verifier agrees with the vector
  const check = verifySigV4(
    {
      method: "GET",
      path: "/",
      headers: { host: "example.amazonaws.com", "x-amz-date": "20150830T123600Z", authorization: signed.headers.get("authorization") },
      body: "",
    },
    () => ({ secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }),
    { now: Date.parse("2015-08-30T12:36:00Z"), service: "service" },
  );
  assert.deepEqual(check, { ok: true, accessKeyId: "AKIDEXAMPLE" });
});
