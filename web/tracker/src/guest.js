// Signed-out visitors: the Cognito identity pool's unauthenticated credentials, and SigV4 with them.
//
// Two plain calls to the identity service (JSON 1.1 protocol, the operation in X-Amz-Target):
// AWSCognitoIdentityService.GetId {IdentityPoolId} -> {IdentityId}, once per browser (kept in localStorage), then
// AWSCognitoIdentityService.GetCredentialsForIdentity {IdentityId} -> {Credentials: {AccessKeyId, SecretKey,
// SessionToken, Expiration}}, kept until five minutes before they expire. A guest request is then signed for
// the service execute-api with aws4fetch's signer, as API Gateway's IAM authorization expects.
import { AwsV4Signer } from "aws4fetch";

const EARLY_MS = 5 * 60 * 1000; // credentials are renewed this long before they expire

export class IdentityError extends Error {}

// store: {get(k), set(k, v), del(k)}; keys: {id, creds}.
export function guestCredentials(w, cfg, store, keys, now) {
  const endpoint = cfg.identityEndpoint || `https://cognito-identity.${cfg.region}.amazonaws.com/`;

  async function call(op, body) {
    const res = await w.fetch(endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AWSCognitoIdentityService." + op,
      },
      body: JSON.stringify(body),
    });
    const doc = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new IdentityError(`${op}: ${res.status} ${doc.__type || ""}`);
      err.notFound = /ResourceNotFound/.test(doc.__type);
      throw err;
    }
    return doc;
  }

  // Read from storage each time: reset() and a refused consent forget them there.
  return async function get(force) {
    let creds = null;
    try {
      creds = JSON.parse(store.get(keys.creds));
    } catch {}
    if (!force && creds && creds.x - now() > EARLY_MS) return creds;
    let id = store.get(keys.id);
    for (let i = 0; ; i++) {
      if (!id) {
        id = (await call("GetId", { IdentityPoolId: cfg.identityPoolId })).IdentityId;
        store.set(keys.id, id);
      }
      try {
        const c = (await call("GetCredentialsForIdentity", { IdentityId: id })).Credentials;
        const x = c.Expiration;
        const creds = {
          k: c.AccessKeyId,
          s: c.SecretKey,
          t: c.SessionToken,
          // JSON 1.1 timestamps are seconds since the epoch; an ISO string is read as such.
          x: typeof x == "number" ? x * 1000 : Date.parse(x),
        };
        store.set(keys.creds, JSON.stringify(creds));
        return creds;
      } catch (e) {
        // An identity the pool no longer knows (deleted, or another pool's): ask for a new one, once.
        if (!e.notFound || i) throw e;
        id = null;
      }
    }
  };
}

// The headers of a POST of `body` to `url` signed with `creds` (SigV4, service execute-api) at time `ms`.
export async function signedHeaders(url, headers, body, creds, region, ms) {
  const signed = await new AwsV4Signer({
    method: "POST",
    url,
    headers,
    body,
    accessKeyId: creds.k,
    secretAccessKey: creds.s,
    sessionToken: creds.t,
    service: "execute-api",
    region,
    datetime: new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, ""),
  }).sign();
  return signed.headers;
}
