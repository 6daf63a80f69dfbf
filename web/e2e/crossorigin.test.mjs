// The UI served from an origin of its own (BASE_URL), calling the API and the WebSocket API on
// the gateway's (API_URL), as CloudFront and execute-api are different origins in AWS: sign in,
// run a bulk command watched live, and read a truncated output, whose flag the UI can only see
// if the gateway exposes X-Output-Truncated. Every API call carries a bearer token, so each is
// preflighted: a gateway that does not answer preflights, or answers them wrongly, fails here.
// The fleet (web/e2e_test.go): linux devices, one printing endlessly (with a 4 KiB output cap),
// one printing a line per 150 ms.
import { API_URL, BASE_URL, script, newPage, signIn, shot, step, assert } from "./lib.mjs";

const FLEET = Number(process.env.FLEET_SIZE || 4);
await script(async (browser, problems) => {
  assert(new URL(BASE_URL).origin !== new URL(API_URL).origin, `the UI (${BASE_URL}) and the API (${API_URL}) must be different origins`);
  const page = await newPage(browser, problems);
  // Every call to the API must go to the API's origin: the UI's origin serves no API.
  const apiCalls = { api: 0, wrongOrigin: [] };
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith("/v1/") && u.pathname !== "/dev/token") return;
    if (u.origin === new URL(API_URL).origin) apiCalls.api++;
    else apiCalls.wrongOrigin.push(r.url());
  });
  let endlessId = "";

  await step(page, "sign in cross-origin with the dev sign-in", async () => {
    // An admin: the default command policy refuses the simulator's `seq` to operators on linux.
    await signIn(page, "admin", "cross-origin@netauto.local");
    await page.getByText(`${FLEET} of ${FLEET} devices match`).waitFor();
    assert(await page.evaluate(() => location.origin) === new URL(BASE_URL).origin, "the page is on the UI's origin");
    await shot(page, "xo-01-devices");
  });

  await step(page, "run a bulk command and watch it live", async () => {
    await page.locator("#filter-tag").fill("sim_fault=endless_output");
    await page.getByText(`1 of ${FLEET} devices match`).waitFor();
    endlessId = await page.locator("tr[data-id]").first().getAttribute("data-id");
    await page.locator("#filter-tag").fill("");
    await page.locator("#select-all").click();
    await page.locator("#selection-count", { hasText: `${FLEET} selected` }).waitFor();
    await page.locator("#run-bulk").click();
    await page.locator("#bulk-command").fill("seq 20");
    await page.locator("#bulk-submit").click();
    await page.locator("#flash-job-link").click();
    await page.locator("#job-progress").waitFor();
    // The slow device keeps the job running for a few seconds: progress arrives live over the
    // WebSocket on the gateway's origin before the job ends.
    await page.waitForFunction(() => {
      const p = document.querySelector("#job-progress");
      return Number(p.dataset.done) < Number(p.dataset.total) && document.querySelector("#connection-state").textContent === "live";
    }, null, { timeout: 15000 });
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 30000 });
    const text = await page.locator("#progress-text").innerText();
    assert(text === `${FLEET} of ${FLEET} devices done`, `final progress ${text}`);
    await shot(page, "xo-02-job-completed");
  });

  await step(page, "read a truncated output's headers cross-origin", async () => {
    await page.getByRole("link", { name: "Output of " + endlessId }).click();
    await page.locator("#run-output").waitFor();
    const flag = await page.locator("#output-truncated").innerText();
    assert(flag.startsWith("yes"), `truncated flag ${JSON.stringify(flag)}: X-Output-Truncated must be exposed to the UI's origin`);
    await shot(page, "xo-03-truncated-output");
  });

  assert(apiCalls.api > 0, "the UI called the API");
  assert(apiCalls.wrongOrigin.length === 0, "API calls to the UI's origin instead of api_url:\n" + apiCalls.wrongOrigin.join("\n"));
  console.log(`     ${apiCalls.api} API calls from ${BASE_URL} to ${API_URL}`);
});
