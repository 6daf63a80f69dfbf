// Unit tests of the job page's live state (web/js/live.js, JobFeed) under node's test runner, run
// by web/e2e_test.go (TestJobFeed): progress contract version 2 (docs/websocket.md) against an
// API answered in memory — counts from the devices held, the device rule, job_done's final
// counts, a catch-up that follows next page by page, and the socket's token expiring (the server
// pushes nothing after its exp: the feed drops the socket and reads over HTTP, whose 401 signs the
// user out). The browser tests (ui.test.mjs, access.test.mjs) drive the same code against the
// local stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig, getConfig, setToken, identity, onAuthChange } from "../js/api.js";
import { JobFeed } from "../js/live.js";

globalThis.requestAnimationFrame = (fn) => setTimeout(fn, 0);
globalThis.cancelAnimationFrame = (id) => clearTimeout(id);

// The API in memory: routes maps a path to a function of the request's URL that returns the body.
let routes = {};
const requests = [];
globalThis.fetch = async (url) => {
  const u = new URL(url, "http://api.test/");
  requests.push(u);
  if (u.pathname === "/config.json") return Response.json({ api_url: "http://api.test", ws_url: "" });
  const route = routes[u.pathname];
  if (!route) return Response.json({ error: { code: "not_found", message: "no route " + u.pathname } }, { status: 404 });
  const out = route(u);
  return out instanceof Response ? out : Response.json(out);
};
await loadConfig();

// The tab's token store and a WebSocket that only records what the feed does with it.
const stored = new Map();
globalThis.sessionStorage = { getItem: (k) => stored.get(k) ?? null, setItem: (k, v) => stored.set(k, v), removeItem: (k) => stored.delete(k) };
const sockets = [];
globalThis.WebSocket = class {
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = false;
    sockets.push(this);
  }
  send(m) { this.sent.push(JSON.parse(m)); }
  close() { this.closed = true; }
};
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
/** jwt is an unsigned token with claims (the UI reads claims only; the API checks signatures). */
const jwt = (claims) => `${b64url({ alg: "none" })}.${b64url(claims)}.sig`;

const JOB = "job1";
const job = (over = {}) => ({ job_id: JOB, status: "running", device_count: 4, counts: { queued: 4 }, seq: 0, ...over });
const dev = (id, status, seq, over = {}) => ({ device_id: id, status, seq, run_id: `${JOB}.${id}`, ...over });
const ev = (id, status, seq, over = {}) => ({ type: "bulk_progress", job_id: JOB, ...dev(id, status, seq), at: "2026-12-07T00:00:00Z", ...over });
const done = (seq, counts) => ({ type: "job_done", job_id: JOB, status: "completed", seq, counts, at: "2026-12-07T00:00:01Z" });

/** feedOf is a feed holding the job and devices, as start() leaves it, without timers or a socket. */
function feedOf(j, devices) {
  routes = {
    [`/v1/bulk/${JOB}`]: () => j,
    [`/v1/bulk/${JOB}/devices`]: () => ({ items: devices }),
  };
  requests.length = 0;
  const feed = new JobFeed(JOB, () => {});
  feed.applyJob(j);
  for (const d of devices) feed.applyDevice(d);
  feed.state = "reconnecting";
  return feed;
}

test("counts are the devices held by status", async (t) => {
  const cases = [
    { name: "no device held: all queued", devices: [], want: { queued: 4 } },
    { name: "devices not held count queued", devices: [dev("a", "running", 5 << 20), dev("b", "succeeded", 9 << 20)], want: { queued: 2, running: 1, succeeded: 1 } },
    {
      name: "every device held",
      devices: [dev("a", "succeeded", 1), dev("b", "failed", 2), dev("c", "queued", 0), dev("d", "running", 3)],
      want: { succeeded: 1, failed: 1, queued: 1, running: 1 },
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      // The job's own counts (as of some read) never stand in for the devices while it runs.
      const feed = feedOf(job({ counts: { queued: 1, succeeded: 3 } }), c.devices);
      assert.deepEqual(feed.counts, c.want);
      feed.close();
    });
  }
});

test("the device rule: only a higher seq moves a device", async (t) => {
  const cases = [
    { name: "higher seq applies", event: ev("a", "succeeded", 7 << 20), want: "succeeded" },
    { name: "equal seq is a duplicate", event: ev("a", "failed", 5 << 20), want: "running" },
    { name: "lower seq arrived late", event: ev("a", "queued", 3), want: "running" },
    { name: "a gap in seq means nothing", event: ev("a", "timed_out", (5 << 20) + 1000000), want: "timed_out" },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const feed = feedOf(job(), [dev("a", "running", 5 << 20)]);
      feed.onMessage(c.event);
      assert.equal(feed.devices.get("a").status, c.want);
      assert.equal(feed.counts[c.want], 1);
      assert.equal(feed.state, "live", "an event means the socket is live");
      feed.close();
    });
  }
});

