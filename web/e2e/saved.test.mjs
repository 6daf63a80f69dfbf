// End-to-end test of saved jobs and re-runs in the UI (run by web/e2e_test.go, TestUISavedJobs): an
// operator saves a job with a platform selector in the editor (a missing name and an unknown
// platform shown in place), schedules it (an unknown time zone shown in place, the next runs in the
// list and the editor, paused and resumed from the list), runs it now, opens the finished job, re-runs its unreachable device
// from the job page and follows the links between the two jobs both ways.
import { BASE_URL, script, newPage, signIn, shot, step, assert } from "./lib.mjs";

const FLEET = Number(process.env.FLEET_SIZE || 3);
await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  page.on("dialog", (d) => d.accept());
  let firstJob = "";

  await step(page, "save a job in the editor", async () => {
    await signIn(page, "operator", "e2e-operator@netauto.local");
    await page.getByRole("link", { name: "Saved jobs" }).click();
    await page.locator("#saved-empty").waitFor();
    await page.locator("#saved-new").click();
    await page.locator("#saved-submit").click();
    await page.locator("#saved-name-error").waitFor();
    assert((await page.locator("#saved-name").getAttribute("aria-invalid")) === "true", "the name is marked invalid");
    await page.locator("#saved-name").fill("e2e versions");
    await page.locator("#saved-platform").fill("toaster");
    await page.locator("#saved-command").fill("show version");
    await page.locator("#saved-submit").click();
    await page.locator("#saved-platform-error").waitFor();
    await shot(page, "s1-saved-editor-error");
    await page.locator("#saved-platform").fill("cisco_ios");
    await page.locator("#saved-submit").click();
    await page.locator("#saved-jobs tr[data-saved]").waitFor();
    const row = await page.locator("#saved-jobs tr[data-saved]").innerText();
    assert(row.includes("platform cisco_ios") && row.includes("show version"), "the list shows the selector and command: " + row);
    await shot(page, "s2-saved-list");
  });

  await step(page, "schedule it, pause and resume", async () => {
    await page.getByRole("button", { name: "Edit e2e versions" }).click();
    await page.locator("#saved-cron").fill("0 3 * * *");
    await page.locator("#saved-tz").fill("Mars/Olympus");
    await page.locator("#saved-submit").click();
    await page.locator("#saved-tz-error").waitFor();
    assert((await page.locator("#saved-tz").getAttribute("aria-invalid")) === "true", "the time zone is marked invalid");
    await page.locator("#saved-tz").fill("Europe/Berlin");
    await page.locator("#saved-submit").click();
    const cell = page.locator("#saved-jobs tr[data-saved] td[data-schedule]");
    await cell.locator("time").waitFor();
    let text = await cell.innerText();
    assert(text.includes("0 3 * * * (Europe/Berlin)") && text.includes("next"), "the list shows the schedule and its next run: " + text);
    await shot(page, "s2b-saved-scheduled");
    await page.getByRole("button", { name: "Pause schedule: e2e versions" }).click();
    await page.getByRole("button", { name: "Resume schedule: e2e versions" }).waitFor();
    text = await cell.innerText();
    assert(text.includes("paused") && !text.includes("next"), "a paused schedule shows no next run: " + text);
    await page.getByRole("button", { name: "Resume schedule: e2e versions" }).click();
    await page.getByRole("button", { name: "Pause schedule: e2e versions" }).waitFor();
    await page.getByRole("button", { name: "Edit e2e versions" }).click();
    await page.locator("#saved-next-runs li").nth(4).waitFor();
    assert((await page.locator("#saved-next-runs li").count()) === 5, "the editor shows the next 5 runs");
    assert(await page.locator("#saved-enabled").isChecked(), "the schedule is enabled again");
    await shot(page, "s2c-saved-next-runs");
    await page.getByRole("button", { name: "Cancel" }).click();
  });

  await step(page, "run it now and open the finished job", async () => {
    await page.getByRole("button", { name: "Run now: e2e versions" }).click();
    await page.locator("#flash-job-link").click();
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 60000 });
    firstJob = new URL(page.url()).searchParams.get("job");
    await page.locator("#job-saved-link").waitFor();
    assert((await page.locator('[data-count="succeeded"]').innerText()) === String(FLEET - 1), "all but one device succeeded");
    assert((await page.locator('[data-count="unreachable"]').innerText()) === "1", "one device is unreachable");
  });

  await step(page, "re-run the unreachable device, links both ways", async () => {
    await page.locator("#rerun-job").click();
    const unreachable = page.locator('input[name="rerun-status"][value="unreachable"]');
    assert(await unreachable.isChecked(), "the failing statuses with devices are chosen");
    assert(await page.locator('input[name="rerun-status"][value="succeeded"]').isChecked() === false, "succeeded is not chosen");
    await page.locator("#rerun-submit", { hasText: "Re-run 1 device" }).waitFor();
    await shot(page, "s3-rerun-dialog");
    await page.locator("#rerun-submit").click();
    await page.locator("#job-rerun-of", { hasText: firstJob }).waitFor();
    const rerun = new URL(page.url()).searchParams.get("job");
    assert(rerun && rerun !== firstJob, "the new job's page is open");
    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "completed", null, { timeout: 60000 });
    assert((await page.locator("#progress-text").innerText()).includes("1 of 1"), "exactly one device");
    await page.locator("#job-rerun-of").click();
    await page.locator("#job-reruns a", { hasText: rerun }).waitFor();
    await shot(page, "s4-job-reruns");
  });
});
