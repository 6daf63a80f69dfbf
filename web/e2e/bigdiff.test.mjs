// End-to-end test of a diff too large for the diff page (run by web/e2e_test.go,
// TestUIDiffTooLarge) on one simulated Linux device: `seq 1` and `seq 160000` (about 1 MB, under
// the 1 MiB a diff compares) differ by 159,999 added lines, whose JSON hunks pass the 4 MiB the API
// answers (422 diff_too_large). The page says so and offers the unified diff and both outputs as
// downloads, each checked by its contents.
import { readFileSync } from "node:fs";
import { script, newPage, signIn, shot, step, assert, api } from "./lib.mjs";

const BIG = 160000;

/** runOn runs command on device and waits until the run has succeeded; it returns the run id. */
async function runOn(page, device, command) {
  const r = await api(page, "POST", "/v1/runs", { device_id: device, command });
  assert(r.status === 202, `POST /v1/runs ${command}: ${r.status} ${JSON.stringify(r.body)}`);
  const id = r.body.run_id;
  for (let i = 0; i < 300; i++) {
    const got = await api(page, "GET", "/v1/runs/" + encodeURIComponent(id));
    if (got.body.status === "succeeded") return id;
    assert(!["failed", "timed_out", "unreachable", "auth_failed", "cancelled"].includes(got.body.status), `${command}: ${JSON.stringify(got.body)}`);
    await page.waitForTimeout(200);
  }
  throw new Error(`${command} did not finish`);
}

/** download clicks button and returns the name and the text of the file it downloads. */
async function download(page, button) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.locator(button).click()]);
  return { name: dl.suggestedFilename(), text: readFileSync(await dl.path(), "utf8") };
}

await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  let small = "", big = "";

  await step(page, "two runs whose JSON diff is too large", async () => {
    await signIn(page, "admin", "e2e-bigdiff@netauto.local");
    const devices = await api(page, "GET", "/v1/devices");
    const device = devices.body.items[0].id;
    small = await runOn(page, device, "seq 1");
    big = await runOn(page, device, `seq ${BIG}`);
    const r = await api(page, "GET", `/v1/runs/${encodeURIComponent(big)}/diff?format=json&against=${encodeURIComponent(small)}`);
    assert(r.status === 422 && r.body.error.code === "diff_too_large", `the API refuses the JSON form: ${r.status} ${JSON.stringify(r.body)}`);
  });

  await step(page, "the diff page says why and offers the downloads", async () => {
    await page.evaluate(({ big, small }) => window.netautoNavigate("?diff=" + encodeURIComponent(big) + "&against=" + encodeURIComponent(small)), { big, small });
    await page.locator("#diff-too-large[data-code=diff_too_large]").waitFor();
    const text = await page.locator("#diff-error").innerText();
    assert(text.includes("too large to show here") && text.includes("unified diff"), "the message: " + text);
    assert(await page.locator("#diff-table").count() === 0, "no table");
    await shot(page, "bd1-diff-too-large");
  });

  await step(page, "the unified diff downloads whole", async () => {
    const { name, text } = await download(page, "#download-diff");
    assert(name === `${small}..${big}.diff`, "file name " + name);
    const lines = text.split("\n");
    assert(lines[0] === `--- ${small}` && lines[1] === `+++ ${big}`, "headers: " + lines.slice(0, 2).join(" | "));
    const added = lines.filter((l) => l.startsWith("+") && !l.startsWith("+++")).length;
    assert(added === BIG - 1, `${added} added lines, want ${BIG - 1}`);
    assert(text.includes(`\n+${BIG}\n`), "the last line is in it");
  });

  await step(page, "both outputs download", async () => {
    const old = await download(page, "#download-old-output");
    assert(old.name === `${small}.txt` && old.text === "1\n", `old output ${old.name}: ${JSON.stringify(old.text.slice(0, 20))}`);
    const neu = await download(page, "#download-new-output");
    const n = neu.text.split("\n").filter(Boolean);
    assert(neu.name === `${big}.txt` && n.length === BIG && n[BIG - 1] === String(BIG), `new output ${neu.name}: ${n.length} lines`);
  });
});