test("an event's counts are ignored; job_done's win", () => {
  const feed = feedOf(job(), [dev("a", "running", 1), dev("b", "running", 2)]);
  // A version-1 server still sends counts on bulk_progress: they are not the devices held.
  feed.onMessage(ev("a", "succeeded", 10, { counts: { succeeded: 4 } }));
  assert.deepEqual(feed.counts, { queued: 2, running: 1, succeeded: 1 });
  feed.onMessage(done(20, { succeeded: 3, unreachable: 1 }));
  assert.equal(feed.state, "done");
  assert.deepEqual(feed.counts, { succeeded: 3, unreachable: 1 });
  assert.equal(feed.doneCount(), 4);
  feed.close();
});

test("a snapshot's seq is where a catch-up starts, once every part is in", () => {
  const feed = feedOf(job(), []);
  feed.onMessage({ type: "snapshot", job_id: JOB, seq: 90 << 20, part: 1, parts: 2, job: job(), devices: [dev("a", "running", 40 << 20)] });
  assert.equal(feed.seq, 40 << 20, "part 1 of 2 moves since to its devices only");
  feed.onMessage({ type: "snapshot", job_id: JOB, seq: 90 << 20, part: 2, parts: 2, devices: [dev("b", "succeeded", 90 << 20)] });
  assert.equal(feed.seq, 90 << 20);
  assert.deepEqual(feed.counts, { queued: 2, running: 1, succeeded: 1 });
  feed.close();
});

test("catch-up follows next with the same since", async () => {
  const since = 50 << 20;
  const feed = feedOf(job(), [dev("a", "running", since), dev("b", "running", 30 << 20)]);
  // Pages by batch, fewer items than the limit and a next; a device already held comes again.
  const pages = {
    "": { items: [ev("b", "running", 30 << 20)], next: "p2" },
    p2: { items: [ev("a", "succeeded", 60 << 20), ev("c", "running", 61 << 20)], next: "p3" },
    p3: { items: [ev("c", "failed", 62 << 20, { reason: "exit_status" })], next: "p4" },
    p4: { items: [ev("d", "succeeded", 63 << 20, { changed: true, output_digest: "5d41402abc4b2a76b9719d911017c592" }), ev("b", "succeeded", 64 << 20), done(65 << 20, { succeeded: 3, failed: 1 })] },
  };
  routes[`/v1/bulk/${JOB}/events`] = (u) => pages[u.searchParams.get("cursor") || ""];
  await feed.catchUp();
  const reads = requests.filter((u) => u.pathname.endsWith("/events"));
  const pass = [[String(since), null, "500"], [String(since), "p2", "500"], [String(since), "p3", "500"], [String(since), "p4", "500"]];
  // The last page ended the job: the pages are read once more before the job is done.
  assert.deepEqual(reads.map((u) => [u.searchParams.get("since"), u.searchParams.get("cursor"), u.searchParams.get("limit")]), [...pass, ...pass]);
  assert.equal(feed.catchUpPages, 8);
  assert.deepEqual(Object.fromEntries([...feed.devices].map(([id, d]) => [id, d.status])), { a: "succeeded", b: "succeeded", c: "failed", d: "succeeded" });
  assert.equal(feed.devices.get("c").reason, "exit_status");
  assert.equal(feed.devices.get("d").changed, true, "every field of the event reaches the device");
  assert.equal(feed.devices.get("d").type, undefined, "the event's own fields do not");
  assert.equal(feed.state, "done");
  assert.deepEqual(feed.counts, { succeeded: 3, failed: 1 });
  feed.close();
});

test("a job that ends while a catch-up reads its pages is read once more", async () => {
  const feed = feedOf(job({ device_count: 2 }), [dev("a", "running", 10), dev("b", "running", 11)]);
  // The first pass reads a's page while a still runs; a finishes, then b's page shows the end.
  let passes = 0;
  routes[`/v1/bulk/${JOB}/events`] = (u) => {
    if (!u.searchParams.get("cursor")) passes++;
    if (u.searchParams.get("cursor") !== "p2") return { items: [passes === 1 ? ev("a", "running", 12) : ev("a", "succeeded", 14)], next: "p2" };
    return { items: [ev("b", "succeeded", 13), done(15, { succeeded: 2 })] };
  };
  await feed.catchUp();
  assert.equal(passes, 2, "two passes");
  assert.equal(feed.devices.get("a").status, "succeeded", "a's state from after the end");
  assert.equal(feed.state, "done");
  feed.close();
});

