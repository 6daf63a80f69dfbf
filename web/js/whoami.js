// The signed-in user in the header: the name and roles the API enforces (GET /v1/whoami), e.g.
// "admin" or "operator on ams1, fra2"; the token's own claims stand in until the answer comes.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, getToken, identity } from "./api.js";

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
  const token = getToken();
  const [who, setWho] = useState(null);
  useEffect(() => {
    let live = true;
    setWho(null);
    get("/v1/whoami").then(
      (w) => live && setWho(w),
      // A token with no role anywhere is refused (403): it holds none.
      (e) => live && setWho(e.status === 403 ? { name: id.email, roles: [] } : null),
    );
    return () => { live = false; };
  }, [token]);
  const name = who ? who.name : id.email;
  const grants = who ? who.roles : grantsFromClaims(id);
  const top = grants.length ? grants[0].role : "";
  const label = describeGrants(grants);
  return html`<span class="me-id" title=${who && who.subject ? `subject ${who.subject}` : ""}>
    <span id="whoami">${name}</span> <span id="my-roles" class=${"role r-" + top} title=${label} data-source=${who ? "api" : "token"}>${label}</span></span>`;
}
