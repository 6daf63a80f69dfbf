// End-to-end test of the drift views (run by web/e2e_test.go, TestUIDrift) on three simulated
// IOS-XE devices whose configuration listings carry noise lines that differ every time (change and
// save timestamps, ntp clock-period). `show running-config` runs three times, as three nights
// would: first runs, then noise only (unchanged everywhere), then after a real change on one device
// (made through the fleet: CONTROL_URL/change, an `snmp-server location … rack N` line). The job page's changed badges and "changed only"
// filter, the diff page (side by side, unified, raw with the noise), the device's history with two
// runs picked and compared, a group's diff against the largest, and the Platforms page's filters
// (an invalid pattern named under its field; a new filter that turns the change into noise).
import { script, newPage, signIn, shot, step, assert } from "./lib.mjs";

const CONTROL_URL = process.env.CONTROL_URL;
const FLEET = 3;
const COMMAND = "show running-config";

/** runJob runs COMMAND on every device from the devices page and waits on the job page until the job has completed. */
async function runJob(page) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
  await page.getByText(`${FLEET} of ${FLEET} devices match`).waitFor();
  await page.locator("#select-all").click();
  await page.locator("#selection-count", { hasText: `${FLEET} selected` }).waitFor();
  await page.locator("#run-bulk").click();
  await page.locator("#bulk-command").fill(COMMAND);
  await page.locator("#bulk-submit").click();
  await page.locator("#flash-job-link").click();
  await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 30000 });
  const ok = await page.locator("[data-count=succeeded]").innerText();
  assert(ok === String(FLEET), `${ok} of ${FLEET} devices succeeded`);
  return new URL(page.url()).searchParams.get("job");
}

/** badges returns each device row's changed badge ("true", "false", "null" or "" for none), by device id. */
async function badges(page) {
  return page.locator("tr[data-device]").evaluateAll((rows) => Object.fromEntries(rows.map((r) => {
    const b = r.querySelector("[data-changed]");
    return [r.dataset.device, b ? b.dataset.changed : ""];
  })));
}

/** diffCounts waits for the diff page to show a diff (raw as asked) and returns its counts. */
async function diffCounts(page, raw) {
  await page.locator(`#diff-summary[data-raw=${raw}]`).waitFor();
  return page.locator("#diff-summary").evaluate((e) => ({ changed: e.dataset.changed, added: Number(e.dataset.added), deleted: Number(e.dataset.deleted) }));
}

