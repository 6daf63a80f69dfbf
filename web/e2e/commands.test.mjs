// End-to-end test of command sequences in the UI (run by web/e2e_test.go, TestUICommands) on a
// fleet of simulated Cisco IOS devices: three commands pasted into the bulk dialog at once, a
// [confirm] answered, an scp copy whose password is a secret answer (masked in the form, never in
// the page after submit), a field error under the prompt it names, a tab per command on the run
// page (arrow keys), the job's groups by whole output with a tab per command, a refused command
// and a refused prompt answer named by their place, and the single-device form typed by keyboard
// alone.
import { BASE_URL, script, newPage, signIn, shot, step, assert } from "./lib.mjs";

const FLEET = Number(process.env.FLEET_SIZE || 3);
const SECRET = process.env.SECRET_ANSWER || "";
if (!SECRET) throw new Error("SECRET_ANSWER is required (the fleet's scp password)");

/** paste pastes text into the focused element as the clipboard would. */
async function paste(page, selector, text) {
  await page.locator(selector).focus();
  await page.evaluate(({ selector, text }) => {
    const dt = new DataTransfer();
    dt.setData("text/plain", text);
    document.querySelector(selector).dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
  }, { selector, text });
}

/** secretNowhere fails when the secret answer is anywhere in the page: markup, text or a field's value. */
async function secretNowhere(page, where) {
  const found = await page.evaluate((s) => document.documentElement.outerHTML.includes(s) ||
    [...document.querySelectorAll("input, textarea")].some((i) => i.value.includes(s)), SECRET);
  assert(!found, `the secret answer appears in the page (${where})`);
}

/** fillPrompt opens row i's prompts when needed and fills prompt j. */
async function fillPrompt(page, i, j, { expect, answer, secret }) {
  const row = i === 0 ? "#bulk-command" : `#bulk-command-${i}`;
  if (!(await page.locator(`${row}-prompts`).count())) await page.locator(`${row}-prompts-toggle`).click();
  else if (!(await page.locator(`${row}-p${j}-expect`).count())) await page.locator(`${row}-add-prompt`).click();
  await page.locator(`${row}-p${j}-expect`).fill(expect);
  if (secret) await page.locator(`${row}-p${j}-secret`).check();
  await page.locator(`${row}-p${j}-answer`).fill(answer);
}

