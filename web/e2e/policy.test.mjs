// End-to-end test of the command policy's UI (run by web/e2e_test.go, TestUIPolicy): an admin adds
// a deny rule on the Policy page, moves it first and saves it; the check box and the bulk form show
// the refusal with its rule and devices; a save over someone else's change is refused with a reload.
import { BASE_URL, script, newPage, signIn, shot, step, assert } from "./lib.mjs";

const FLEET = Number(process.env.FLEET_SIZE || 3);
await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  page.on("dialog", (d) => d.accept());
  let ids = [];

  await step(page, "add a deny rule first and save it", async () => {
    await signIn(page, "admin", "e2e-admin@netauto.local");
    await page.getByText(`${FLEET} of ${FLEET} devices match`).waitFor();
    ids = await page.locator("tr[data-id]").evaluateAll((rows) => rows.map((r) => r.dataset.id));
    await page.getByRole("link", { name: "Policy" }).click();
    await page.locator("#policy-rules").waitFor();
    const before = await page.locator("#policy-rules tbody tr").count();
    assert(before > 0, "the built-in rules are listed");
    await page.locator("#policy-add").click();
    const n = before + 1;
    await page.getByLabel(`Rule ${n} id`).fill("no-uname");
    await page.getByLabel(`Rule ${n} effect`).selectOption("deny");
    await page.getByLabel(`Rule ${n} pattern`).fill("uname **");
    await page.getByLabel(`Rule ${n} reason`).fill("e2e forbids uname");
    for (let i = n; i > 1; i--) await page.getByLabel(`Move rule ${i} up`).click();
    assert((await page.getByLabel("Rule 1 id").inputValue()) === "no-uname", "the new rule moved to the top");
    await shot(page, "p1-policy-edited");
    await page.locator("#policy-save").click();
    await page.getByText(/Policy saved \(version 1\)/).waitFor();
    await page.locator("#policy-version", { hasText: "Version 1" }).waitFor();
  });

  await step(page, "check a command", async () => {
    await page.locator("#check-command").fill("uname -a");
    await page.locator("#check-devices").fill(ids.join(", "));
    await page.locator("#check-submit").click();
    await page.locator("#check-result", { hasText: "Refused" }).waitFor();
    assert((await page.locator("#check-result td code", { hasText: "no-uname" }).count()) === FLEET, "every device names the refusing rule");
    await shot(page, "p2-policy-check");
  });

  await step(page, "a refused bulk command shows the rule and devices under the command", async () => {
    await page.getByRole("link", { name: "Devices" }).click();
    await page.locator("#select-all").click();
    await page.locator("#run-bulk").click();
    await page.locator("#bulk-command").fill("uname -a");
    await page.locator("#bulk-submit").click();
    const err = page.locator("#bulk-command-error");
    await err.locator(".denied-rule", { hasText: "no-uname" }).waitFor();
    const text = await err.innerText();
    assert(text.includes("e2e forbids uname"), "the reason is shown: " + text);
    for (const id of ids) assert(text.includes(id), `device ${id} is named: ${text}`);
    assert((await page.locator("#bulk-command").getAttribute("aria-invalid")) === "true", "the command field is marked invalid");
    await shot(page, "p3-bulk-denied");
    await page.keyboard.press("Escape");
  });

  await step(page, "saving over someone else's change offers a reload", async () => {
    await page.getByRole("link", { name: "Policy" }).click();
    await page.locator("#policy-version", { hasText: "Version 1" }).waitFor();
    // Someone else saves version 2 meanwhile.
    const status = await page.evaluate(async () => {
      const cfg = await (await fetch("config.json")).json();
      const auth = { Authorization: "Bearer " + sessionStorage.getItem("netauto.token"), "Content-Type": "application/json" };
      const base = (cfg.api_url || "").replace(/\/$/, "");
      const cur = await (await fetch(base + "/v1/policy", { headers: auth })).json();
      const r = await fetch(base + "/v1/policy", { method: "PUT", headers: auth, body: JSON.stringify({ rules: cur.rules.slice(1), version: cur.version }) });
      return r.status;
    });
    assert(status === 200, "the concurrent save succeeds: " + status);
    await page.getByLabel("Rule 1 reason").fill("changed in the UI");
    await page.locator("#policy-save").click();
    await page.locator("#policy-error", { hasText: "Someone changed the policy" }).waitFor();
    await shot(page, "p4-policy-conflict");
    await page.locator("#policy-reload").click();
    await page.locator("#policy-version", { hasText: "Version 2" }).waitFor();
    assert((await page.getByLabel("Rule 1 id").inputValue()) !== "no-uname", "the reload shows the other save");
  });

  await step(page, "credential profiles: create, rotate, delete (secrets never shown)", async () => {
    await page.getByRole("link", { name: "Credentials" }).click();
    await page.locator("#profiles").waitFor();
    await page.locator("#profile-new").click();
    await page.locator("#prof-id").fill("e2e-lab");
    await page.locator("#prof-username").fill("netops");
    await page.locator("#prof-sites").fill("ams1");
    await page.locator("#prof-secret").fill("s3cret-e2e");
    await page.locator("#profile-save").click();
    const row = page.locator("#profiles tr[data-id='e2e-lab']");
    await row.waitFor();
    assert((await row.innerText()).includes("set"), "has_secret is shown");
    assert(!(await page.content()).includes("s3cret-e2e"), "the secret is never shown");
    await row.getByRole("button", { name: "Edit / rotate" }).click();
    await page.locator("#prof-secret").fill("rotated-e2e");
    await page.locator("#profile-save").click();
    await page.getByText(/secret rotated/).waitFor();
    await shot(page, "p5-credential-profiles");
    await page.locator("#profiles tr[data-id='e2e-lab']").getByRole("button", { name: "Delete" }).click();
    await page.getByText("Profile e2e-lab deleted.").waitFor();
  });
});
