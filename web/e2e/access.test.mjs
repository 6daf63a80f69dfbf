// End-to-end test of what the UI offers whom, held to the API's rules (run by web/e2e_test.go,
// TestUIAccess), on three linux devices of site-01 (one printing slowly) and one of site lab2:
// Cancel and Re-run for the job's requester and admins only; a token whose email is not verified,
// named by its subject as the API names it, owning its saved job and job; a user admin on site-01
// and operator on lab2 (Edit and Delete on site-01's rows only, no jump chain: jump hosts are
// listed to admins everywhere); Recent jobs and a device's history following next past pages the
// API answered empty; a version conflict shown in the device, jump host, webhook and credential
// profile forms; a jump host's password replaced by a key; the live feed's refusal on the job
// page; and a token expiring on a live job page, which signs the user out. Tokens the dev sign-in
// cannot make come from $TOKEN_URL.
import { script, newPage, signIn, signInWithToken, shot, step, assert, api } from "./lib.mjs";

const TOKEN_URL = process.env.TOKEN_URL;

/** token issues a token of the local issuer with claims the dev sign-in cannot give. */
async function token({ sub, email = "", verified = true, groups, ttl = 3600 }) {
  const q = new URLSearchParams({ sub, email, verified: String(verified), groups: groups.join(","), ttl_s: String(ttl) });
  const r = await fetch(`${TOKEN_URL}/token?${q}`, { method: "POST" });
  const text = await r.text();
  assert(r.ok, `token: ${r.status} ${text}`);
  return text;
}

/** go routes the single-page app to a query string, as its links do. */
const go = (page, to) => page.evaluate((to) => window.netautoNavigate(to), to);

/** whoamiIn waits until the header shows the API's answer to GET /v1/whoami (the name pages compare). */
const whoamiIn = (page) => page.locator("#my-roles[data-source=api]").waitFor();

/** jobEnded waits until the API says job id has ended. */
async function jobEnded(page, id) {
  await page.waitForFunction(async (id) => {
    const cfg = await (await fetch("config.json")).json();
    const r = await fetch((cfg.api_url || "") + "/v1/bulk/" + encodeURIComponent(id), { headers: { Authorization: "Bearer " + sessionStorage.getItem("netauto.token") } });
    return r.ok && ["completed", "cancelled", "stopped", "failed"].includes((await r.json()).status);
  }, id, { timeout: 60000, polling: 500 });
}

/** startJob starts command on ids as the page's user (an admin may name another requester) and returns the job's id. */
async function startJob(page, command, ids, requestedBy) {
  const r = await api(page, "POST", "/v1/bulk", { command, device_ids: ids, ...(requestedBy ? { requested_by: requestedBy } : {}) });
  assert(r.status === 202, `start ${command}: ${JSON.stringify(r)}`);
  return r.body.job_id;
}

