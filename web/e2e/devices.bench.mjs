// Benchmark (not a test): the devices page with DEVICES devices (default 2,000) in Chromium.
// Seeds the inventory through the import API, then measures, over RUNS page loads:
//   first_render_ms  navigation start → the first device rows in the DOM (all pages fetched),
//                    of which fetch_ms fetching them and render_ms rendering them
//   last_runs_ms     the last run of every device (POST /v1/devices/last-runs, 1,000 ids a request)
//   select_all_ms    click on "Select all N matching" → the count updated and painted
//   filter_ms        typing a search → the filtered table painted
//   scroll_end_ms    jump to the table's end → the last rows painted
// It prints "METRIC <name> <median>" lines, which BenchmarkDevicesPage (web/e2e_test.go) reports.
import { join } from "node:path";
import { ARTIFACTS, BASE_URL, launch, newPage } from "./lib.mjs";

const N = Number(process.env.DEVICES || 2000);
const RUNS = Number(process.env.RUNS || 3);

async function token(role) {
  const r = await fetch(BASE_URL + "/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email: "bench@netauto.local", role }) });
  if (!r.ok) throw new Error(`dev token: ${r.status}`);
  return (await r.json()).token;
}

const seedStart = performance.now();
const admin = await token("admin");
const asAdmin = { "Content-Type": "application/json", Authorization: "Bearer " + admin };
// The devices log in with the shared profile "lab", which must exist before a device may name it.
const profile = await fetch(BASE_URL + "/v1/credential-profiles", {
  method: "POST", headers: asAdmin, body: JSON.stringify({ id: "lab", username: "netops", allowed_sites: ["*"], password: crypto.randomUUID() }),
});
if (!profile.ok && profile.status !== 409) throw new Error(`credential profile: ${profile.status} ${(await profile.text()).slice(0, 300)}`);
const rows = [];
for (let i = 0; i < N; i++) {
  rows.push({
    id: `bench-${String(i).padStart(5, "0")}`, name: `bench router ${i}`, host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    platform: ["cisco_iosxe", "arista_eos", "juniper_junos", "linux"][i % 4], username: "netops", credential_profile: "lab",
    site: `site-${String(i % 25).padStart(2, "0")}`, tags: { role: i % 10 ? "access" : "core", pod: String(i % 40) },
  });
}
for (let i = 0; i < rows.length; i += 5000) {
  const chunk = rows.slice(i, i + 5000);
  const r = await fetch(BASE_URL + "/v1/devices/import?mode=per-row", { method: "POST", headers: asAdmin, body: JSON.stringify(chunk) });
  if (!r.ok) throw new Error(`import: ${r.status} ${(await r.text()).slice(0, 300)}`);
  // A per-row import answers 200 when rows fail: the page would then wait for devices that are not there.
  const res = await r.json();
  if (res.created !== chunk.length) {
    const bad = res.rows.find((x) => x.status !== "created");
    throw new Error(`import created ${res.created} of ${chunk.length} devices; row ${bad?.row}: ${JSON.stringify(bad?.errors)}`);
  }
}

const problems = [];
const browser = await launch();
const results = { first_render_ms: [], fetch_ms: [], render_ms: [], last_runs_ms: [], select_all_ms: [], filter_ms: [], scroll_end_ms: [] };
console.log(`seeded ${N} devices in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
const operator = await token("operator");
try {
  for (let run = 0; run < RUNS; run++) {
    const page = await newPage(browser, problems);
    await page.addInitScript((t) => {
      sessionStorage.setItem("netauto.token", t);
      new MutationObserver((_, obs) => {
        if (document.querySelector("tr[data-id]")) {
          window.firstRowsAt = performance.now();
          obs.disconnect();
        }
      }).observe(document, { childList: true, subtree: true });
    }, operator);
    await page.goto(BASE_URL + "/");
    try {
      await page.waitForFunction((n) => document.querySelector(".selection-bar")?.textContent.includes(`${n} of ${n} devices match`), N, { timeout: 60000 });
    } catch (e) {
      await page.screenshot({ path: join(ARTIFACTS, "FAILED-devices-bench.png") }).catch(() => {});
      console.error("browser problems:\n" + problems.join("\n"));
      throw e;
    }
    results.first_render_ms.push(await page.evaluate(() => window.firstRowsAt));
    // Of which: fetching the inventory (two pages of 1,000) and rendering once it is in.
    results.render_ms.push(await page.evaluate(() => window.firstRowsAt - performance.getEntriesByName("netauto:devices-loaded")[0].startTime));
    results.fetch_ms.push(await page.evaluate(() => window.netautoTimings.devicesFetchMs));
    await page.waitForFunction(() => window.netautoTimings && window.netautoTimings.lastRunsMs, null, { timeout: 60000 });
    results.last_runs_ms.push(await page.evaluate(() => window.netautoTimings.lastRunsMs));
    // The rows rendered stay few however many devices there are.
    const rendered = await page.locator("tr[data-id]").count();
    if (rendered > 80) throw new Error(`${rendered} rows in the DOM: the table is not virtualised`);

    const painted = (fn, until) => page.evaluate(([fnSrc, untilSrc]) => new Promise((resolve) => {
      const t0 = performance.now();
      new Function(fnSrc)();
      const check = new Function("return " + untilSrc);
      const wait = () => (check() ? requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - t0))) : requestAnimationFrame(wait));
      wait();
    }), [fn, until]);
    results.select_all_ms.push(await painted(`document.querySelector("#select-all").click()`,
      `document.querySelector("#selection-count").textContent === "${N} selected"`));
    results.filter_ms.push(await painted(
      `const i = document.querySelector("#filter-q"); i.value = "core"; i.dispatchEvent(new Event("input", { bubbles: true }))`,
      `/^${N / 10} of ${N} devices match/.test(document.querySelector(".selection-bar .muted").textContent)`));
    await page.evaluate(() => { const i = document.querySelector("#filter-q"); i.value = ""; i.dispatchEvent(new Event("input", { bubbles: true })); });
    await page.waitForFunction((n) => document.querySelector(".selection-bar")?.textContent.includes(`${n} of ${n} devices match`), N);
    results.scroll_end_ms.push(await painted(`const s = document.querySelector(".table-scroll"); s.scrollTop = s.scrollHeight`,
      `!!document.querySelector('tr[data-id="bench-${String(N - 1).padStart(5, "0")}"]')`));
    await page.context().close();
  }
} finally {
  await browser.close();
}
if (problems.length) {
  console.error("browser problems:\n" + problems.join("\n"));
  process.exit(1);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [k, xs] of Object.entries(results)) {
  console.log(`${k}: ${xs.map((x) => x.toFixed(0)).join(", ")}`);
  console.log(`METRIC ${k} ${median(xs).toFixed(1)}`);
}
