// Sign-in: the Cognito hosted UI (authorization code + PKCE) in AWS, the local gateway's dev
// sign-in under `make dev`, or a pasted token. The token lives in memory and sessionStorage only.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { getConfig, setToken, claims } from "./api.js";

const PKCE_KEY = "netauto.pkce";

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectURI() {
  return location.origin + location.pathname;
}

/** startCognito sends the browser to the hosted UI; it comes back with ?code=&state=. */
export async function startCognito() {
  const { auth } = getConfig();
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, back: location.search }));
  const q = new URLSearchParams({
    response_type: "code", client_id: auth.client_id, redirect_uri: redirectURI(),
    scope: "openid email profile", state, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${auth.domain}/oauth2/authorize?${q}`);
}

/**
 * finishCognito exchanges ?code= for tokens when the page is the hosted UI's redirect, and
 * returns the query string to go back to; null when this is no redirect.
 */
export async function finishCognito() {
  const q = new URLSearchParams(location.search);
  const code = q.get("code");
  if (!code || getConfig().auth.mode !== "cognito") return null;
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  sessionStorage.removeItem(PKCE_KEY);
  if (!saved || saved.state !== q.get("state")) throw new Error("the sign-in answer does not match the request; sign in again");
  const { auth } = getConfig();
  const r = await fetch(`${auth.domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", client_id: auth.client_id, code, redirect_uri: redirectURI(), code_verifier: saved.verifier,
    }),
  });
  if (!r.ok) throw new Error(`sign-in failed: the token endpoint answered ${r.status}`);
  const t = await r.json();
  // The id token carries email and cognito:groups; the API's authorizer accepts it (audience =
  // the app client).
  setToken(t.id_token);
  return saved.back || "";
}

/** signOut forgets the token (and ends the hosted UI session in AWS). */
export function signOut() {
  setToken(null);
  const { auth } = getConfig();
  if (auth.mode === "cognito") {
    const q = new URLSearchParams({ client_id: auth.client_id, logout_uri: redirectURI() });
    location.assign(`${auth.domain}/logout?${q}`);
  }
}

/** siteList reads "ams1, fra2" as ["ams1", "fra2"]. */
function siteList(s) {
  return s.split(",").map((x) => x.trim()).filter(Boolean);
}

/** SignIn is the sign-in page for the configured mode. */
export function SignIn({ message }) {
  const { auth } = getConfig();
  const [email, setEmail] = useState("dev@netauto.local");
  const [role, setRole] = useState("operator");
  const [sites, setSites] = useState("");
  const [pasted, setPasted] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function devSignIn(ev) {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // The dev sign-in is on the local gateway, the API's origin (the UI may be served elsewhere).
      const r = await fetch(getConfig().api_url + "/dev/token", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, role, sites: siteList(sites) }),
      });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error ? `${body.error.field}: ${body.error.message}` : `HTTP ${r.status}`);
      setToken(body.token);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  }

  function tokenSignIn(ev) {
    ev.preventDefault();
    const t = pasted.trim();
    if (!claims(t)) {
      setError("token: this is not a JWT");
      return;
    }
    setToken(t);
  }

  return html`
    <main class="signin" id="main">
      <h1>Sign in to NetAuto</h1>
      ${message && html`<p class="notice" role="status">${message}</p>`}
      ${auth.mode === "cognito" && html`
        <p>You will be sent to your organisation's sign-in page and brought back here.</p>
        <button class="primary" onClick=${() => startCognito().catch((e) => setError(e.message))}>Sign in</button>`}
      ${auth.mode === "dev" && html`
        <form onSubmit=${devSignIn} aria-describedby="dev-note">
          <p id="dev-note" class="muted">Local development sign-in: pick any email and a role. This exists only on the local gateway.</p>
          <label for="signin-email">Email</label>
          <input id="signin-email" type="email" value=${email} onInput=${(e) => setEmail(e.target.value)} required autocomplete="username" />
          <label for="signin-role">Role</label>
          <select id="signin-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
            <option value="viewer">viewer — read only</option>
            <option value="operator">operator — runs commands</option>
            <option value="admin">admin — also manages devices and retention</option>
          </select>
          <label for="signin-sites">Only on sites <span class="muted small">(optional)</span></label>
          <input id="signin-sites" value=${sites} onInput=${(e) => setSites(e.target.value)} placeholder="ams1, fra2" aria-describedby="signin-sites-note" />
          <p id="signin-sites-note" class="muted small">Empty: the role everywhere. Sites: the role on those sites' devices only (groups <code>role:site</code>).</p>
          <button class="primary" type="submit" id="signin-submit" disabled=${busy}>Sign in</button>
        </form>`}
      ${auth.mode === "token" && html`
        <form onSubmit=${tokenSignIn}>
          <label for="signin-token">Bearer token (JWT)</label>
          <textarea id="signin-token" rows="5" value=${pasted} onInput=${(e) => setPasted(e.target.value)} spellcheck="false"></textarea>
          <button class="primary" type="submit">Use token</button>
        </form>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
    </main>`;
}