test("a full page without next is the last", async () => {
  const feed = feedOf(job(), []);
  feed.catchUpLimit = 2;
  routes[`/v1/bulk/${JOB}/events`] = () => ({ items: [ev("a", "running", 1), ev("b", "running", 2)] });
  await feed.catchUp();
  assert.equal(requests.filter((u) => u.pathname.endsWith("/events")).length, 1, "one read");
  feed.close();
});

test("a refused subscribe leaves the progress to the 2 s reads", () => {
  const feed = feedOf(job(), []);
  feed.state = "connecting";
  feed.onMessage({ type: "error", code: "not_found", message: "no such job", action: "subscribe", job_id: JOB });
  assert.equal(feed.state, "polling");
  assert.equal(feed.error, "no such job");
  feed.close();
});

test("the socket's token expiring", async (t) => {
  const exp = Math.floor(Date.now() / 1000) + 600;
  const token = (e) => jwt({ sub: "s1", email: "op@netauto.test", email_verified: true, "cognito:groups": ["operator"], exp: e });
  const unauthorized = () => Response.json({ error: { code: "unauthorized", message: "a valid bearer token is required" } }, { status: 401 });
  /** live is a started feed whose socket is open with a token expiring at exp, its snapshot in; closed after st. */
  async function live(st) {
    setToken(token(exp));
    const feed = feedOf(job(), [dev("a", "running", 1)]);
    st.after(() => feed.close());
    feed.state = "connecting";
    sockets.length = 0;
    await feed.start();
    assert.equal(sockets.length, 1, "a socket is opened");
    feed.onMessage({ type: "snapshot", job_id: JOB, seq: 1, job: job(), devices: [dev("a", "running", 1)] });
    assert.equal(feed.state, "live");
    return feed;
  }
  getConfig().ws_url = "ws://api.test/ws";
  t.after(() => {
    getConfig().ws_url = "";
    setToken(null);
  });

  await t.test("at exp the socket goes and the catch-up's 401 signs out", async (st) => {
    const feed = await live(st);
    const reads = () => requests.filter((u) => u.pathname.endsWith("/events")).length;
    await feed.tick(exp * 1000 - 1);
    assert.equal(feed.state, "live", "before exp nothing changes");
    assert.equal(reads(), 0, "no read while live");
    routes[`/v1/bulk/${JOB}/events`] = unauthorized;
    let signedOut = false;
    const off = onAuthChange((id) => { signedOut = id === null; });
    await feed.tick(exp * 1000);
    off();
    assert.equal(sockets[0].closed, true, "the socket whose token expired is closed");
    assert.equal(sockets.length, 1, "no socket with the expired token");
    assert.equal(feed.state, "expired");
    assert.equal(reads(), 1, "the feed reads over HTTP");
    assert.ok(signedOut && identity() === null, "the API's 401 signed the user out");
    feed.close();
  });

  await t.test("with a newer token held it connects again", async (st) => {
    const feed = await live(st);
    setToken(token(exp + 3600));
    await feed.tick(exp * 1000);
    assert.equal(sockets[0].closed, true);
    assert.equal(sockets.length, 2, "a new socket");
    assert.ok(sockets[1].url.endsWith("token=" + encodeURIComponent(token(exp + 3600))), "with the newer token");
    assert.equal(feed.state, "reconnecting");
    feed.close();
  });

  await t.test("a refusal is kept for the page; token_expired ends the socket", async (st) => {
    const feed = await live(st);
    routes[`/v1/bulk/${JOB}/events`] = () => ({ items: [] });
    feed.onMessage({ type: "error", code: "forbidden", message: "this needs the viewer role", action: "subscribe", job_id: JOB });
    assert.equal(feed.error, "this needs the viewer role");
    assert.equal(feed.errorCode, "forbidden");
    assert.equal(sockets[0].closed, false, "another refusal keeps the socket");
    assert.equal(feed.state, "live", "a refusal after the snapshot leaves the feed live");
    feed.onMessage({ type: "error", code: "token_expired", message: "the token has expired", action: "subscribe", job_id: JOB });
    assert.equal(feed.errorCode, "token_expired");
    assert.equal(sockets[0].closed, true);
    assert.equal(sockets.length, 1, "no reconnect with the same token");
    assert.equal(feed.state, "expired");
    feed.onMessage({ type: "snapshot", job_id: JOB, seq: 2, job: job(), devices: [] });
    assert.equal(feed.error, "", "a snapshot clears the refusal");
    feed.close();
  });
});