await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  page.on("dialog", (d) => d.accept());
  const changedDevice = "sim-0002";

  await step(page, "first runs are marked as such", async () => {
    await signIn(page, "admin", "e2e-drift@netauto.local");
    await runJob(page);
    await page.waitForFunction(() => [...document.querySelectorAll("tr[data-device] [data-changed]")].length === 3);
    const b = await badges(page);
    assert(Object.values(b).every((v) => v === "null"), "every device's first run: " + JSON.stringify(b));
    assert((await page.locator("#changed-count").getAttribute("data-changed")) === "0", "nothing changed");
    await shot(page, "d1-job-first-runs");
  });

  await step(page, "noise alone changes nothing", async () => {
    await runJob(page);
    await page.waitForFunction(() => [...document.querySelectorAll("tr[data-device] [data-changed=false]")].length === 3, null, { timeout: 10000 });
    await page.locator("#changed-only").check();
    await page.getByText("Showing 0 changed devices.").waitFor();
    await page.locator("#changed-only").uncheck();
    await shot(page, "d2-job-unchanged");
  });

  let jobId = "";
  await step(page, "a real change on one device: its badge, the count and the changed-only filter", async () => {
    const r = await fetch(`${CONTROL_URL}/change?device=${changedDevice}&rev=1`, { method: "POST" });
    assert(r.ok, `change ${changedDevice}: ${r.status} ${await r.text()}`);
    jobId = await runJob(page);
    await page.locator("#changed-count[data-changed='1']").waitFor({ timeout: 10000 });
    const b = await badges(page);
    assert(b[changedDevice] === "true" && Object.entries(b).every(([id, v]) => id === changedDevice || v === "false"), "badges: " + JSON.stringify(b));
    await page.locator("#changed-only").check();
    await page.getByText("Showing 1 changed device.").waitFor();
    const rows = await page.locator("tr[data-device]").evaluateAll((rs) => rs.map((x) => x.dataset.device));
    assert(rows.length === 1 && rows[0] === changedDevice, "changed only: " + JSON.stringify(rows));
    await shot(page, "d3-job-changed-only");
  });

  await step(page, "the changed badge opens the diff: the change, not the noise, side by side", async () => {
    await page.locator(`tr[data-device=${changedDevice}]`).getByRole("link", { name: /changed/ }).click();
    const c = await diffCounts(page, false);
    assert(c.changed === "true" && c.added === 2 && c.deleted === 0, "the change adds its line and a separator: " + JSON.stringify(c));
    await page.locator("#diff-table[data-view=split] td[data-op=add]", { hasText: "snmp-server location site-01 rack 1" }).waitFor();
    const table = await page.locator("#diff-table").innerText();
    assert(!table.includes("Last configuration change") && !table.includes("ntp clock-period"), "no noise line in the diff:\n" + table);
    await shot(page, "d4-diff-side-by-side");
  });

  await step(page, "unified, then raw with the noise lines", async () => {
    await page.locator("#view-unified").check();
    await page.locator("#diff-table[data-view=unified] tr[data-op=add]", { hasText: "snmp-server location site-01 rack 1" }).waitFor();
    await shot(page, "d5-diff-unified");
    await page.locator("#diff-raw").check();
    const c = await diffCounts(page, true);
    // Each noise line (the byte count, two timestamps, the ntp clock-period) goes and comes back changed.
    assert(c.deleted >= 4 && c.added - c.deleted === 2, "raw counts: " + JSON.stringify(c));
    await page.locator("#diff-table tr[data-op=delete]", { hasText: "ntp clock-period" }).waitFor();
    await shot(page, "d6-diff-raw");
    assert(new URL(page.url()).searchParams.get("raw") === "1" && new URL(page.url()).searchParams.get("view") === "unified", "the view is in the address: " + page.url());
  });

  let runs = [];
  await step(page, "the device's history: badges newest first, changed only, two runs compared", async () => {
    await page.getByRole("link", { name: changedDevice, exact: true }).first().click();
    // The form offers the command the device ran, once its runs are read.
    await page.waitForFunction((c) => document.querySelector("#history-command")?.value === c, COMMAND);
    await shot(page, "d7-device-config-history");
    await page.locator("#history-open").click();
    await page.locator("#history-table").waitFor();
    runs = await page.locator("#history-table tbody tr").evaluateAll((rs) => rs.map((r) => ({ id: r.dataset.run, changed: r.dataset.changed })));
    assert(JSON.stringify(runs.map((r) => r.changed)) === JSON.stringify(["true", "false", "null"]), "history newest first: " + JSON.stringify(runs));
    await page.locator("#history-changed-only").check();
    assert((await page.locator("#history-table tbody tr").count()) === 1, "changed only keeps the one changed run");
    await page.locator("#history-changed-only").uncheck();
    await shot(page, "d8-history");
    // The newest against the first: the change, whatever the night between.
    await page.locator(`#history-table tr[data-run='${runs[2].id}'] input[name=pick-old]`).check();
    await page.locator(`#history-table tr[data-run='${runs[0].id}'] input[name=pick-new]`).check();
    await page.locator("#compare-runs").click();
    const c = await diffCounts(page, false);
    assert(c.added === 2 && c.deleted === 0, "newest against the first: " + JSON.stringify(c));
    assert((await page.locator("#diff-old-run").getAttribute("href")).endsWith(encodeURIComponent(runs[2].id)), "the old run is the one picked");
  });

  await step(page, "a first run has nothing to compare with, and says so", async () => {
    await page.evaluate((id) => window.netautoNavigate("?diff=" + encodeURIComponent(id)), runs[2].id);
    await page.locator("#diff-error", { hasText: "no earlier successful run" }).waitFor();
  });

  await step(page, "the run page says it changed and links to its diff", async () => {
    await page.evaluate((id) => window.netautoNavigate("?run=" + encodeURIComponent(id)), runs[0].id);
    await page.locator("#run-changed [data-changed=true]").waitFor();
    await page.locator("#run-diff-previous").click();
    assert((await diffCounts(page, false)).added === 2, "the run's diff with the previous one");
  });

  await step(page, "each output group links to its diff against the largest", async () => {
    await page.evaluate((id) => window.netautoNavigate("?job=" + encodeURIComponent(id)), jobId);
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed");
    await page.locator("#tab-groups").click();
    // Each device's configuration names its host: three groups, two of them linked.
    await page.waitForFunction(() => document.querySelectorAll("[data-group=output]").length === 3);
    assert((await page.locator("a.group-diff").count()) === 2, "every group but Output A links to its diff");
    await shot(page, "d9-groups");
    await page.locator("a.group-diff").first().click();
    const c = await diffCounts(page, false);
    assert(c.changed === "true" && c.added > 0 && c.deleted > 0, "two devices' configurations differ: " + JSON.stringify(c));
    assert((await page.locator("h1").innerText()).includes("→"), "the title names both devices");
    await shot(page, "d10-diff-between-groups");
  });

  await step(page, "platforms: the built-in filters, a bad pattern named, a filter that makes the change noise", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Platforms" }).click();
    const ios = page.locator("section[data-platform=cisco_iosxe]");
    await ios.locator("tr[data-builtin=true] code", { hasText: "^! Last configuration change at " }).waitFor();
    await shot(page, "d11-platforms");
    await page.locator("#platform-cisco_iosxe-edit").click();
    await page.locator("#platform-cisco_iosxe-add").click();
    await ios.locator("input.filter-pattern").last().fill("(");
    await page.locator("#platform-cisco_iosxe-save").click();
    const err = ios.locator(".field-error").first();
    await err.waitFor();
    assert((await ios.locator("input.filter-pattern").last().getAttribute("aria-invalid")) === "true", "the pattern is marked invalid");
    await shot(page, "d12-platform-filter-error");
    await ios.locator("input.filter-pattern").last().fill("^snmp-server location ");
    await ios.locator("input.filter-command").last().fill("^show run");
    await ios.locator("input.filter-description").last().fill("rack moves are not changes");
    await page.locator("#platform-cisco_iosxe-add").click();
    await ios.locator("input.filter-pattern").last().fill("^!$");
    await ios.locator("input.filter-description").last().fill("separator lines");
    await page.locator("#platform-cisco_iosxe-save").click();
    await page.getByText("Noise filters of cisco_iosxe saved.").waitFor();
    await ios.locator("tr[data-builtin=false] code", { hasText: "^snmp-server location " }).waitFor();
    // Filters apply to diffs at once: the change (its line and its separator) is now noise.
    await page.evaluate((id) => window.netautoNavigate("?diff=" + encodeURIComponent(id)), runs[0].id);
    const c = await diffCounts(page, false);
    assert(c.changed === "false" && c.added === 0 && c.deleted === 0, "the location line is noise now: " + JSON.stringify(c));
    await page.getByText("No difference").waitFor();
    await shot(page, "d13-diff-no-difference");
  });

  await step(page, "a viewer reads the filters and the history, and edits nothing", async () => {
    const viewer = await newPage(browser, problems);
    await signIn(viewer, "viewer", "e2e-drift-viewer@netauto.local");
    await viewer.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Platforms" }).click();
    await viewer.locator("section[data-platform=cisco_iosxe] tr[data-builtin=false] code", { hasText: "^snmp-server location " }).waitFor();
    assert((await viewer.getByRole("button", { name: /^Edit / }).count()) === 0, "a viewer gets no Edit button");
    await shot(viewer, "d14-platforms-viewer");
    await viewer.evaluate(([d, c]) => window.netautoNavigate(`?device=${encodeURIComponent(d)}&command=${encodeURIComponent(c)}`), [changedDevice, COMMAND]);
    await viewer.locator("#history-table tbody tr").nth(2).waitFor();
    await shot(viewer, "d15-history-viewer");
    await viewer.context().close();
  });
});
