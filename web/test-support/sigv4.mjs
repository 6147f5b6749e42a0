// SigV4 verification written from AWS's specification with node:crypto, independent of aws4fetch: what API
// Gateway's IAM authorization checks on the guest routes, and what the local server must check too.
//
// verifySigV4({method, path, query, headers, body}, lookup, {now, service, region}) -> {ok: true, accessKeyId} or
// {ok: false, reason}. `headers` has lower-case names; `body` is a Buffer/Uint8Array/string (the bytes as sent);
// lookup(accessKeyId) -> {secretAccessKey, sessionToken} or null.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const hmac = (key, data) => createHmac("sha256", key).update(data).digest();

// RFC 3986 encoding of each path segment (API Gateway / non-S3 services encode the path twice in canonical form).
const encode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

export function canonicalPath(path) {
  return path
    .split("/")
    .map((seg) => encode(encode(decodeURIComponent(seg))))
    .join("/");
}

export function canonicalQuery(query) {
  return [...new URLSearchParams(query)]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

export function signingKey(secret, date, region, service) {
  return hmac(hmac(hmac(hmac("AWS4" + secret, date), region), service), "aws4_request");
}

export function verifySigV4(req, lookup, { now = Date.now(), service = "execute-api", region, maxSkewMs = 300000 } = {}) {
  const h = req.headers;
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
    h.authorization || "",
  );
  if (!m) return { ok: false, reason: "no SigV4 Authorization header" };
  const [, accessKeyId, date, credRegion, credService, signedHeaders, signature] = m;
  if (credService != service) return { ok: false, reason: `service ${credService}, expected ${service}` };
  if (region && credRegion != region) return { ok: false, reason: `region ${credRegion}, expected ${region}` };
  const amzDate = h["x-amz-date"];
  if (!/^\d{8}T\d{6}Z$/.test(amzDate || "") || amzDate.slice(0, 8) != date) return { ok: false, reason: "bad x-amz-date" };
  const at = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  if (Math.abs(now - at) > maxSkewMs) return { ok: false, reason: "signature expired or from the future" };
  const names = signedHeaders.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date")) return { ok: false, reason: "host and x-amz-date must be signed" };
  const found = lookup(accessKeyId);
  if (!found) return { ok: false, reason: "unknown access key" };
  if (found.sessionToken && (h["x-amz-security-token"] != found.sessionToken || !names.includes("x-amz-security-token"))) {
    return { ok: false, reason: "session token missing, unsigned or wrong" };
  }
  const canonicalHeaders = names.map((n) => `${n}:${String(h[n] ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath(req.path),
    canonicalQuery(req.query || ""),
    canonicalHeaders,
    signedHeaders,
    sha256(req.body ?? ""),
  ].join("\n");
  const scope = `${date}/${credRegion}/${credService}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
  const expected = hmac(signingKey(found.secretAccessKey, date, credRegion, credService), stringToSign);
  const given = Buffer.from(signature, "hex");
  if (given.length != expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: "signature mismatch" };
  return { ok: true, accessKeyId };
}
