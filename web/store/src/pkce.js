// OAuth 2.0 PKCE (RFC 7636): a random code verifier and its S256 challenge; a random state.
const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

// 32 random bytes, base64url: 43 characters from the unreserved set, as RFC 7636 section 4.1 recommends.
export const randomToken = (c = crypto) => b64url(c.getRandomValues(new Uint8Array(32)));

export async function challenge(verifier, c = crypto) {
  return b64url(await c.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

export function decodeJwt(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (ch) => ch.charCodeAt(0))));
  } catch {
    return null;
  }
}
