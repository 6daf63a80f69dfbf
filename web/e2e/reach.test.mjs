// End-to-end test of jump hosts and a device's reach (run by web/e2e_test.go, TestUIReach): an
// admin creates jump hosts on the Jump hosts page (a missing credential is named under its field),
// puts a device behind two of them in order with an enable secret in the device form, meets the
// in-use refusal when deleting one, sees a changed address drop a credential, takes the device
// back to a direct connection, and sets one chain on every selected device at once, then clears it.
import { script, newPage, signIn, shot, step, assert, api } from "./lib.mjs";

async function createJumpHost(page, id, host) {
  await page.locator("#jump-new").click();
  await page.locator("#jump-id").fill(id);
  await page.locator("#jump-host").fill(host);
  await page.locator("#jump-username").fill("jump");
  await page.locator("#jump-secret").fill("e2e-jump-secret-" + id);
  await page.locator("#jump-tofu").check();
  await page.locator("#jump-save").click();
  await page.locator(`#jump-hosts tr[data-id='${id}']`).waitFor();
}

await script(async (browser, problems) => {
  const page = await newPage(browser, problems);
  page.on("dialog", (d) => d.accept());
  let dev = "";

  await step(page, "create jump hosts; a missing credential is named under its field", async () => {
    await signIn(page, "admin", "e2e-admin@netauto.local");
    await page.locator("tr[data-id]").first().waitFor();
    dev = await page.locator("tr[data-id]").first().getAttribute("data-id");
    await page.getByRole("link", { name: "Jump hosts" }).click();
    await page.locator("#jump-hosts").waitFor();
    await page.locator("#jump-new").click();
    await page.locator("#jump-id").fill("nocred");
    await page.locator("#jump-host").fill("192.0.2.50");
    await page.locator("#jump-username").fill("jump");
    await page.locator("#jump-save").click();
    await page.locator("#jump-secret-error", { hasText: "is required" }).waitFor();
    await shot(page, "r1-jump-host-missing-credential");
    await page.getByRole("button", { name: "Cancel" }).click();
    await createJumpHost(page, "bastion", "192.0.2.50");
    await createJumpHost(page, "inner", "192.0.2.51");
    const row = await page.locator("#jump-hosts tr[data-id='bastion']").innerText();
    assert(row.includes("192.0.2.50:22") && row.includes("learned on first use") && row.includes("set"), "the row: " + row);
    assert(!(await page.content()).includes("e2e-jump-secret-"), "no secret on the page");
    await shot(page, "r2-jump-hosts");
  });

  await step(page, "put a device behind both, in order, with an enable secret", async () => {
    await page.getByRole("link", { name: "Devices" }).click();
    await page.getByRole("button", { name: "Edit " + dev }).click();
    await page.locator("#dev-jump-0").selectOption("bastion");
    await page.locator("#dev-jump-1").selectOption("inner");
    assert((await page.locator("#dev-jump-2 option").allInnerTexts()).join(",") === "none", "a third hop offers no host already in the chain");
    await page.locator("#dev-enable_secret").fill("e2e-enable-secret");
    await shot(page, "r3-device-jump-chain");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator(".modal").waitFor({ state: "detached" });
    const d = await api(page, "GET", "/v1/devices/" + encodeURIComponent(dev));
    assert(JSON.stringify(d.body.jump_host_ids) === JSON.stringify(["bastion", "inner"]), "the chain in order: " + JSON.stringify(d.body));
    assert(d.body.has_enable_secret === true, "the enable secret is stored");
  });

  await step(page, "deleting a jump host in use is refused with how many devices use it", async () => {
    await page.getByRole("link", { name: "Jump hosts" }).click();
    await page.locator("#jump-hosts tr[data-id='inner']").getByRole("button", { name: "Delete" }).click();
    await page.getByText(/Jump host inner is still in use: 1 device uses/).waitFor();
    await shot(page, "r4-jump-host-in-use");
  });

  await step(page, "a new address drops the credential, and the page says so", async () => {
    await page.locator("#jump-hosts tr[data-id='bastion']").getByRole("button", { name: "Edit / rotate" }).click();
    await page.locator("#jump-port").fill("2222");
    await page.locator("#jump-save").click();
    await page.getByText(/its address changed, so its credential was dropped/).waitFor();
    // The message can show before the table has re-rendered the row: wait for the new address.
    const moved = page.locator("#jump-hosts tr[data-id='bastion']").filter({ hasText: "192.0.2.50:2222" });
    await moved.waitFor();
    const row = await moved.innerText();
    assert(row.includes("192.0.2.50:2222") && row.includes("none"), "no credential after the move: " + row);
  });

  await step(page, "back to a direct connection, then the jump host can go", async () => {
    await page.getByRole("link", { name: "Devices" }).click();
    await page.getByRole("button", { name: "Edit " + dev }).click();
    await page.locator("#dev-jump-0").selectOption("");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator(".modal").waitFor({ state: "detached" });
    const d = await api(page, "GET", "/v1/devices/" + encodeURIComponent(dev));
    assert(!d.body.jump_host_ids, "no chain: " + JSON.stringify(d.body));
    await page.getByRole("link", { name: "Jump hosts" }).click();
    await page.locator("#jump-hosts tr[data-id='inner']").getByRole("button", { name: "Delete" }).click();
    await page.getByText("Jump host inner deleted.").waitFor();
    // The list is read again after the message shows: wait for the row to go.
    await page.locator("#jump-hosts tr[data-id='inner']").waitFor({ state: "detached" });
  });

  await step(page, "one chain on every selected device at once, then cleared", async () => {
    await page.getByRole("link", { name: "Devices" }).click();
    await page.locator("tr[data-id]").first().waitFor();
    const ids = await page.locator("tr[data-id]").evaluateAll((rows) => rows.map((r) => r.dataset.id));
    assert(ids.length === 2, "two devices listed: " + ids);
    await page.locator("#select-all").click();
    await page.locator("#set-jump-chain").click();
    await page.locator("#bulk-jump-0").selectOption("bastion");
    await shot(page, "r5-bulk-jump-chain");
    await page.locator("#jump-chain-apply").click();
    await page.getByText("Set the jump chain of 2 devices: bastion.").waitFor();
    for (const id of ids) {
      const d = await api(page, "GET", "/v1/devices/" + encodeURIComponent(id));
      assert(JSON.stringify(d.body.jump_host_ids) === JSON.stringify(["bastion"]), id + ": the chain: " + JSON.stringify(d.body));
    }
    await page.locator("#set-jump-chain").click();
    assert((await page.locator("#jump-chain-apply").innerText()).includes("Clear chains"), "no hop picked clears the chains");
    await page.locator("#jump-chain-apply").click();
    await page.getByText("Cleared the jump chain of 2 devices.").waitFor();
    for (const id of ids) {
      const d = await api(page, "GET", "/v1/devices/" + encodeURIComponent(id));
      assert(!d.body.jump_host_ids, id + ": no chain: " + JSON.stringify(d.body));
    }
  });
});
