// Sign-in with the Cognito user pool's Hosted UI: authorization code + PKCE, tokens kept in localStorage,
// the ID token refreshed (refresh_token grant) before it expires.
//
// createAuth({config, fetch, storage, session, now, crypto}) -> {user, signInUrl, complete, getIdToken, signOut}.
// config: {authDomain, clientId, redirectUri}; storage/session: localStorage/sessionStorage-like.
import { challenge, decodeJwt, randomToken } from "./pkce.js";
import { safeReturnPath } from "./routes.js";

export const TOKENS_KEY = "store_auth";
export const PENDING_KEY = "store_pkce";
const EARLY_S = 60; // the ID token is refreshed when it has less than this left
const PENDING_MAX_MS = 10 * 60 * 1000; // a sign-in must come back within ten minutes

export class AuthError extends Error {}

export function createAuth({ config, fetch, storage, session, now = () => Date.now(), crypto: c = crypto }) {
  const base = (config.authDomain || "").replace(/\/+$/, "");
  let refreshing = null;

  const read = () => {
    try {
      const t = JSON.parse(storage.getItem(TOKENS_KEY));
      return t && typeof t.id_token == "string" ? t : null;
    } catch {
      return null;
    }
  };
  const write = (t) => (t ? storage.setItem(TOKENS_KEY, JSON.stringify(t)) : storage.removeItem(TOKENS_KEY));

  async function tokenCall(params) {
    const res = await fetch(base + "/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: config.clientId, ...params }).toString(),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || typeof body.id_token != "string") {
      const err = new AuthError(`token endpoint: ${res.status} ${body.error || ""}`.trim());
      err.status = res.status;
      err.code = body.error;
      throw err;
    }
    return body;
  }

  function claimsOf(idToken) {
    const claims = decodeJwt(idToken);
    if (!claims || claims.aud != config.clientId || typeof claims.sub != "string") {
      throw new AuthError("the ID token is not for this client");
    }
    return claims;
  }

  const api = {
    // The signed-in user's ID token claims ({sub, email, "cognito:username", ...}), or null.
    user() {
      const t = read();
      return t ? decodeJwt(t.id_token) : null;
    },

    // Where to send the browser to sign in; remembers the verifier, the state and the page to come back to.
    async signInUrl(returnTo = "/") {
      const verifier = randomToken(c);
      const state = randomToken(c);
      session.setItem(PENDING_KEY, JSON.stringify({ verifier, state, returnTo: safeReturnPath(returnTo), at: now() }));
      const q = new URLSearchParams({
        response_type: "code",
        client_id: config.clientId,
        redirect_uri: config.redirectUri,
        code_challenge: await challenge(verifier, c),
        code_challenge_method: "S256",
        scope: "openid email profile",
        state,
      });
      return `${base}/oauth2/authorize?${q}`;
    },

    // Back from the Hosted UI with ?code&state: the code exchanged for tokens. Returns the page to go back to.
    async complete({ code, state, error }) {
      let pending = null;
      try {
        pending = JSON.parse(session.getItem(PENDING_KEY));
      } catch {}
      session.removeItem(PENDING_KEY);
      if (error) throw new AuthError(`sign-in refused: ${String(error).slice(0, 100)}`);
      if (!pending || !code || !state || state !== pending.state || now() - pending.at > PENDING_MAX_MS) {
        throw new AuthError("this sign-in link is stale or was not started here; please sign in again");
      }
      const t = await tokenCall({
        grant_type: "authorization_code",
        code,
        redirect_uri: config.redirectUri,
        code_verifier: pending.verifier,
      });
      claimsOf(t.id_token);
      write({ id_token: t.id_token, access_token: t.access_token, refresh_token: t.refresh_token });
      return safeReturnPath(pending.returnTo);
    },

    // The ID token, refreshed first when it has less than a minute left (or when forceRefresh); null when
    // signed out, or when the refresh token is refused (then the user is signed out here).
    async getIdToken({ forceRefresh = false } = {}) {
      const t = read();
      if (!t) return null;
      const exp = (decodeJwt(t.id_token) || {}).exp;
      if (!forceRefresh && typeof exp == "number" && exp - now() / 1000 > EARLY_S) return t.id_token;
      if (!t.refresh_token) return forceRefresh ? null : t.id_token;
      refreshing ||= tokenCall({ grant_type: "refresh_token", refresh_token: t.refresh_token })
        .then((fresh) => {
          claimsOf(fresh.id_token);
          const next = { ...read(), id_token: fresh.id_token, access_token: fresh.access_token };
          if (fresh.refresh_token) next.refresh_token = fresh.refresh_token;
          write(next);
          return fresh.id_token;
        })
        .catch((e) => {
          if (e.status >= 400 && e.status < 500) {
            write(null); // the refresh token is no longer good: signed out
            return null;
          }
          throw e; // the network: try again later
        })
        .finally(() => (refreshing = null));
      return refreshing;
    },

    signOut() {
      write(null);
    },
  };
  return api;
}
