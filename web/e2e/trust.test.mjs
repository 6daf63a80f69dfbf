// End-to-end test of host keys and the signed-in header (run by web/e2e_test.go, TestUITrust).
// Two devices of the fleet serve a host key other than the one the inventory pins (the
// simulator's changed_host_key fault): a job ends host_key_mismatch on them and records the offered
// keys as pending. The device page warns with the offered fingerprint; an operator sees no Accept
// button; an admin's Accept pins the key (the API then shows it); an Accept over a key that is no
// longer pending shows the 409 in place. The header shows the roles the API sees, with their sites.
import { BASE_URL, script, newPage, signIn, shot, step, assert, api } from "./lib.mjs";

await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  let changed = [];
  const pending = {};

  await step(page, "the header shows an admin's roles as the API sees them", async () => {
    await signIn(page, "admin", "e2e-admin@netauto.local");
    assert((await page.locator("#whoami").innerText()) === "e2e-admin@netauto.local", "the signed-in name");
    await page.locator("#my-roles[data-source=api]", { hasText: /^admin$/ }).waitFor();
    const me = await api(page, "GET", "/v1/whoami");
    assert(me.status === 200 && me.body.role === "admin", "whoami: " + JSON.stringify(me));
  });

  await step(page, "a job on devices whose key changed ends host_key_mismatch and links to the key", async () => {
    const list = await api(page, "GET", "/v1/devices?limit=100");
    changed = list.body.items.filter((d) => d.tags.sim_fault === "changed_host_key").map((d) => d.id).sort();
    assert(changed.length === 2, "two devices serve a changed key: " + JSON.stringify(list.body.items.map((d) => d.tags)));
    const job = await api(page, "POST", "/v1/bulk", { command: "show version", device_ids: changed });
    assert(job.status === 202, "bulk accepted: " + JSON.stringify(job));
    await window_navigate(page, "?job=" + encodeURIComponent(job.body.job_id));
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll("tr[data-device][data-status=host_key_mismatch]").length === 2);
    await page.locator(`tr[data-device='${changed[0]}']`).getByRole("link", { name: "Output of " + changed[0] }).click();
    await page.locator("#run-host-key").waitFor();
    await shot(page, "t1-run-host-key-mismatch");
    await page.locator("#run-host-key").getByRole("link").click();
    await page.locator("#host-key-pending").waitFor();
    for (const id of changed) {
      const d = await api(page, "GET", "/v1/devices/" + encodeURIComponent(id));
      assert(d.body.pending_host_key && d.body.pending_host_key.fingerprint.startsWith("SHA256:"), `${id} has a pending key: ${JSON.stringify(d.body)}`);
      pending[id] = d.body;
    }
  });

  await step(page, "the device page warns with the offered fingerprint next to the pinned one", async () => {
    const d = pending[changed[0]];
    assert((await page.locator("#pending-fingerprint").innerText()) === d.pending_host_key.fingerprint, "the offered fingerprint is shown");
    assert((await page.locator("#host-key-fingerprint").innerText()) === d.host_key_fingerprint, "the pinned fingerprint is shown");
    assert(d.host_key_fingerprint !== d.pending_host_key.fingerprint, "the two keys differ");
    assert((await page.locator("#host-key-pending").innerText()).includes("different host key"), "the warning says what happened");
    assert((await page.locator("#pending-seen").innerText()).length > 0, "when it was seen");
    await shot(page, "t2-host-key-pending");
  });

  await step(page, "an operator sees the warning and no Accept button", async () => {
    const op = await newPage(browser, problems);
    await signIn(op, "operator", "e2e-operator@netauto.local");
    await window_navigate(op, "?device=" + encodeURIComponent(changed[0]));
    await op.locator("#host-key-pending").waitFor();
    assert((await op.locator("#host-key-accept").count()) === 0, "no Accept button for an operator");
    await op.locator("#host-key-admin-only").waitFor();
    await shot(op, "t3-host-key-operator");
    await op.context().close();
  });

  await step(page, "Accept pins the offered key and clears the warning", async () => {
    const d = pending[changed[0]];
    await page.locator("#host-key-accept").click();
    await page.locator("#host-key-done", { hasText: d.pending_host_key.fingerprint }).waitFor();
    assert((await page.locator("#host-key-pending").count()) === 0, "the warning is gone");
    assert((await page.locator("#host-key-fingerprint").innerText()) === d.pending_host_key.fingerprint, "the new key is shown as pinned");
    const after = await api(page, "GET", "/v1/devices/" + encodeURIComponent(changed[0]));
    assert(after.body.host_key === d.pending_host_key.key, "the API pins the offered key");
    assert(!after.body.pending_host_key, "the API shows nothing pending");
    assert(after.body.host_key_learned_at, "the API says when it was learned");
    await shot(page, "t4-host-key-accepted");
  });

  await step(page, "the devices list marks the device still offering a new key", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
    await page.locator(`tr[data-id='${changed[1]}'] .key-pending`).waitFor();
    assert((await page.locator(".key-pending").count()) === 1, "only the device not yet accepted is marked");
    await shot(page, "t4b-devices-key-pending");
  });

  await step(page, "an Accept of a key no longer pending shows the 409 in place", async () => {
    const id = changed[1];
    await window_navigate(page, "?device=" + encodeURIComponent(id));
    await page.locator("#host-key-accept").waitFor();
    // Another admin accepts it meanwhile.
    const other = await api(page, "POST", `/v1/devices/${encodeURIComponent(id)}/host-key/accept`, { fingerprint: pending[id].pending_host_key.fingerprint });
    assert(other.status === 200, "the other accept: " + JSON.stringify(other));
    await page.locator("#host-key-accept").click();
    await page.locator("#host-key-error", { hasText: "host_key_not_pending" }).waitFor();
    assert((await page.locator("#host-key-pending").count()) === 1, "the warning stays with the error in it");
    await shot(page, "t5-host-key-conflict");
    await page.locator("#host-key-reload").click();
    await page.waitForFunction(() => !document.querySelector("#host-key-pending"));
    assert((await page.locator("#host-key-fingerprint").innerText()) === pending[id].pending_host_key.fingerprint, "the reload shows the key pinned meanwhile");
  });

  await step(page, "the header shows a scoped operator's sites", async () => {
    const sc = await newPage(browser, problems);
    await sc.goto(BASE_URL + "/");
    await sc.getByLabel("Email").fill("e2e-scoped@netauto.local");
    await sc.getByLabel("Role").selectOption("operator");
    await sc.getByLabel("Only on sites").fill("site-01, ams9");
    await sc.getByRole("button", { name: "Sign in" }).click();
    await sc.locator("#my-roles[data-source=api]", { hasText: "operator on ams9, site-01" }).waitFor();
    assert((await sc.locator("#whoami").innerText()) === "e2e-scoped@netauto.local", "the scoped user's name");
    assert((await sc.locator("#run-bulk").count()) === 1, "a scoped operator may run commands on its sites' devices");
    assert((await sc.getByRole("link", { name: "Policy" }).count()) === 0, "the global admin pages stay hidden");
    await shot(sc, "t6-header-scoped-operator");
    await sc.context().close();
  });

  await step(page, "the dev sign-in names a bad site", async () => {
    const bad = await newPage(browser, problems);
    await bad.goto(BASE_URL + "/");
    await bad.getByLabel("Email").fill("e2e-bad@netauto.local");
    await bad.getByLabel("Only on sites").fill("ams1, a:b");
    await bad.getByRole("button", { name: "Sign in" }).click();
    await bad.getByRole("alert").filter({ hasText: "sites[1]:" }).waitFor();
    await bad.context().close();
  });
});

/** window_navigate routes the single-page app to a query string, as its links do. */
async function window_navigate(page, to) {
  await page.evaluate((to) => window.netautoNavigate(to), to);
}
