// End-to-end test of the Webhooks page (run by web/e2e_test.go, TestUIWebhooks) against a local
// receiver this script serves on loopback: a missing URL is named under its field; a created
// webhook shows its signing secret once and never its URL; Test reaches the receiver with a
// signature the secret verifies; the delivery log lists the attempt; Disable shows the reason and
// Enable clears it; a new URL shows a new signing secret once, which signs the next delivery; a
// failing receiver's answer is in the log. Every page shown is checked with
// axe-core.
import { createServer } from "node:http";
import { createHmac } from "node:crypto";
import { script, newPage, signIn, shot, step, assert } from "./lib.mjs";

const received = [];
let status = 200;
const receiver = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    received.push({ headers: req.headers, body, path: req.url });
    res.writeHead(status).end();
  });
});
await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
const TOKEN = "e2e-T0KEN-s3cret";
const hookURL = `http://127.0.0.1:${receiver.address().port}/hooks/${TOKEN}`;

await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  page.on("dialog", (d) => d.accept());
  let secret = "";

  await step(page, "the Webhooks page, and a missing URL named under its field", async () => {
    await signIn(page, "admin", "e2e-admin@netauto.local");
    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.locator("#webhooks").waitFor();
    await shot(page, "w1-webhooks-empty");
    await page.locator("#hook-new").click();
    await page.locator("#hook-name").fill("ops chat");
    await page.locator("#hook-save").click();
    await page.locator("#hook-url-error", { hasText: "is required" }).waitFor();
    await shot(page, "w2-webhook-missing-url");
  });

  await step(page, "create: the signing secret is shown once, the URL never", async () => {
    await page.locator("#hook-url").fill(hookURL);
    await page.locator("#hook-event-0").check();
    await page.locator("#hook-format").selectOption("slack");
    await page.locator("#hook-cidrs").fill("127.0.0.0/8");
    await page.locator("#hook-save").click();
    await page.locator("#hook-secret-panel").waitFor();
    secret = await page.locator("#hook-secret").innerText();
    assert(/^whsec_[0-9a-f]{64}$/.test(secret), "the signing secret: " + secret);
    const row = await page.locator("#webhooks tr[data-id]").innerText();
    assert(row.includes("ops chat") && row.includes("Job Finished") && row.includes("slack") && row.includes("enabled"), "the row: " + row);
    assert(!(await page.content()).includes(TOKEN), "the URL is not on the page");
    await shot(page, "w3-webhook-secret-once");
    await page.locator("#hook-secret-done").click();
    assert(!(await page.content()).includes(secret), "the secret is gone once dismissed");
  });

  await step(page, "Test reaches the receiver, signed with the secret", async () => {
    await page.getByRole("button", { name: "Test ops chat" }).click();
    await page.locator("#flash", { hasText: "delivered (HTTP 200" }).waitFor();
    assert(received.length === 1, "the receiver got one request: " + received.length);
    const r = received[0];
    const want = "sha256=" + createHmac("sha256", secret).update(`${r.headers["x-netauto-timestamp"]}.${r.body}`).digest("hex");
    assert(r.headers["x-netauto-signature"] === want, "the signature verifies: " + r.headers["x-netauto-signature"]);
    assert(r.headers["x-netauto-event"] === "Webhook Test", "the event header");
    assert(JSON.parse(r.body).text.includes("a test delivery to webhook"), "a Slack body: " + r.body);
  });

  await step(page, "the delivery log lists the attempt", async () => {
    await page.getByRole("button", { name: "Deliveries of ops chat" }).click();
    await page.locator("#hook-log tr[data-outcome=delivered]").waitFor();
    const row = await page.locator("#hook-log tr[data-outcome=delivered]").innerText();
    assert(row.includes("Webhook Test") && row.includes("HTTP 200"), "the log row: " + row);
    await shot(page, "w4-webhook-deliveries");
  });

  await step(page, "Disable shows the reason; Enable clears it", async () => {
    await page.getByRole("button", { name: "Disable ops chat" }).click();
    await page.locator("#webhooks tr[data-enabled=false] [data-reason]", { hasText: "disabled by an admin" }).waitFor();
    await shot(page, "w5-webhook-disabled");
    await page.getByRole("button", { name: "Enable ops chat" }).click();
    await page.locator("#webhooks tr[data-enabled=true]").waitFor();
  });

  await step(page, "a new URL gets a new signing secret, shown once, which signs from then on", async () => {
    await page.getByRole("button", { name: "Edit ops chat" }).click();
    await page.locator("#hook-url-hint", { hasText: "A new URL gets a new signing secret" }).waitFor();
    await page.locator("#hook-url").fill(hookURL + "/moved");
    await page.locator("#hook-save").click();
    await page.locator("#hook-secret-panel").waitFor();
    const moved = await page.locator("#hook-secret").innerText();
    assert(/^whsec_[0-9a-f]{64}$/.test(moved) && moved !== secret, "a new signing secret: " + moved);
    assert(!(await page.content()).includes(TOKEN), "the URL is not on the page");
    await shot(page, "w6-webhook-new-url-secret");
    await page.locator("#hook-secret-done").click();
    assert(!(await page.content()).includes(moved), "the secret is gone once dismissed");
    await page.getByRole("button", { name: "Test ops chat" }).click();
    await page.locator("#flash", { hasText: "delivered (HTTP 200" }).waitFor();
    const r = received[received.length - 1];
    assert(r.path === `/hooks/${TOKEN}/moved`, "delivered to the new URL: " + r.path);
    const sign = (key) => "sha256=" + createHmac("sha256", key).update(`${r.headers["x-netauto-timestamp"]}.${r.body}`).digest("hex");
    assert(r.headers["x-netauto-signature"] === sign(moved), "the new secret signs");
    assert(r.headers["x-netauto-signature"] !== sign(secret), "the old receiver's secret does not");
  });

  await step(page, "a failing receiver's answer is in the log", async () => {
    status = 500;
    await page.getByRole("button", { name: "Test ops chat" }).click();
    await page.locator("#hook-log tr[data-outcome=failed]").waitFor();
    const row = await page.locator("#hook-log tr[data-outcome=failed]").innerText();
    assert(row.includes("HTTP 500"), "the failed row: " + row);
    assert(!(await page.content()).includes(TOKEN), "the URL is not on the page");
    await shot(page, "w7-webhook-failed-test");
  });
});
