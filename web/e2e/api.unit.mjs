// Unit tests of the API client's helpers (web/js/api.js) under node's test runner, run by
// web/e2e_test.go (TestAPIHelpers): formErrors, which puts an API error under the inputs on screen
// and the rest (a 409 version conflict among them) in the form's general message; collect, which
// follows next until enough items came, as a list the API filters after reading (jobs by the
// caller's sites, a device's history) can answer a page with none and a next; and the caller's
// name read from the token as the API reads it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, loadConfig, formErrors, collect, setToken, identity } from "../js/api.js";

let pages = {};
const requests = [];
globalThis.fetch = async (url) => {
  const u = new URL(url, "http://api.test/");
  requests.push(u);
  if (u.pathname === "/config.json") return Response.json({ api_url: "http://api.test" });
  return Response.json(pages[u.searchParams.get("cursor") || ""]);
};
await loadConfig();

test("formErrors", async (t) => {
  const invalid = (details) => new ApiError(400, { error: { code: "invalid", message: details[0].message, field: details[0].field, details } });
  const cases = [
    {
      name: "a 409 version conflict is the general message",
      err: new ApiError(409, { error: { code: "version_conflict", field: "version", message: "the device was changed by someone else; read it again and retry" } }),
      want: { fields: {}, general: "r1 changed meanwhile" },
    },
    {
      name: "a 409 other than a conflict under its input",
      err: new ApiError(409, { error: { code: "already_exists", field: "id", message: "already exists" } }),
      want: { fields: { id: "already exists" }, general: "" },
    },
    {
      name: "fields on screen under their inputs",
      err: invalid([{ field: "host", message: "is required" }, { field: "port", message: "must be from 1 to 65535" }]),
      want: { fields: { host: "is required", port: "must be from 1 to 65535" }, general: "" },
    },
    {
      name: "a field not on screen is the general message",
      err: invalid([{ field: "password", message: "is required with auth_method password" }]),
      want: { fields: {}, general: "password: is required with auth_method password" },
    },
    {
      name: "some on screen, the rest in the general message",
      err: invalid([{ field: "host", message: "is required" }, { field: "password", message: "is required" }]),
      want: { fields: { host: "is required" }, general: "password: is required" },
    },
    {
      name: "an element's field under its input, named",
      err: invalid([{ field: "allowed_sites[1]", message: "must not be empty" }]),
      key: (f) => f.replace(/[[.].*$/, ""),
      want: { fields: { allowed_sites: "allowed_sites[1]: must not be empty" }, general: "" },
    },
    {
      name: "no field at all",
      err: new ApiError(503, { error: { code: "unavailable", message: "this is not available on this deployment" } }),
      want: { fields: {}, general: "this is not available on this deployment" },
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const got = formErrors(c.err, ["id", "host", "port", "private_key", "allowed_sites"], { key: c.key, conflict: "r1 changed meanwhile" });
      assert.deepEqual(got, c.want);
    });
  }
});

test("collect follows next", async (t) => {
  const cases = [
    {
      name: "empty pages with a next are followed until enough items came",
      pages: { "": { items: [], next: "p2" }, p2: { items: [{ id: 1 }], next: "p3" }, p3: { items: [{ id: 2 }, { id: 3 }], next: "p4" }, p4: { items: [{ id: 4 }] } },
      want: 3, items: [1, 2, 3], next: "p4", reads: ["", "p2", "p3"],
    },
    {
      name: "the list ends first",
      pages: { "": { items: [{ id: 1 }], next: "p2" }, p2: { items: [] } },
      want: 15, items: [1], next: "", reads: ["", "p2"],
    },
    {
      name: "at most maxPages pages",
      pages: { "": { items: [], next: "p2" }, p2: { items: [], next: "p3" }, p3: { items: [{ id: 1 }] } },
      want: 1, maxPages: 2, items: [], next: "p3", reads: ["", "p2"],
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      pages = c.pages;
      requests.length = 0;
      const got = await collect("/v1/bulk?limit=15", c.want, c.maxPages);
      assert.deepEqual(got.items.map((i) => i.id), c.items);
      assert.equal(got.next, c.next);
      assert.deepEqual(requests.map((u) => u.searchParams.get("cursor") || ""), c.reads);
      assert.ok(requests.every((u) => u.searchParams.get("limit") === "15"), "the same limit on every page");
    });
  }
});

test("the caller's name is the verified email, else the subject", async (t) => {
  const stored = new Map();
  globalThis.sessionStorage = { getItem: (k) => stored.get(k) ?? null, setItem: (k, v) => stored.set(k, v), removeItem: (k) => stored.delete(k) };
  const jwt = (claims) => `${Buffer.from("{}").toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
  t.after(() => setToken(null));
  const cases = [
    { name: "verified", claims: { sub: "s1", email: "a@b.test", email_verified: true }, want: "a@b.test" },
    { name: "verified as a string", claims: { sub: "s1", email: "a@b.test", email_verified: "true" }, want: "a@b.test" },
    { name: "unverified", claims: { sub: "s1", email: "a@b.test", email_verified: false }, want: "s1" },
    { name: "no email_verified", claims: { sub: "s1", email: "a@b.test" }, want: "s1" },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      setToken(jwt({ ...c.claims, "cognito:groups": ["viewer"] }));
      assert.equal(identity().name, c.want);
    });
  }
});