await script(async (browser, problems) => {
  const adm = await newPage(browser, problems);
  adm.on("dialog", (d) => d.accept());
  let slow = "";
  let fast = [];

  await step(adm, "the fleet, and a device on another site", async () => {
    await signIn(adm, "admin", "e2e-admin@netauto.local");
    const list = await api(adm, "GET", "/v1/devices?limit=100");
    slow = list.body.items.find((d) => d.tags.sim_fault === "slow_drip").id;
    fast = list.body.items.filter((d) => d.id !== slow).map((d) => d.id).sort();
    assert(fast.length === 2 && list.body.items.every((d) => d.site === "site-01"), "the fleet: " + JSON.stringify(list.body.items.map((d) => [d.id, d.site])));
    const lab = await api(adm, "POST", "/v1/devices", { id: "e2e-lab2", name: "lab2 router", host: "127.0.0.1", port: 1, platform: "linux", username: "ops", password: "pw", site: "lab2" });
    assert(lab.status === 201, "create e2e-lab2: " + JSON.stringify(lab));
  });

  await step(adm, "Cancel and Re-run only for the job's requester or an admin", async () => {
    const req = await newPage(browser, problems);
    req.on("dialog", (d) => d.accept());
    await signIn(req, "operator", "e2e-requester@netauto.local");
    // An operator may not run seq: an admin starts it for the requester.
    const id = await startJob(adm, "seq 100", [slow], "e2e-requester@netauto.local");
    const other = await newPage(browser, problems);
    await signIn(other, "operator", "e2e-other@netauto.local");
    await go(other, "?job=" + encodeURIComponent(id));
    await other.locator("#connection-state", { hasText: "live" }).waitFor();
    await whoamiIn(other);
    assert((await other.locator("#job-status").innerText()) !== "completed", "the job still runs");
    assert((await other.locator("#cancel-job").count()) === 0, "no Cancel for an operator who did not start the job");
    await shot(other, "a1-job-other-operator");
    await go(adm, "?job=" + encodeURIComponent(id));
    await adm.locator("#cancel-job").waitFor();
    await go(req, "?job=" + encodeURIComponent(id));
    await req.locator("#cancel-job").click();
    await req.locator("#rerun-job").waitFor({ timeout: 40000 });
    await go(other, "?");
    await go(other, "?job=" + encodeURIComponent(id));
    await other.locator("#connection-state", { hasText: "finished" }).waitFor();
    assert((await other.locator("#rerun-job").count()) === 0, "no Re-run for an operator who did not start the job");
    await other.context().close();
    await req.context().close();
  });

  await step(adm, "a token with an unverified email is named by its subject and owns what it starts", async () => {
    const un = await newPage(browser, problems);
    await signInWithToken(un, await token({ sub: "e2e-unverified-sub", email: "e2e-unverified@netauto.local", verified: false, groups: ["operator"] }));
    await un.locator("#whoami", { hasText: "e2e-unverified-sub" }).waitFor();
    const sj = await api(un, "POST", "/v1/saved-jobs", { name: "e2e mine", selector: { device_ids: [fast[0]] }, command: "uname -r" });
    assert(sj.status === 201 && sj.body.owner === "e2e-unverified-sub", "the saved job's owner: " + JSON.stringify(sj));
    await go(un, "?page=saved");
    await un.getByRole("button", { name: "Edit e2e mine" }).waitFor();
    await shot(un, "a2-saved-unverified-owner");
    await un.getByRole("button", { name: "Run now: e2e mine" }).click();
    await un.locator("#flash-job-link").click();
    await un.locator("#rerun-job").waitFor({ timeout: 40000 });
    assert((await un.locator("#job-status").innerText()) === "completed", "the job ended");
    await un.context().close();
  });

  await step(adm, "admin on one site, operator on another: Edit per row, no jump chain", async () => {
    const mx = await newPage(browser, problems);
    await signInWithToken(mx, await token({ sub: "e2e-mixed", email: "e2e-mixed@netauto.local", groups: ["admin:site-01", "operator:lab2"] }));
    await mx.locator("tr[data-id='e2e-lab2']").waitFor();
    await mx.getByRole("button", { name: "Edit " + fast[0] }).waitFor();
    assert((await mx.getByRole("button", { name: "Delete " + fast[0] }).count()) === 1, "Delete on a row of the admin's site");
    assert((await mx.getByRole("button", { name: "Edit e2e-lab2" }).count()) === 0, "no Edit on a row of the operator's site");
    assert((await mx.getByRole("button", { name: "Delete e2e-lab2" }).count()) === 0, "no Delete on a row of the operator's site");
    assert((await mx.getByRole("button", { name: "Add device" }).count()) === 1, "Add device for an admin of a site");
    assert((await mx.locator("#set-jump-chain").count()) === 0, "no jump chain: jump hosts are listed to admins everywhere only");
    await shot(mx, "a3-devices-mixed-roles");
    await mx.context().close();
  });

  await step(adm, "Recent jobs follows next past a page of other sites' jobs", async () => {
    await startJob(adm, "uname -a", ["e2e-lab2"]);
    let last = "";
    // More newer jobs on site-01 than a page of Recent jobs holds: the first page is all out of lab2's scope.
    for (let i = 0; i < 16; i++) last = await startJob(adm, "uname -r", [fast[1]]);
    const lab = await newPage(browser, problems);
    await signInWithToken(lab, await token({ sub: "e2e-lab2-viewer", email: "e2e-lab2@netauto.local", groups: ["viewer:lab2"] }));
    await lab.locator("details.recent summary").click();
    await lab.locator("details.recent li a code", { hasText: "uname -a" }).waitFor();
    assert((await lab.locator("details.recent li a").count()) === 1, "only lab2's job");
    await shot(lab, "a4-recent-jobs-other-site");
    await lab.context().close();
    await jobEnded(adm, last);
  });

  await step(adm, "a device's history follows next past an empty page", async () => {
    // The API may answer a page with no run and a next: the first page is answered so here.
    const isHistory = (u) => u.pathname.endsWith(`/v1/devices/${fast[1]}/history`);
    await adm.route(isHistory, async (route) => {
      const u = new URL(route.request().url());
      if (!u.searchParams.get("cursor")) return route.fulfill({ json: { items: [], next: "e2e-empty-page" } });
      if (u.searchParams.get("cursor") === "e2e-empty-page") u.searchParams.delete("cursor");
      return route.continue({ url: u.toString() });
    });
    await go(adm, `?device=${encodeURIComponent(fast[1])}&command=${encodeURIComponent("uname -r")}`);
    await adm.locator("#history-table tr[data-run]").first().waitFor();
    assert((await adm.locator("#history-summary").innerText()).includes("newest first"), "the runs are listed");
    await adm.unroute(isHistory);
  });

  await step(adm, "a version conflict shows in the device form", async () => {
    await go(adm, "?");
    await adm.getByRole("button", { name: "Edit " + fast[0] }).click();
    await adm.locator("#dev-name").fill("renamed here");
    const other = await api(adm, "PATCH", "/v1/devices/" + encodeURIComponent(fast[0]), { name: "renamed elsewhere" });
    assert(other.status === 200, "the other change: " + JSON.stringify(other));
    await adm.getByRole("dialog").getByRole("button", { name: "Save" }).click();
    await adm.getByRole("dialog").getByRole("alert").filter({ hasText: "was changed by someone else meanwhile" }).waitFor();
    await shot(adm, "a5-device-conflict");
    await adm.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    await adm.locator(`tr[data-id='${fast[0]}']`, { hasText: "renamed elsewhere" }).waitFor();
  });

  await step(adm, "a version conflict shows in the jump host form; a password replaced by a key", async () => {
    const j = await api(adm, "POST", "/v1/jump-hosts", { id: "e2e-jump", host: "192.0.2.60", username: "jump", password: "e2e-jump-pw", trust_on_first_use: true });
    assert(j.status === 201, "create e2e-jump: " + JSON.stringify(j));
    await go(adm, "?page=jump-hosts");
    const edit = adm.locator("#jump-hosts tr[data-id='e2e-jump']").getByRole("button", { name: "Edit / rotate" });
    await edit.click();
    await adm.locator("#jump-username").fill("jump2");
    const other = await api(adm, "PATCH", "/v1/jump-hosts/e2e-jump", { username: "elsewhere" });
    assert(other.status === 200, "the other change: " + JSON.stringify(other));
    await adm.locator("#jump-save").click();
    await adm.locator("#jump-error", { hasText: "was changed by someone else meanwhile" }).waitFor();
    await shot(adm, "a6-jump-host-conflict");
    await adm.getByRole("button", { name: "Cancel" }).click();
    await adm.locator("#jump-hosts tr[data-id='e2e-jump']", { hasText: "elsewhere" }).waitFor();
    await edit.click();
    await adm.locator("#jump-kind").selectOption("key");
    await adm.locator("#jump-secret").fill("-----BEGIN OPENSSH PRIVATE KEY-----\nZTJlLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n");
    await adm.locator("#jump-save").click();
    await adm.getByText("Jump host e2e-jump saved (credential replaced).").waitFor();
    const got = await api(adm, "GET", "/v1/jump-hosts/e2e-jump");
    assert(got.body.auth_method === "private-key" && got.body.has_credential, "the key is the credential: " + JSON.stringify(got.body));
  });

  await step(adm, "a version conflict shows in the webhook and credential profile forms", async () => {
    const h = await api(adm, "POST", "/v1/webhooks", { name: "e2e hook", url: "http://127.0.0.1:9/e2e", allow_private_cidrs: ["127.0.0.0/8"] });
    assert(h.status === 201, "create the webhook: " + JSON.stringify(h));
    await go(adm, "?page=webhooks");
    await adm.getByRole("button", { name: "Edit e2e hook" }).click();
    const hook = await api(adm, "PATCH", "/v1/webhooks/" + encodeURIComponent(h.body.id), { enabled: false, version: h.body.version });
    assert(hook.status === 200, "the other change: " + JSON.stringify(hook));
    await adm.locator("#hook-save").click();
    await adm.locator("#hook-error", { hasText: "was changed by someone else meanwhile" }).waitFor();
    await shot(adm, "a7-webhook-conflict");

    const p = await api(adm, "POST", "/v1/credential-profiles", { id: "e2e-prof", username: "ops", password: "e2e-prof-pw" });
    assert(p.status === 201, "create the profile: " + JSON.stringify(p));
    await go(adm, "?page=credentials");
    await adm.locator("#profiles tr[data-id='e2e-prof']").getByRole("button", { name: "Edit / rotate" }).click();
    const prof = await api(adm, "PATCH", "/v1/credential-profiles/e2e-prof", { username: "elsewhere", version: p.body.version });
    assert(prof.status === 200, "the other change: " + JSON.stringify(prof));
    await adm.locator("#profile-save").click();
    await adm.locator("#profile-error", { hasText: "was changed by someone else meanwhile" }).waitFor();
    await shot(adm, "a8-profile-conflict");
  });

  await step(adm, "the live feed's refusal shows on the job page, progress read over HTTP", async () => {
    const rf = await newPage(browser, problems);
    await signIn(rf, "admin", "e2e-admin@netauto.local");
    // The socket's subscribe is answered with a refusal, as the server answers one out of scope.
    await rf.routeWebSocket(/\/ws\?/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const msg = JSON.parse(m);
        if (msg.action !== "subscribe") return server.send(m);
        ws.send(JSON.stringify({ type: "error", code: "forbidden", message: "watching this job needs the viewer role on its sites", action: "subscribe", job_id: msg.job_id }));
      });
    });
    const id = await startJob(rf, "seq 30", [slow]);
    await go(rf, "?job=" + encodeURIComponent(id));
    await rf.locator("#feed-error", { hasText: "watching this job needs the viewer role on its sites (forbidden)" }).waitFor();
    await rf.locator("#connection-state", { hasText: "refreshing every 2 s" }).waitFor();
    await shot(rf, "a9-feed-refused");
    await rf.locator("#connection-state", { hasText: "finished" }).waitFor({ timeout: 40000 });
    await rf.context().close();
  });

  await step(adm, "a token expiring on a live job page signs the user out", async () => {
    const id = await startJob(adm, "seq 600", [slow]);
    const ex = await newPage(browser, problems);
    // The UI drops a restored token with less than 30 s left: this one has 40 s.
    await signInWithToken(ex, await token({ sub: "e2e-short", email: "e2e-short@netauto.local", groups: ["viewer"], ttl: 40 }));
    await go(ex, "?job=" + encodeURIComponent(id));
    await ex.locator("#connection-state", { hasText: "live" }).waitFor();
    // At the token's exp the server stops pushing while the socket stays open: the page must not freeze.
    await ex.getByText("You are signed out (or your session expired). Sign in again.").waitFor({ timeout: 60000 });
    await shot(ex, "a10-token-expired");
    await ex.context().close();
    const c = await api(adm, "POST", `/v1/bulk/${encodeURIComponent(id)}/cancel`);
    assert(c.status === 202, "cancel the long job: " + JSON.stringify(c));
  });
});
