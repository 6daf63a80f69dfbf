// Shared helpers of the end-to-end scripts: launch Debian's Chromium through playwright-core,
// sign in through the local gateway's dev sign-in, take named screenshots (each one also checked
// with axe-core), run named steps, and run a script's body with its browser (script).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

// axe-core's browser build (web/package.json pins it); it is evaluated in the page through the
// DevTools protocol, which the page's Content Security Policy does not govern, so the CSP stays
// as strict as in production.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
// pageProblems maps each page opened by newPage to the list its problems go to.
const pageProblems = new WeakMap();

export const BASE_URL = process.env.BASE_URL || "http://127.0.0.1:8080";
// API_URL is the gateway's origin when the UI is served from another one (as CloudFront and
// execute-api are in AWS); by default the UI's own.
export const API_URL = process.env.API_URL || BASE_URL;
export const ARTIFACTS = process.env.ARTIFACTS || new URL("./artifacts/", import.meta.url).pathname;
mkdirSync(ARTIFACTS, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** newPage opens a page that fails the run on any page error or failed request to the UI or the API. */
export async function newPage(browser, problems, allowOrigins = []) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 880 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  pageProblems.set(page, problems);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  page.on("requestfailed", (r) => {
    if ((r.url().startsWith(BASE_URL) || r.url().startsWith(API_URL)) && !/\/ws\?/.test(r.url())) problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`);
  });
  page.on("request", (r) => {
    const u = r.url();
    if (![BASE_URL, API_URL, API_URL.replace(/^http/, "ws")].some((o) => u.startsWith(o)) && !u.startsWith("data:") && !u.startsWith("blob:") &&
      !allowOrigins.some((o) => u.startsWith(o))) {
      problems.push(`request outside the app (the UI must work offline): ${u}`);
    }
  });
  return page;
}

export async function signIn(page, role = "admin", email = "e2e-admin@netauto.local") {
  await page.goto(BASE_URL + "/");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Role").selectOption(role);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#whoami").waitFor();
}

/**
 * signInWithToken signs in with a token made elsewhere (one the dev sign-in cannot make), as a
 * restored tab does: the token in the tab's sessionStorage, then a reload. It must have more than
 * 30 s left, or the UI drops it as about to expire.
 */
export async function signInWithToken(page, token) {
  await page.goto(BASE_URL + "/");
  await page.getByLabel("Email").waitFor();
  await page.evaluate((t) => sessionStorage.setItem("netauto.token", t), token);
  await page.reload();
  await page.locator("#whoami").waitFor();
}

/**
 * shot takes a named screenshot and checks the page as shown with axe-core: every violation (all
 * of axe's rules but the experimental ones, best practices included) becomes a problem of the
 * page, which fails the test at its end.
 */
export async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name + ".png"), fullPage: false });
  const found = await axeViolations(page);
  for (const v of found) console.log(`a11y ${name}: ${v}`);
  const problems = pageProblems.get(page);
  if (problems) problems.push(...found.map((v) => `accessibility (${name}): ${v}`));
  else if (found.length) throw new Error(`accessibility (${name}):\n` + found.join("\n"));
}

/** axeViolations runs axe-core on the whole page and describes each violation with its nodes. */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.length} node(s): ` +
      v.nodes.slice(0, 5).map((n) => n.target.join(" ")).join(" | ") + (v.nodes.length > 5 ? " …" : ""));
  });
}

let failures = 0;
/** step runs fn, logging its duration; a failure is recorded with a screenshot and rethrown. */
export async function step(page, name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name} (${Date.now() - t0} ms): ${e.stack || e}`);
    try {
      await page.screenshot({ path: join(ARTIFACTS, "FAILED-" + name.replace(/[^a-z0-9]+/gi, "-") + ".png") });
    } catch {}
    throw e;
  }
}

/** api calls the API from the page with its signed-in token; the answer's status and JSON body (null for a 204). */
export function api(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const cfg = await (await fetch("config.json")).json();
    const headers = { Authorization: "Bearer " + sessionStorage.getItem("netauto.token"), "Content-Type": "application/json" };
    const r = await fetch((cfg.api_url || "").replace(/\/$/, "") + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: r.status === 204 ? null : await r.json() };
  }, { method, path, body });
}

export function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}

/** tabTo presses Tab until the focused element matches selector (keyboard-only navigation). */
export async function tabTo(page, selector, max = 60) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((s) => !!document.activeElement && document.activeElement.matches(s), selector)) return i;
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${selector}`);
}

/**
 * script runs an end-to-end script's body with a browser and the list its pages' problems go to
 * (newPage(browser, problems)); a thrown error or any recorded problem exits the process with 1.
 */
export async function script(body) {
  const problems = [];
  const browser = await launch();
  let exitCode = 0;
  try {
    await body(browser, problems);
    assert(problems.length === 0, "browser problems:\n" + problems.join("\n"));
  } catch (e) {
    console.log(e.stack || String(e));
    if (problems.length) console.log("browser problems:\n" + problems.join("\n"));
    exitCode = 1;
  } finally {
    await browser.close();
  }
  process.exit(exitCode);
}
