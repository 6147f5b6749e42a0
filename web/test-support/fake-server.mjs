// A small stand-in for the store's server side, for the browser tests: everything same-origin, as under
// `clickstream serve` (and CloudFront in AWS). It plays:
//
//   GET  /config.json                       the runtime configuration (the contract in web/README.md)
//   GET  /oauth2/authorize                  the Hosted UI: signs in at once as `shopper-1`, back with ?code&state
//   POST /oauth2/token                      authorization_code (PKCE S256 checked) and refresh_token grants
//   POST /fake/cognito-identity             AWSCognitoIdentityService.GetId / GetCredentialsForIdentity (JSON 1.1)
//   POST /v1/events                         signed-in batches: Authorization: Bearer <an ID token issued here>
//   POST /v1/guest/events                   signed-out batches: SigV4 (execute-api) with credentials issued here
//   GET  anything else                      the built store: a file of dist/, else dist/index.html
//
// Every batch is checked as the API would (content type, gzip, limits, envelope) and recorded in `received`.
// `outage = true` makes the API routes drop the connection (a network error for the browser).
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import { extname, join, normalize } from "node:path";
import { gunzipSync } from "node:zlib";

import { verifySigV4 } from "./sigv4.mjs";

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };
const MAX_BODY = 1048576;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");

