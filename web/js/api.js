// The API client: config.json, the signed-in identity, and fetch with the bearer token. Errors
// become ApiError with the API's code, message and field, so forms can show them where they belong.

let config = null;
let token = null;
const TOKEN_KEY = "netauto.token";
const listeners = new Set();

/** ApiError is a non-2xx answer of the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || (status ? `HTTP ${status}` : "the API could not be reached"));
    this.status = status;
    this.code = e.code || "";
    this.field = e.field || "";
    this.details = e.details || (e.field ? [{ field: e.field, message: e.message }] : []);
    this.body = body;
  }
  /** text names the field and the problem, e.g. "options.timeout_s: must be from 1 to 240 seconds". */
  get text() {
    return this.field ? `${this.field}: ${this.message}` : this.message;
  }
}

/** loadConfig reads config.json (written at deploy in AWS, served by the local gateway). */
export async function loadConfig() {
  if (config) return config;
  const r = await fetch("config.json", { cache: "no-store" });
  if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
  config = await r.json();
  config.api_url = (config.api_url || "").replace(/\/$/, "");
  config.auth = config.auth || { mode: "token" };
  return config;
}

export function getConfig() {
  return config;
}

/** claims decodes a JWT's payload (for display only; the API checks the signature). */
export function claims(tok) {
  try {
    const part = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="))
        .split("")
        .map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0"))
        .join(""),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}

const RANK = { viewer: 1, operator: 2, admin: 3 };

// SITE_BAD are the characters a site name in a "<role>:<site>" group may not hold (as the API reads it).
const SITE_BAD = /[\s,:[\]"]/;

/**
 * identity of the signed-in user from the token, for display and to hide what the API would refuse:
 * {name, role (held everywhere), sites ({site: role} from "<role>:<site>" groups), exp}, or null.
 * name is as the API reads it (the email once verified, else the subject), but the API's own view
 * is GET /v1/whoami (whoami.js): compare owners and requesters with its name.
 */
export function identity() {
  if (!token) return null;
  const c = claims(token);
  if (!c) return null;
  let groups = c["cognito:groups"] || [];
  if (typeof groups === "string") groups = groups.replace(/^\[|\]$/g, "").split(/\s+/);
  let role = "";
  const sites = {};
  for (const g of groups) {
    const i = g.indexOf(":");
    const r = i < 0 ? g : g.slice(0, i);
    if (!RANK[r]) continue;
    if (i < 0) {
      if (!role || RANK[r] > RANK[role]) role = r;
      continue;
    }
    const site = g.slice(i + 1);
    if (site && !SITE_BAD.test(site) && (!sites[site] || RANK[r] > RANK[sites[site]])) sites[site] = r;
  }
  for (const [site, r] of Object.entries(sites)) if (RANK[r] <= (RANK[role] || 0)) delete sites[site];
  const verified = String(c.email_verified).trim().toLowerCase() === "true";
  return { name: (verified && c.email) || c.sub || "", role, sites, exp: c.exp || 0 };
}

/** can reports whether the signed-in user holds at least role need everywhere. */
export function can(need) {
  const id = identity();
  return !!id && (RANK[id.role] || 0) >= RANK[need];
}

/**
 * canSomewhere reports whether the signed-in user holds at least role need everywhere or on some
 * site: what the API's site-scoped routes let in (they then serve only the user's sites).
 */
export function canSomewhere(need) {
  const id = identity();
  return !!id && (can(need) || Object.values(id.sites).some((r) => RANK[r] >= RANK[need]));
}

/** canOn reports whether the signed-in user holds at least role need on site (or everywhere). */
export function canOn(need, site) {
  const id = identity();
  return !!id && (can(need) || (!!site && RANK[id.sites[site]] >= RANK[need]));
}

export function getToken() {
  return token;
}

/** setToken stores (or with null, forgets) the token for this browser tab. */
export function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  for (const fn of listeners) fn(identity());
}

/** restoreToken takes the tab's token back from sessionStorage unless it has expired. */
export function restoreToken() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (!t) return;
  const c = claims(t);
  if (c && (!c.exp || c.exp * 1000 > Date.now() + 30000)) token = t;
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** onAuthChange calls fn with the identity whenever it changes (null: signed out or expired). */
export function onAuthChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * request calls the API: path under /v1, JSON body (or raw with contentType), the answer as JSON
 * (or the Response itself with raw: true). A 401 signs the user out.
 */
export async function request(method, path, { body, contentType, raw, signal } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  let payload;
  if (body !== undefined) {
    if (contentType) {
      headers["Content-Type"] = contentType;
      payload = body;
    } else {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  let r;
  try {
    r = await fetch(config.api_url + path, { method, headers, body: payload, signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { error: { code: "network", message: "the API could not be reached: " + e.message } });
  }
  if (raw && r.ok) return r;
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: { message: text.slice(0, 200) || `HTTP ${r.status}` } };
  }
  if (!r.ok) {
    if (r.status === 401 && token) {
      setToken(null);
    }
    throw new ApiError(r.status, data);
  }
  return data;
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, body, opts) => request("POST", path, { ...opts, body });

/**
 * formErrors splits an API error between a form's inputs and its general message. A detail whose
 * field, through key, names one of inputs (the inputs on screen) goes under that input
 * ({input: message}, the field named when it is not the input's own); the others, and an error
 * naming no input, make the general message. A 409 version conflict says conflict.
 */
export function formErrors(e, inputs, { key = (f) => f, message = (d, k) => (k === d.field ? d.message : `${d.field}: ${d.message}`), conflict = "" } = {}) {
  const fields = {};
  const rest = [];
  for (const d of e.details || []) {
    const k = key(d.field || "");
    if (d.field && inputs.includes(k)) fields[k] = message(d, k);
    else rest.push(d.field ? `${d.field}: ${d.message}` : d.message);
  }
  let general = "";
  if (e.status === 409 && e.code === "version_conflict") general = conflict || "Changed by someone else meanwhile: reload and try again.";
  else if (rest.length) general = rest.join("; ");
  else if (!Object.keys(fields).length) general = e.text || e.message;
  return { fields, general };
}

/**
 * collect reads pages of path (a list answering {items, next}) by its cursor until it holds want
 * items or the list ends, reading at most maxPages: a page may hold fewer items than asked, none
 * at all, and still have a next. It returns {items, next} (next: where to go on, "" at the end).
 */
export async function collect(path, want, maxPages = 10, cursor = "") {
  const items = [];
  for (let n = 0; n < maxPages; n++) {
    const page = await get(path + (cursor ? (path.includes("?") ? "&" : "?") + "cursor=" + encodeURIComponent(cursor) : ""));
    items.push(...(page.items || []));
    cursor = page.next || "";
    if (!cursor || items.length >= want) break;
  }
  return { items, next: cursor };
}
