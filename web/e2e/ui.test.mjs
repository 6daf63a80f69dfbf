// End-to-end test of the UI against the local stack and a simulated fleet (run by web/e2e_test.go
// under `make test`; BASE_URL names the gateway). The fleet: linux devices in two software
// versions, one refusing connections and one printing slowly (one line per 150 ms), so a job's
// progress is observably partial for a few seconds. Screenshots go to ARTIFACTS.
import { BASE_URL, script, newPage, signIn, shot, step, assert, tabTo, api } from "./lib.mjs";

const FLEET = Number(process.env.FLEET_SIZE || 10);

/**
 * watchCounts checks the job page on every change of the DOM while its job runs: each status
 * chip's count equals the device rows in that status (the job's devices without a row count as
 * queued), the chips add up to the job's devices and the progress bar's done to the terminal ones.
 * What it found is in window.e2eCounts ({checks, mismatches}).
 */
async function watchCounts(page) {
  await page.evaluate(() => {
    if (window.e2eCounts) return;
    const seen = (window.e2eCounts = { checks: 0, mismatches: [] });
    const terminal = ["succeeded", "failed", "timed_out", "unreachable", "auth_failed", "host_key_mismatch", "cancelled"];
    const check = () => {
      const feed = window.netautoFeed, bar = document.querySelector("#job-progress");
      // Only the whole, unfiltered device list of a running job: an ended job shows its final counts.
      if (!feed || !bar || feed.state === "done" || document.querySelector(".count-chip.active") ||
        document.querySelector("#changed-only:checked") || !document.querySelector("#tab-devices[aria-selected=true]")) return;
      const total = Number(bar.dataset.total), rows = document.querySelectorAll("tr[data-device]");
      const held = { queued: total - rows.length };
      for (const r of rows) held[r.dataset.status] = (held[r.dataset.status] || 0) + 1;
      const shown = {};
      let sum = 0, done = 0;
      for (const el of document.querySelectorAll("[data-count]")) {
        const n = Number(el.textContent);
        shown[el.dataset.count] = n;
        sum += n;
        if (terminal.includes(el.dataset.count)) done += n;
      }
      seen.checks++;
      const wrong = Object.keys(shown).filter((s) => shown[s] !== (held[s] || 0));
      if (wrong.length || sum !== total || done !== Number(bar.dataset.done)) {
        seen.mismatches.push(JSON.stringify({ shown, held, total, done: bar.dataset.done }));
      }
    };
    new MutationObserver(check).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

/** countsChecked asserts that watchCounts checked the page at least min times and found it right. */
async function countsChecked(page, min) {
  const seen = await page.evaluate(() => {
    const s = window.e2eCounts, taken = { checks: s.checks, mismatches: s.mismatches.splice(0) };
    s.checks = 0;
    return taken;
  });
  assert(seen.mismatches.length === 0, `counts shown differ from the devices' statuses:\n${seen.mismatches.slice(0, 5).join("\n")}`);
  assert(seen.checks >= min, `the counts were checked ${seen.checks} times while the job ran, want ${min} or more`);
}

/** chipsMatchRows waits until every status chip counts the device rows in its status. */
async function chipsMatchRows(page) {
  await page.waitForFunction(() => [...document.querySelectorAll("[data-count]")].every((el) =>
    Number(el.textContent) === document.querySelectorAll(`tr[data-device][data-status=${el.dataset.count}]`).length));
}
await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  page.on("dialog", (d) => d.accept());
  let slowId = "", jobId = "";

  await step(page, "sign in with the dev sign-in", async () => {
    await page.goto(BASE_URL + "/");
    await page.getByLabel("Role").waitFor();
    await shot(page, "01-sign-in");
    await signIn(page, "admin", "e2e-admin@netauto.local");
    await page.getByText(`${FLEET} of ${FLEET} devices match`).waitFor();
    await shot(page, "02-devices");
  });

  await step(page, "filter and select devices", async () => {
    await page.locator("#filter-tag").fill("sim_fault");
    await page.getByText(`2 of ${FLEET} devices match`).waitFor();
    await page.locator("#filter-tag").fill("sim_fault=slow_drip");
    await page.getByText(`1 of ${FLEET} devices match`).waitFor();
    slowId = await page.locator("tr[data-id]").first().getAttribute("data-id");
    await page.locator("#filter-tag").fill("");
    await page.locator("#filter-platform").selectOption("linux");
    await page.getByText(`${FLEET} of ${FLEET} devices match`).waitFor();
    await page.locator("#filter-q").fill("zzz-no-such-device");
    await page.getByText("No device matches these filters.").waitFor();
    await page.locator("#filter-q").fill("");
    // Shift-click selects a range.
    const boxes = page.locator("tr[data-id] input[type=checkbox]");
    await boxes.nth(1).click();
    await boxes.nth(5).click({ modifiers: ["Shift"] });
    await page.locator("#selection-count", { hasText: "5 selected" }).waitFor();
    await shot(page, "03-devices-range-selected");
    await page.locator("#clear-selection").click();
    await page.locator("#selection-count", { hasText: "0 selected" }).waitFor();
    await page.locator("#select-all").click();
    await page.locator("#selection-count", { hasText: `${FLEET} selected` }).waitFor();
  });

  await step(page, "submit a bulk command", async () => {
    await page.locator("#run-bulk").click();
    const dialog = page.getByRole("dialog", { name: "Run a bulk command" });
    await dialog.waitFor();
    assert((await page.locator("#bulk-requested-by").inputValue()) === "e2e-admin@netauto.local", "requested_by is pre-filled with the signed-in user");
    assert((await page.locator("#bulk-count").innerText()).includes(`${FLEET} devices selected`), "the dialog shows the device count");
    await page.locator("#bulk-command").fill("seq 40");
    await page.locator("#bulk-max-errors").fill("50%");
    await shot(page, "04-bulk-dialog");
    await page.locator("#bulk-submit").click();
    await page.locator("#flash-job-link").waitFor();
    jobId = new URL(await page.locator("#flash-job-link").getAttribute("href"), BASE_URL).searchParams.get("job");
    assert(jobId, "the flash links to the job");
    await shot(page, "05-flash-job-started");
  });

  await step(page, "watch the job progress live, survive a dropped socket, reach completion", async () => {
    await page.evaluate(() => { window.e2eNoReload = true; });
    await watchCounts(page);
    await page.locator("#flash-job-link").click();
    await page.locator("#job-progress").waitFor();
    // Intermediate progress, pushed over the WebSocket: some but not all devices done.
    await page.waitForFunction(() => {
      const p = document.querySelector("#job-progress");
      const done = Number(p.dataset.done), total = Number(p.dataset.total);
      return done > 0 && done < total && document.querySelector("#connection-state").textContent === "live";
    }, null, { timeout: 15000 });
    const mid = await page.locator("#progress-text").innerText();
    await shot(page, "06-job-live-progress");
    // Drop the socket as a flaky network would: the page reconnects and catches up on its own.
    await page.evaluate(() => window.netautoFeed.dropConnection());
    await page.waitForFunction(() => document.querySelector("#job-status").textContent === "completed", null, { timeout: 30000 });
    assert(await page.evaluate(() => window.e2eNoReload === true), "the page was not reloaded");
    assert(await page.evaluate(() => window.netautoFeed.connects >= 2 || window.netautoFeed.state === "done"), "the page reconnected");
    const text = await page.locator("#progress-text").innerText();
    assert(text === `${FLEET} of ${FLEET} devices done`, `final progress ${text} (mid-way it said ${mid})`);
    const ok = await page.locator("[data-count=succeeded]").innerText();
    const unreachable = await page.locator("[data-count=unreachable]").innerText();
    assert(ok === String(FLEET - 1) && unreachable === "1", `counts: ${ok} succeeded, ${unreachable} unreachable`);
    // Every device row agrees with the counts: no event was lost.
    await page.waitForFunction((n) => document.querySelectorAll("tr[data-device][data-status=succeeded]").length === n, FLEET - 1);
    await chipsMatchRows(page);
    // While the job ran the counts shown were its devices' statuses, on every change.
    await countsChecked(page, 3);
    await shot(page, "07-job-completed");
    // One group of 40-line outputs, taller than its box: it must scroll from the keyboard too.
    await page.locator("#tab-groups").click();
    await page.locator("[data-group=output] pre.group-output").first().waitFor();
    assert(await page.locator("[data-group=output] pre.group-output").first().evaluate((e) => e.scrollHeight > e.clientHeight), "the group's output scrolls");
    await shot(page, "07b-job-groups-scrolling");
    await page.locator("#tab-devices").click();
  });

  await step(page, "catch up from paged events while the WebSocket is blocked", async () => {
    const p = await newPage(browser, problems);
    // The WebSocket passes through until blocked; then every connection attempt is refused at once.
    let blocked = false;
    await p.routeWebSocket(/\/ws\?/, (ws) => {
      if (blocked) ws.close({ code: 1011, reason: "blocked by the test" });
      else ws.connectToServer();
    });
    await signIn(p);
    const ids = (await api(p, "GET", "/v1/devices?limit=100")).body.items.map((d) => d.id);
    assert(ids.length === FLEET, `${ids.length} devices`);
    // The slow device prints 60 lines, one per 150 ms: 9 s of a partly done job.
    const job = await api(p, "POST", "/v1/bulk", { command: "seq 60", device_ids: ids, options: { max_errors: "50%" } });
    assert(job.status === 202, "bulk accepted: " + JSON.stringify(job));
    // The catch-up's reads as sent, and the pages that named a next.
    const catchUps = [], nexts = [];
    const isEvents = (url) => new URL(url).pathname.endsWith("/events");
    p.on("request", (r) => {
      if (isEvents(r.url())) catchUps.push(Object.fromEntries(new URL(r.url()).searchParams));
    });
    p.on("response", async (r) => {
      if (!isEvents(r.url()) || !r.ok()) return;
      const next = (await r.json()).next;
      if (next) nexts.push({ since: new URL(r.url()).searchParams.get("since"), next });
    });
    await p.goto(`${BASE_URL}/?job=${encodeURIComponent(job.body.job_id)}`);
    await watchCounts(p);
    await p.waitForFunction(() => {
      const b = document.querySelector("#job-progress");
      return b && Number(b.dataset.done) > 0 && Number(b.dataset.done) < Number(b.dataset.total) && window.netautoFeed.state === "live";
    }, null, { timeout: 15000 });
    // Hold the device list the page reads once the job ended, so what it shows then came from the catch-up alone.
    let release;
    const held = new Promise((r) => { release = r; });
    await p.route((u) => /\/v1\/bulk\/[^/]+\/devices$/.test(u.pathname), async (r) => { await held; await r.continue(); });
    blocked = true;
    const dropped = await p.evaluate(() => {
      const f = window.netautoFeed;
      f.catchUpLimit = 1; // a page per device: the catch-up must follow its pages to the end
      f.dropConnection();
      return { done: f.doneCount(), total: f.job.device_count, state: f.state };
    });
    assert(dropped.done < dropped.total, `the job was still running when the socket dropped: ${JSON.stringify(dropped)}`);
    await p.locator("#connection-state", { hasText: "reconnecting" }).waitFor();
    await p.waitForFunction(() => document.querySelector("#job-status").textContent === "completed", null, { timeout: 30000 });
    const seen = await p.evaluate(() => ({
      rows: [...document.querySelectorAll("tr[data-device]")].map((r) => r.dataset.status),
      pages: window.netautoFeed.catchUpPages, connects: window.netautoFeed.connects, events: window.netautoFeed.events,
    }));
    const succeeded = seen.rows.filter((s) => s === "succeeded").length, unreachable = seen.rows.filter((s) => s === "unreachable").length;
    assert(succeeded === FLEET - 1 && unreachable === 1, `before the final read the rows say ${succeeded} succeeded and ${unreachable} unreachable: ${JSON.stringify(seen)}`);
    assert(seen.pages >= 2, `a catch-up read ${seen.pages} page(s), want several`);
    assert(seen.connects >= 2, `the page tried to reconnect: ${JSON.stringify(seen)}`);
    // Every page with a next was followed by a read of it with the same since.
    for (const c of nexts) {
      assert(catchUps.some((d) => d.cursor === c.next && d.since === c.since), `next ${c.next} (since ${c.since}) was not read: ${JSON.stringify(catchUps)}`);
    }
    assert(await p.locator("[data-count=succeeded]").innerText() === String(FLEET - 1), "succeeded count");
    await countsChecked(p, 2);
    await shot(p, "07c-job-caught-up");
    release();
    await chipsMatchRows(p);
    console.log(`     catch-up: ${catchUps.length} reads, ${catchUps.filter((c) => c.cursor).length} by cursor, at most ${seen.pages} pages in one`);
    await p.context().close();
  });

  await step(page, "open a device's output", async () => {
    await page.getByRole("link", { name: "Output of " + slowId }).click();
    await page.locator("#run-output").waitFor();
    const out = await page.locator("#run-output").innerText();
    assert(out.trim().split("\n").length === 40 && out.includes("\n40"), `output of seq 40 on ${slowId}: ${JSON.stringify(out.slice(0, 80))}`);
    assert((await page.locator("#output-truncated").innerText()) === "no", "truncated flag shown");
    await page.getByRole("heading", { name: `Recent runs on ${slowId}` }).waitFor();
    await shot(page, "08-run-output");
    const download = page.waitForEvent("download");
    await page.locator("#download-output").click();
    assert((await download).suggestedFilename().endsWith(".txt"), "download offers a .txt file");
    await page.getByRole("link", { name: `All runs of ${slowId}` }).click();
    await page.getByRole("heading", { name: "Runs" }).waitFor();
    await shot(page, "09-device-history");
  });

  await step(page, "see the API's validation errors inline", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
    await page.locator("#select-all").click();
    await page.locator("#run-bulk").click();
    await page.locator("#bulk-submit").click();
    await page.locator("#bulk-command-error", { hasText: "is required" }).waitFor();
    await page.locator("#bulk-command").fill("show version");
    await page.locator("#bulk-timeout").fill("999");
    await page.locator("#bulk-submit").click();
    // The maximum is the API's (the executor's invocation budget); the message names it.
    await page.locator("#bulk-timeout-error", { hasText: /must be from 1 to \d+ seconds/ }).waitFor();
    assert((await page.locator("#bulk-timeout").getAttribute("aria-invalid")) === "true", "the field is marked invalid");
    assert(await page.evaluate(() => document.activeElement.id === "bulk-timeout"), "focus moves to the field in error");
    await shot(page, "10-validation-error");
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "detached" });
  });

  await step(page, "group by identical output splits the two software versions", async () => {
    await page.locator("#run-bulk").click();
    await page.locator("#bulk-command").fill("uname -r");
    await page.locator("#bulk-submit").click();
    await page.locator("#flash-job-link").click();
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 30000 });
    await page.locator("#tab-groups").click();
    await page.waitForFunction(() => document.querySelectorAll("[data-group=output] pre.group-output").length >= 2, null, { timeout: 10000 });
    const groups = await page.locator("[data-group=output]").count();
    const outputs = await page.locator("[data-group=output] pre.group-output").allInnerTexts();
    const sizes = await page.locator("[data-group=output]").evaluateAll((els) => els.map((e) => Number(e.dataset.size)));
    assert(groups === 2, `${groups} output groups, want 2 (two software versions)`);
    assert(outputs[0].trim() !== outputs[1].trim(), "the groups' outputs differ");
    assert(sizes[0] + sizes[1] === FLEET - 1, `groups hold ${sizes} devices, want ${FLEET - 1} in all`);
    assert((await page.locator("[data-group=status]").count()) === 1, "the unreachable device forms its own status group");
    await page.locator("[data-group=output] .diff-note", { hasText: "1 line not in Output A" }).waitFor();
    await shot(page, "11-group-by-output");
  });

  await step(page, "recent jobs lists the jobs from the API, newest first", async () => {
    await page.locator("details.recent summary").click();
    const items = page.locator("details.recent li a code");
    await items.first().waitFor();
    const commands = await items.allInnerTexts();
    assert(commands[0] === "uname -r" && commands.includes("seq 40"), `recent jobs: ${JSON.stringify(commands)}`);
    await shot(page, "11b-recent-jobs");
    await page.locator("details.recent summary").click();
  });

  await step(page, "cancel a job", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
    // The slow device first, then the rest: with one device at a time the others wait behind it.
    await page.locator("#filter-tag").fill("sim_fault=slow_drip");
    await page.locator("#select-all").click();
    await page.locator("#filter-tag").fill("");
    await page.locator("#select-all").click();
    await page.locator("#selection-count", { hasText: `${FLEET} selected` }).waitFor();
    await page.locator("#run-bulk").click();
    await page.locator("#bulk-command").fill("seq 50");
    await page.locator("#bulk-concurrency").fill("1");
    await page.locator("#bulk-submit").click();
    await page.locator("#flash-job-link").click();
    await page.locator("#cancel-job").click();
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "cancelled", null, { timeout: 30000 });
    const cancelled = Number(await page.locator("[data-count=cancelled]").innerText());
    assert(cancelled >= 1, `${cancelled} devices cancelled`);
    await chipsMatchRows(page);
    await countsChecked(page, 1);
    await shot(page, "12-job-cancelled");
  });

  await step(page, "follow a running device's live output before its run is stored", async () => {
    // A bulk run is stored once it has run 5 s (or when it ends): the run page waits for it.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
    await page.locator("#filter-tag").fill("sim_fault=slow_drip");
    await page.locator("#select-all").click();
    await page.locator("#selection-count", { hasText: "1 selected" }).waitFor();
    await page.locator("#run-bulk").click();
    await page.locator("#bulk-command").fill("seq 40");
    await page.locator("#bulk-submit").click();
    await page.locator("#flash-job-link").click();
    await page.getByRole("link", { name: "live output of " + slowId, exact: true }).click();
    await page.locator("#run-output").waitFor({ timeout: 15000 });
    assert(await page.locator(".error").count() === 0, "the run page never said the run does not exist");
    await page.waitForFunction(() => document.querySelector("#run-output").textContent.trim().split("\n").length === 40, null, { timeout: 20000 });
    await shot(page, "12b-live-output-before-stored");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
    await page.locator("#filter-tag").fill("");
  });

  await step(page, "keyboard-only bulk flow (operator)", async () => {
    const kb = await newPage(browser, problems);
    await kb.goto(BASE_URL + "/");
    await kb.getByLabel("Role").waitFor();
    await tabTo(kb, "#signin-email");
    await kb.keyboard.press("Control+A");
    await kb.keyboard.type("keyboard@netauto.local");
    await tabTo(kb, "#signin-role");
    // The role select starts at operator.
    await tabTo(kb, "#signin-submit");
    await kb.keyboard.press("Enter");
    await kb.locator("#whoami", { hasText: "keyboard@netauto.local" }).waitFor();
    await kb.getByText(`${FLEET} of ${FLEET} devices match`).waitFor();
    await tabTo(kb, "#filter-q");
    await kb.keyboard.type("srv");
    await tabTo(kb, "#select-all");
    const matching = await kb.locator("#select-all").innerText();
    await kb.keyboard.press("Enter");
    await kb.locator("#selection-count", { hasText: /^[1-9]\d* selected$/ }).waitFor();
    await tabTo(kb, "#run-bulk");
    await kb.keyboard.press("Enter");
    await kb.getByRole("dialog").waitFor();
    assert(await kb.evaluate(() => document.activeElement.id === "bulk-command"), "the dialog opens with focus in the command");
    assert((await kb.locator("#bulk-requested-by").getAttribute("readonly")) !== null, "an operator cannot change requested_by");
    await kb.keyboard.type("uname -r");
    await tabTo(kb, "#bulk-submit");
    await shot(kb, "14-keyboard-dialog");
    await kb.keyboard.press("Enter");
    await kb.locator("#flash-job-link").waitFor();
    // The message focuses its link in an effect, after the paint that shows it: wait for it.
    await kb.waitForFunction(() => document.activeElement && document.activeElement.id === "flash-job-link", null, { timeout: 5000 })
      .catch(() => { throw new Error("focus never moved to the new job's link"); });
    await kb.keyboard.press("Enter");
    await kb.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 30000 });
    await shot(kb, "15-keyboard-job-done");
    console.log(`     keyboard flow: ${matching}`);
    await kb.context().close();
  });

  await step(page, "add, edit, delete and import devices (admin)", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
    await page.getByRole("button", { name: "Add device" }).click();
    await page.getByRole("dialog", { name: "Add a device" }).waitFor();
    await page.locator("#dev-id").fill("e2e-new");
    await page.locator("#dev-name").fill("E2E router");
    await page.locator("#dev-host").fill("10.9.9.9");
    await page.locator("#dev-port").fill("70000");
    await page.locator("#dev-username").fill("ops");
    await page.locator("#dev-password").fill("s3cret");
    await page.locator("#dev-tags").fill("role=core; pod=7");
    await page.getByRole("button", { name: "Add device", exact: true }).last().click();
    await page.locator("#dev-port-error", { hasText: "must be from 1 to 65535" }).waitFor();
    await shot(page, "16-device-form-error");
    await page.locator("#dev-port").fill("22");
    await page.getByRole("dialog").getByRole("button", { name: "Add device" }).click();
    await page.getByText("Added e2e-new.").waitFor();
    await page.locator("#filter-q").fill("e2e-new");
    await page.getByText(`1 of ${FLEET + 1} devices match`).waitFor();
    await page.getByRole("button", { name: "Edit e2e-new" }).click();
    await page.locator("#dev-name").fill("E2E renamed");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("tr[data-id=e2e-new]", { hasText: "E2E renamed" }).waitFor();
    await page.getByRole("button", { name: "Delete e2e-new" }).click();
    await page.getByText("Deleted e2e-new.").waitFor();
    await page.locator("#filter-q").fill("");
    const csv = "id,name,host,username,password,site,tags\ne2e-imp-1,Imported 1,10.8.0.1,ops,pw1,lab,role=edge\ne2e-imp-2,Imported 2,,ops,pw2,lab,\n";
    await page.locator("input[type=file]").setInputFiles({ name: "devices.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
    const result = page.getByRole("dialog", { name: "Import of devices.csv" });
    await result.getByText("1 created, 1 rejected").waitFor();
    await result.getByText(/host: /).waitFor();
    await shot(page, "17-import-result");
    await result.getByRole("button", { name: "Close" }).last().click();
    await page.getByText(`${FLEET + 1} of ${FLEET + 1} devices match`).waitFor();
  });

  await step(page, "Cognito hosted UI sign-in: authorization code with PKCE (identity provider stubbed)", async () => {
    // config.json in AWS mode; the hosted UI's authorize and token endpoints are answered here,
    // checking what the UI sends: S256 challenge, state, redirect URI, and a verifier that
    // hashes to the challenge.
    const idp = "https://netauto-test.auth.example.test";
    const p = await newPage(browser, problems, [idp]);
    const tok = await (await fetch(BASE_URL + "/dev/token", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "cognito-user@example.com", role: "viewer" }) })).json();
    let challenge = "", checked = false;
    await p.route(BASE_URL + "/config.json", (r) => r.fulfill({ json: { api_url: "", ws_url: BASE_URL.replace(/^http/, "ws") + "/ws",
      auth: { mode: "cognito", domain: idp, client_id: "test-client" } } }));
    await p.route(idp + "/**", async (r) => {
      const u = new URL(r.request().url());
      if (u.pathname === "/oauth2/authorize") {
        const q = u.searchParams;
        assert(q.get("response_type") === "code" && q.get("client_id") === "test-client" && q.get("code_challenge_method") === "S256",
          "authorize request " + u.search);
        assert(q.get("redirect_uri") === BASE_URL + "/", "redirect_uri " + q.get("redirect_uri"));
        challenge = q.get("code_challenge");
        return r.fulfill({ status: 302, headers: { Location: `${BASE_URL}/?code=the-code&state=${q.get("state")}` } });
      }
      if (u.pathname === "/oauth2/token") {
        const f = new URLSearchParams(r.request().postData());
        const { createHash } = await import("node:crypto");
        const hashed = createHash("sha256").update(f.get("code_verifier")).digest("base64url");
        assert(f.get("grant_type") === "authorization_code" && f.get("code") === "the-code" && hashed === challenge, "token request with a matching verifier");
        checked = true;
        return r.fulfill({ json: { id_token: tok.token, access_token: "unused", token_type: "Bearer", expires_in: 3600 },
          headers: { "Access-Control-Allow-Origin": "*" } });
      }
      return r.fulfill({ status: 404 });
    });
    await p.goto(BASE_URL + "/?page=retention");
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.locator("#whoami", { hasText: "cognito-user@example.com" }).waitFor();
    assert(checked, "the token endpoint was called");
    assert(!new URL(p.url()).searchParams.has("code"), "the code is removed from the address bar");
    assert(new URL(p.url()).searchParams.get("page") === "retention", "the page asked for before signing in is shown");
    await p.context().close();
  });

  await step(page, "retention page and purge now", async () => {
    await page.getByRole("link", { name: "Retention" }).click();
    await page.locator("#retention-settings").waitFor();
    await page.locator("#totals-as-of").waitFor();
    await shot(page, "18-retention");
    await page.locator("#purge-now").click();
    await page.getByText(/Purge finished/).waitFor({ timeout: 30000 });
    await page.locator("#retention-report", { hasText: "triggered by" }).waitFor();
    // A first purge may stop at its 20 s budget before it folds the byte totals (its age pass
    // looks back three years on a loaded machine): purge again, as the report says, until it has.
    for (let i = 0; !(await page.locator("#totals-as-of").textContent()).startsWith("As of"); i++) {
      assert(i < 5, "the byte totals are folded within five purges");
      const reread = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith("/v1/retention") && r.request().method() === "GET", { timeout: 60000 });
      await page.locator("#purge-now").click();
      await reread;
      await page.waitForFunction(() => !document.querySelector("#purge-now").disabled);
    }
    // Runs have stored output by now: the purge folded the byte totals, shown as of it.
    await page.locator("#charged-bytes", { hasText: /[1-9]/ }).waitFor();
    await page.locator("#stored-bytes", { hasText: /[1-9]/ }).waitFor();
    await page.locator("#totals-as-of", { hasText: /^As of .*the last purge/ }).waitFor();
    await shot(page, "19-retention-purged");
  });

  await step(page, "audit trail: the purge is there, filters and pages", async () => {
    await page.getByRole("link", { name: "Audit" }).click();
    await page.locator("#audit-table").waitFor();
    await page.locator("#audit-table tbody tr", { hasText: "retention.purge" }).first().waitFor();
    await shot(page, "20-audit");
    await page.locator('#audit-filters input[name="action"]').fill("retention.purge");
    await page.locator("#audit-filters button[type=submit]").click();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit-table tbody tr")];
      return rows.length > 0 && rows.every((r) => r.textContent.includes("retention.purge"));
    });
    await page.locator('#audit-filters input[name="action"]').fill("");
    await page.locator("#audit-filters button[type=submit]").click();
    await page.locator("#audit-table tbody tr", { hasText: "device." }).first().waitFor();
  });
});
