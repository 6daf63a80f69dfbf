// The signed-in user as the API sees them (GET /v1/whoami, read once per token): the name it
// records as requester and owner, and the roles it enforces, e.g. "admin" or "operator on ams1,
// fra2". The header shows them; the token's own claims stand in until the answer comes.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, getToken, identity } from "./api.js";

let asked = { token: null, answer: null };

/**
 * whoami is GET /v1/whoami for the current token, read once per token (again after a failure).
 * A token with no role anywhere is refused (403): it holds none, under the token's name.
 */
export function whoami() {
  const token = getToken();
  if (asked.token !== token || !asked.answer) {
    const answer = get("/v1/whoami").catch((e) => {
      if (e.status === 403) return { name: identity() ? identity().name : "", roles: [], role: "" };
      if (asked.answer === answer) asked.answer = null;
      throw e;
    });
    asked = { token, answer };
  }
  return asked.answer;
}

/** useWhoami is whoami's answer for the current token: null until it comes (or when it failed). */
export function useWhoami() {
  const token = getToken();
  const [got, setGot] = useState({ token: null, who: null });
  useEffect(() => {
    let live = true;
    whoami().then((who) => live && setGot({ token, who }), () => live && setGot({ token, who: null }));
    return () => { live = false; };
  }, [token]);
  return got.token === token ? got.who : null;
}

/** describeGrants reads grants as "admin" or "operator on ams1, fra2 · viewer". */
export function describeGrants(grants) {
  if (!grants || !grants.length) return "no role";
  return grants.map((g) => (g.sites && g.sites.length ? `${g.role} on ${g.sites.join(", ")}` : g.role)).join(" · ");
}

/** grantsFromClaims turns the token's identity into the grants GET /v1/whoami would list. */
function grantsFromClaims(id) {
  const bySite = {};
  for (const [site, role] of Object.entries(id.sites || {})) (bySite[role] = bySite[role] || []).push(site);
  const grants = [];
  for (const role of ["admin", "operator", "viewer"]) {
    if (id.role === role) grants.push({ role });
    if (bySite[role]) grants.push({ role, sites: bySite[role].sort() });
  }
  return grants;
}

/** Me shows who is signed in and their roles with scope. */
export function Me() {
  const id = identity();
  const who = useWhoami();
  const name = who ? who.name : id.name;
  const grants = who ? who.roles : grantsFromClaims(id);
  const top = grants.length ? grants[0].role : "";
  const label = describeGrants(grants);
  return html`<span class="me-id" title=${who && who.subject ? `subject ${who.subject}` : ""}>
    <span id="whoami">${name}</span> <span id="my-roles" class=${"role r-" + top} title=${label} data-source=${who ? "api" : "token"}>${label}</span></span>`;
}