await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  let jobId = "", runId = "";

  await step(page, "paste three commands into the bulk dialog and answer their prompts", async () => {
    await signIn(page, "admin", "e2e-admin@netauto.local");
    await page.getByText(`${FLEET} of ${FLEET} devices match`).waitFor();
    await page.locator("#select-all").click();
    await page.locator("#run-bulk").click();
    await page.getByRole("dialog", { name: "Run a bulk command" }).waitFor();
    await paste(page, "#bulk-command", "show clock\r\n\r\nclear counters\ncopy scp: flash:\n");
    const values = await page.locator(".command-row input[data-row-key]").evaluateAll((els) => els.map((e) => e.value));
    assert(JSON.stringify(values) === JSON.stringify(["show clock", "clear counters", "copy scp: flash:"]), "one row per pasted line: " + JSON.stringify(values));
    await fillPrompt(page, 1, 0, { expect: "[confirm]", answer: "y" });
    await fillPrompt(page, 2, 0, { expect: "remote host []?", answer: "10.0.0.5" });
    await fillPrompt(page, 2, 1, { expect: "", answer: "image.bin" });
    await fillPrompt(page, 2, 2, { expect: "Destination filename [image.bin]?", answer: "" });
    await fillPrompt(page, 2, 3, { expect: "Password:", answer: SECRET, secret: true });
    assert((await page.locator("#bulk-command-2-p3-answer").getAttribute("type")) === "password", "a secret answer is masked in the form");
    assert((await page.locator("#bulk-command-2-add-prompt").isEnabled()), "a fifth prompt may be added");
    await page.locator("#bulk-stop-on-error").check();
    await shot(page, "c1-sequence-form");
  });

  await step(page, "a prompt without its expect is refused under that field", async () => {
    await page.locator("#bulk-submit").click();
    const err = page.locator("#bulk-command-2-p1-expect-error");
    await err.filter({ hasText: "is required" }).waitFor();
    assert((await page.locator("#bulk-command-2-p1-expect").getAttribute("aria-invalid")) === "true", "the expect field is marked invalid");
    assert(await page.evaluate(() => document.activeElement.id === "bulk-command-2-p1-expect"), "focus moves to the field in error");
    assert((await page.locator("#flash-job-link").count()) === 0, "nothing was submitted");
    await shot(page, "c2-prompt-field-error");
    await page.locator("#bulk-command-2-p1-expect").fill("Source filename []?");
  });

  await step(page, "submit: the secret answer never reaches the page", async () => {
    await page.locator("#bulk-submit").click();
    await page.locator("#flash-job-link").waitFor();
    jobId = new URL(await page.locator("#flash-job-link").getAttribute("href"), BASE_URL).searchParams.get("job");
    await secretNowhere(page, "after submit");
    await page.locator("#flash-job-link").click();
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 60000 });
    await page.waitForFunction((n) => document.querySelectorAll("tr[data-device][data-status=succeeded]").length === n, FLEET);
    const cmds = await page.locator("#job-commands li").allInnerTexts();
    assert(cmds.length === 3 && cmds[0].includes("show clock") && cmds[2].includes("copy scp: flash:"), "the job lists its commands: " + JSON.stringify(cmds));
    const marks = await page.locator("tr[data-device] .command-marks").first().getAttribute("aria-label");
    assert(/1\. show clock: succeeded; 2\. clear counters: succeeded; 3\. copy scp: flash:: succeeded/.test(marks), "each device shows its commands: " + marks);
    await secretNowhere(page, "job page");
    await shot(page, "c3-job-sequence");
  });

  await step(page, "the run page has a tab per command, by arrow keys", async () => {
    const link = page.locator("tr[data-device] a", { hasText: "output" }).first();
    runId = new URL(await link.getAttribute("href"), BASE_URL).searchParams.get("run");
    await link.click();
    await page.getByRole("tablist", { name: "Output per command" }).waitFor();
    const tabs = page.getByRole("tab");
    assert((await tabs.count()) === 4, "the whole output and three commands");
    const labels = await tabs.allInnerTexts();
    assert(labels[0].includes("Whole output"), "the first tab is the whole output: " + labels[0]);
    assert(labels[2].includes("clear counters") && labels[2].includes("succeeded") && /\d+(\.\d+)? (B|KiB)/.test(labels[2]), "a command's tab has its status and bytes: " + labels[2]);
    const whole = await page.locator("#run-output").innerText();
    assert(whole.includes("12:34:56") && whole.includes("%CLEAR-5-COUNTERS") && whole.includes("bytes copied"), "the whole output holds every command's: " + whole);
    await page.getByRole("tab", { selected: true }).focus();
    const want = [["show clock", "12:34:56", "CLEAR"], ["clear counters", "%CLEAR-5-COUNTERS", "12:34:56"], ["copy scp: flash:", "bytes copied", "CLEAR"]];
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press("ArrowRight");
      await page.locator(`#output-tab-${i}[aria-selected=true]`).waitFor();
      assert(await page.evaluate((i) => document.activeElement.id === `output-tab-${i}`, i), `focus follows the arrow key to tab ${i + 1}`);
      await page.waitForFunction(() => document.querySelector("#run-output")?.getAttribute("aria-busy") === "false");
      const text = await page.locator("#run-output").innerText();
      const [cmd, has, hasNot] = want[i];
      assert(text.includes(has) && !text.includes(hasNot), `command ${i + 1}'s tab shows ${cmd}'s output only: ${text}`);
      assert((await page.locator("#command-summary").innerText()).includes(cmd), "the panel names its command");
      await secretNowhere(page, `tab ${i + 1}`);
    }
    await shot(page, "c4-run-command-tab");
    await page.keyboard.press("Home");
    await page.locator("#output-tab-all[aria-selected=true]").waitFor();
    await page.keyboard.press("End");
    await page.locator("#output-tab-2[aria-selected=true]").waitFor();
  });

  await step(page, "group by identical output compares whole outputs, with a tab per command", async () => {
    await page.evaluate((to) => window.netautoNavigate(to), "?job=" + encodeURIComponent(jobId));
    await page.locator("#tab-groups").click();
    await page.locator("#groups-summary", { hasText: `All ${FLEET} devices with output returned the same output.` }).waitFor();
    const group = page.locator("[data-group=output]").first();
    await group.getByRole("tablist").waitFor();
    await group.getByRole("tab", { name: /clear counters/ }).click();
    await group.locator("[role=tabpanel][data-command='1'] pre", { hasText: "%CLEAR-5-COUNTERS" }).waitFor();
    await secretNowhere(page, "groups");
    await shot(page, "c5-groups-command-tab");
  });

  await step(page, "an operator's refused command is named by its place in the sequence", async () => {
    const op = await newPage(browser, problems);
    await signIn(op, "operator", "e2e-operator@netauto.local");
    await op.locator("#select-all").click();
    await op.locator("#run-bulk").click();
    await op.locator("#bulk-command").fill("show clock");
    await op.locator("#bulk-command").press("Enter");
    await op.keyboard.type("clear counters");
    await op.locator("#bulk-submit").click();
    const err = op.locator("#bulk-command-1-error");
    await err.locator(".denied-rule", { hasText: "deny-clear" }).waitFor();
    assert((await op.locator("#bulk-command-1").getAttribute("aria-invalid")) === "true", "the refused command is marked invalid");
    assert((await op.locator("#bulk-command-error").count()) === 0, "the allowed command carries no error");
    await shot(op, "c6-operator-denied");
    // A prompt answer other than a plain reply is checked like a command, and named as such.
    await op.getByRole("button", { name: "Remove command 2" }).click();
    await op.locator("#bulk-command-prompts-toggle").click();
    await op.locator("#bulk-command-p0-expect").fill("[confirm]");
    await op.locator("#bulk-command-p0-answer").fill("reload");
    await op.locator("#bulk-submit").click();
    await op.locator("#bulk-command-p0-answer-error .denied-rule", { hasText: "deny-reload" }).waitFor();
    assert((await op.locator("#bulk-command-p0-answer").getAttribute("aria-invalid")) === "true", "the refused answer is marked invalid");
    assert((await op.locator("#bulk-command-error").count()) === 0, "the command itself carries no error");
    await op.context().close();
  });

  await step(page, "the single-device form by keyboard: Enter adds a command, Ctrl+Enter runs", async () => {
    const deviceId = runId.slice(runId.indexOf(".") + 1);
    await page.evaluate((to) => window.netautoNavigate(to), "?device=" + encodeURIComponent(deviceId));
    await page.locator("#run-device").click();
    await page.getByRole("dialog", { name: `Run commands on ${deviceId}` }).waitFor();
    // The dialog focuses its first command in an effect after the paint that shows it: wait for it.
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === "run-command", null, { timeout: 5000 })
      .catch(() => { throw new Error("the dialog never focused its first command"); });
    await page.keyboard.type("show clock");
    await page.keyboard.press("Enter");
    await page.keyboard.type("show version");
    await page.keyboard.press("Enter");
    await page.locator("#run-command-2").waitFor();
    await page.keyboard.press("Backspace"); // an empty row goes again
    await page.locator("#run-command-2").waitFor({ state: "detached" });
    assert((await page.locator("#run-command-1").inputValue()) === "show version", "the second command is whole");
    await page.keyboard.press("Control+Enter");
    await page.getByRole("tablist", { name: "Output per command" }).waitFor({ timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll("[role=tab]").length === 3);
    assert(new URL(page.url()).searchParams.get("run").endsWith("." + deviceId), "the run page of that device");
    await shot(page, "c7-single-device-run");
  });
});