export async function startFakeServer({ dist, requireConsent = false, clientId = "local-web-client" } = {}) {
  const state = {
    received: [], // {route, user, identityId, envelope, at}
    refused: [], // {path, status, reason}
    apiCalls: 0,
    outage: false,
    codes: new Map(),
    tokens: new Map(), // id token -> {sub, exp}
    refresh: new Map(),
    identities: new Set(),
    credentials: new Map(), // access key -> {secretAccessKey, sessionToken, identityId, exp}
  };
  let origin = "";

  const issueIdToken = (sub) => {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const token = `${b64({ alg: "none", kid: "fake" })}.${b64({ sub, aud: clientId, email: `${sub}@example.com`, "cognito:username": sub, token_use: "id", exp })}.fake`;
    state.tokens.set(token, { sub, exp });
    return token;
  };

  function send(res, status, body, headers = {}) {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
    res.end(text);
  }

  const refuse = (res, path, status, code, message) => {
    state.refused.push({ path, status, reason: message });
    send(res, status, { error: { code, message } });
  };

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on("data", (c) => {
        size += c.length;
        if (size > MAX_BODY + 1) req.destroy(new Error("too large"));
        else chunks.push(c);
      });
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
    });
  }

  // The envelope as the ingest API reads it (ingest/body.py, envelope): media type, gzip, size, shape.
  function envelopeOf(req, body) {
    const type = (req.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
    if (!["application/json", "text/plain", "application/gzip", "application/x-gzip"].includes(type)) return [415, "unsupported content type " + type];
    let data = body;
    if (type.endsWith("gzip") || req.headers["content-encoding"] == "gzip") {
      try {
        data = gunzipSync(body, { maxOutputLength: MAX_BODY });
      } catch {
        return [400, "bad gzip"];
      }
    }
    if (body.length > MAX_BODY || data.length > MAX_BODY) return [413, "too large"];
    let doc;
    try {
      doc = JSON.parse(data.toString("utf8"));
    } catch {
      return [400, "bad json"];
    }
    const ok =
      doc &&
      typeof doc.app_id == "string" &&
      typeof doc.anonymous_id == "string" &&
      doc.anonymous_id.length <= 128 &&
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(doc.sent_at) &&
      Array.isArray(doc.events) &&
      doc.events.length >= 1 &&
      doc.events.length <= 500;
    if (!ok) return [400, "invalid envelope"];
    for (const e of doc.events) if (!UUID.test(e.event_id) || typeof e.event_type != "string") return [400, "invalid event"];
    return [202, doc];
  }

  async function handle(req, res) {
    const url = new URL(req.url, origin);
    const path = url.pathname;
    if (path.startsWith("/v1/") || path == "/fake/cognito-identity" || path == "/oauth2/token") {
      state.apiCalls++;
      if (state.outage && path.startsWith("/v1/")) return req.socket.destroy();
    }
    if (req.method == "GET" && path == "/config.json") {
      return send(res, 200, {
        appId: "shop-web",
        apiBase: "",
        region: "us-east-1",
        identityPoolId: "us-east-1:fake-pool",
        identityEndpoint: "/fake/cognito-identity",
        authDomain: origin,
        clientId,
        redirectUri: `${origin}/auth/callback`,
        requireConsent,
      });
    }
    if (req.method == "GET" && path == "/oauth2/authorize") {
      const q = url.searchParams;
      const bad =
        q.get("response_type") != "code" ||
        q.get("client_id") != clientId ||
        q.get("redirect_uri") != `${origin}/auth/callback` ||
        q.get("code_challenge_method") != "S256" ||
        !q.get("code_challenge") ||
        !q.get("state") ||
        !q.get("scope")?.split(" ").includes("openid");
      if (bad) return refuse(res, path, 400, "invalid_request", "bad authorize request");
      const code = randomUUID();
      state.codes.set(code, { challenge: q.get("code_challenge"), sub: "shopper-1" });
      res.writeHead(302, { location: `${q.get("redirect_uri")}?${new URLSearchParams({ code, state: q.get("state") })}` });
      return res.end();
    }
    if (req.method == "POST" && path == "/oauth2/token") {
      const f = new URLSearchParams((await readBody(req)).toString("utf8"));
      if (f.get("client_id") != clientId) return send(res, 400, { error: "invalid_client" });
      if (f.get("grant_type") == "authorization_code") {
        const c = state.codes.get(f.get("code"));
        state.codes.delete(f.get("code"));
        const s256 = createHash("sha256").update(f.get("code_verifier") || "").digest("base64url");
        if (!c || s256 != c.challenge || f.get("redirect_uri") != `${origin}/auth/callback`) return send(res, 400, { error: "invalid_grant" });
        const refresh = randomUUID();
        state.refresh.set(refresh, c.sub);
        return send(res, 200, { id_token: issueIdToken(c.sub), access_token: randomUUID(), refresh_token: refresh, expires_in: 3600, token_type: "Bearer" });
      }
      if (f.get("grant_type") == "refresh_token" && state.refresh.has(f.get("refresh_token"))) {
        return send(res, 200, { id_token: issueIdToken(state.refresh.get(f.get("refresh_token"))), access_token: randomUUID(), expires_in: 3600 });
      }
      return send(res, 400, { error: "invalid_grant" });
    }
    if (req.method == "POST" && path == "/fake/cognito-identity") {
      const target = req.headers["x-amz-target"];
      const body = JSON.parse((await readBody(req)).toString("utf8") || "{}");
      if (req.headers["content-type"] != "application/x-amz-json-1.1") return send(res, 400, { __type: "SerializationException" });
      if (target == "AWSCognitoIdentityService.GetId") {
        if (body.IdentityPoolId != "us-east-1:fake-pool") return send(res, 400, { __type: "ResourceNotFoundException" });
        const id = `us-east-1:${randomUUID()}`;
        state.identities.add(id);
        return send(res, 200, { IdentityId: id });
      }
      if (target == "AWSCognitoIdentityService.GetCredentialsForIdentity") {
        if (!state.identities.has(body.IdentityId)) return send(res, 400, { __type: "ResourceNotFoundException" });
        const key = "ASIA" + randomUUID().replace(/-/g, "").slice(0, 16).toUpperCase();
        const cred = { secretAccessKey: randomUUID(), sessionToken: randomUUID(), identityId: body.IdentityId, exp: Date.now() / 1000 + 3600 };
        state.credentials.set(key, cred);
        return send(res, 200, {
          IdentityId: body.IdentityId,
          Credentials: { AccessKeyId: key, SecretKey: cred.secretAccessKey, SessionToken: cred.sessionToken, Expiration: cred.exp },
        });
      }
      return send(res, 400, { __type: "UnknownOperationException" });
    }
    if (req.method == "POST" && (path == "/v1/events" || path == "/v1/guest/events")) {
      const body = await readBody(req);
      let who;
      if (path == "/v1/events") {
        const m = /^Bearer (.+)$/.exec(req.headers.authorization || "");
        const t = m && state.tokens.get(m[1]);
        if (!t || t.exp * 1000 < Date.now()) return refuse(res, path, 401, "unauthorized", "no valid token");
        who = { route: "user", user: t.sub };
      } else {
        const check = verifySigV4(
          { method: req.method, path, query: url.search, headers: req.headers, body },
          (k) => state.credentials.get(k),
          { region: "us-east-1" },
        );
        if (!check.ok) return refuse(res, path, 403, "forbidden", check.reason);
        who = { route: "guest", identityId: state.credentials.get(check.accessKeyId).identityId };
      }
      const [status, envelope] = envelopeOf(req, body);
      if (status != 202) return refuse(res, path, status, "bad_request", envelope);
      state.received.push({ ...who, envelope, gzip: (req.headers["content-type"] || "").includes("gzip"), at: Date.now() });
      return send(res, 202, { accepted: envelope.events.length });
    }
    if (req.method == "GET" && dist) {
      const file = normalize(join(dist, decodeURIComponent(path)));
      const inside = file.startsWith(normalize(dist));
      const target = inside && existsSync(file) && statSync(file).isFile() ? file : join(dist, "index.html");
      res.writeHead(200, {
        "content-type": TYPES[extname(target)] || "application/octet-stream",
        "cache-control": target.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache",
      });
      return res.end(readFileSync(target));
    }
    return send(res, 404, { error: { code: "not_found", message: "no such route" } });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) send(res, 500, { error: { code: "internal", message: String(e) } });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    state,
    events: () => state.received.flatMap((r) => r.envelope.events.map((e) => ({ ...e, _route: r.route, _user: r.user, _anon: r.envelope.anonymous_id }))),
    close: () => new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    }),
    server,
  };
}
