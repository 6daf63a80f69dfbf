// NetAuto's UI: one page, routed by the query string (?job=, ?run=, ?diff=, ?device=[&command=], ?page=saved, ?page=retention),
// so any static host (S3 + CloudFront, the local gateway) serves it without rewrite rules.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { loadConfig, restoreToken, identity, onAuthChange, can, collect } from "./api.js";
import { SignIn, finishCognito, signOut } from "./auth.js";
import { Link, navigate, StatusBadge, fmtAgo } from "./ui.js";
import { DevicesPage } from "./devices.js";
import { JobPage } from "./job.js";
import { RunPage, DevicePage } from "./run.js";
import { DiffPage } from "./diff.js";
import { HistoryPage } from "./history.js";
import { RetentionPage } from "./retention.js";
import { PolicyPage } from "./policy.js";
import { ProfilesPage } from "./credprofiles.js";
import { JumpHostsPage } from "./jumphosts.js";
import { WebhooksPage } from "./webhooks.js";
import { AuditPage } from "./audit.js";
import { PlatformsPage } from "./platforms.js";
import { SavedJobsPage } from "./saved.js";
import { Me } from "./whoami.js";

function useRoute() {
  const [search, setSearch] = useState(location.search);
  useEffect(() => {
    const on = () => setSearch(location.search);
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  return new URLSearchParams(search);
}

function Flash({ flash, onDismiss }) {
  const ref = useRef(null);
  useEffect(() => {
    if (flash && flash.focus && ref.current) {
      const link = ref.current.querySelector("a");
      (link || ref.current).focus();
    }
  }, [flash]);
  if (!flash) return null;
  return html`<div class=${"flash " + flash.kind} role=${flash.kind === "error" ? "alert" : "status"} ref=${ref} tabindex="-1" id="flash">
    <span>${flash.content || flash.text}</span>
    <button class="icon" aria-label="Dismiss message" onClick=${onDismiss}>×</button></div>`;
}

// RECENT is how many jobs Recent jobs lists. The API drops the jobs out of the caller's scope from
// a page after reading it, so a page may hold fewer, or none, and still have a next: pages are
// followed until RECENT jobs came, at most RECENT_PAGES of them.
const RECENT = 15;
const RECENT_PAGES = 10;

// RecentJobs lists the newest jobs (GET /v1/bulk), whoever started them, read when opened.
function RecentJobs() {
  const [state, setState] = useState({ jobs: null, error: "" });
  async function load(ev) {
    if (!ev.currentTarget.open) return;
    try {
      const { items, next } = await collect(`/v1/bulk?limit=${RECENT}`, RECENT, RECENT_PAGES);
      setState({ jobs: items.slice(0, RECENT), more: !!next && !items.length, error: "" });
    } catch (e) {
      setState({ jobs: null, error: e.message });
    }
  }
  return html`<details class="recent" onToggle=${load}><summary>Recent jobs</summary><ul>
    ${state.error && html`<li class="error">${state.error}</li>`}
    ${!state.error && !state.jobs && html`<li class="muted small">Loading…</li>`}
    ${state.jobs && !state.jobs.length && html`<li class="muted small">${state.more ? "None of the newest jobs is on your sites." : "No jobs yet."}</li>`}
    ${(state.jobs || []).map((j) => html`<li><${Link} to=${"?job=" + encodeURIComponent(j.job_id)}><code>${j.command}</code></${Link}>
      <span class="muted small"> ${j.device_count} devices · ${j.requested_by} · ${fmtAgo(j.created_at)}</span>
      <span class="small"> <${StatusBadge} status=${j.status} /></span></li>`)}</ul></details>`;
}

function App({ initialMessage }) {
  const [me, setMe] = useState(identity());
  const [flash, setFlash] = useState(null);
  const [message, setMessage] = useState(initialMessage || "");
  const route = useRoute();
  useEffect(() => onAuthChange((id) => {
    setMe(id);
    if (!id) setMessage("You are signed out (or your session expired). Sign in again.");
  }), []);
  // A flash survives one navigation (the job link in it), then goes.
  const flashRoute = useRef(location.search);
  useEffect(() => {
    if (location.search !== flashRoute.current && flash && !flash.sticky) {
      flashRoute.current = location.search;
      setFlash((f) => (f && f.shown ? null : f && { ...f, shown: true }));
    }
  }, [route.toString()]);
  function showFlash(f) {
    flashRoute.current = location.search;
    setFlash(f);
  }

  let page, title;
  if (route.get("job")) {
    page = html`<${JobPage} jobId=${route.get("job")} flash=${showFlash} key=${route.get("job")} />`;
    title = "Job";
  } else if (route.get("run")) {
    page = html`<${RunPage} runId=${route.get("run")} flash=${showFlash} key=${route.get("run")} />`;
    title = "Run output";
  } else if (route.get("diff")) {
    page = html`<${DiffPage} runId=${route.get("diff")} against=${route.get("against") || ""} view=${route.get("view") || ""}
      raw=${route.get("raw") === "1"} flash=${showFlash} key=${route.get("diff") + " " + (route.get("against") || "")} />`;
    title = "Diff";
  } else if (route.get("device") && route.get("command")) {
    page = html`<${HistoryPage} deviceId=${route.get("device")} command=${route.get("command")} key=${route.get("device") + "\n" + route.get("command")} />`;
    title = `History · ${route.get("device")}`;
  } else if (route.get("device")) {
    page = html`<${DevicePage} deviceId=${route.get("device")} flash=${showFlash} key=${route.get("device")} />`;
    title = route.get("device");
  } else if (route.get("page") === "audit") {
    page = html`<${AuditPage} />`;
    title = "Audit trail";
  } else if (route.get("page") === "saved") {
    page = html`<${SavedJobsPage} flash=${showFlash} />`;
    title = "Saved jobs";
  } else if (route.get("page") === "platforms") {
    page = html`<${PlatformsPage} flash=${showFlash} />`;
    title = "Platforms";
  } else if (route.get("page") === "retention") {
    page = html`<${RetentionPage} flash=${showFlash} />`;
    title = "Retention";
  } else if (route.get("page") === "policy") {
    page = html`<${PolicyPage} flash=${showFlash} />`;
    title = "Command policy";
  } else if (route.get("page") === "jump-hosts") {
    page = html`<${JumpHostsPage} flash=${showFlash} />`;
    title = "Jump hosts";
  } else if (route.get("page") === "webhooks") {
    page = html`<${WebhooksPage} flash=${showFlash} />`;
    title = "Webhooks";
  } else if (route.get("page") === "credentials") {
    page = html`<${ProfilesPage} flash=${showFlash} />`;
    title = "Credential profiles";
  } else {
    page = html`<${DevicesPage} flash=${showFlash} />`;
    title = "Devices";
  }
  useEffect(() => { document.title = `${me ? title : "Sign in"} · NetAuto`; }, [title, !!me]);
  if (!me) return html`<${SignIn} message=${message} />`;
  const here = route.get("page") ? route.get("page") : [...route.keys()].length ? "" : "devices";

  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <${Link} to="?" class="brand">NetAuto</${Link}>
      <nav aria-label="Main">
        <${Link} to="?" aria-current=${here === "devices" ? "page" : undefined}>Devices</${Link}>
        <${Link} to="?page=saved" aria-current=${here === "saved" ? "page" : undefined}>Saved jobs</${Link}>
        <${Link} to="?page=platforms" aria-current=${here === "platforms" ? "page" : undefined}>Platforms</${Link}>
        ${can("admin") && html`<${Link} to="?page=retention" aria-current=${here === "retention" ? "page" : undefined}>Retention</${Link}>`}
        ${can("admin") && html`<${Link} to="?page=policy" aria-current=${here === "policy" ? "page" : undefined}>Policy</${Link}>`}
        ${can("admin") && html`<${Link} to="?page=credentials" aria-current=${here === "credentials" ? "page" : undefined}>Credentials</${Link}>`}
        ${can("admin") && html`<${Link} to="?page=jump-hosts" aria-current=${here === "jump-hosts" ? "page" : undefined}>Jump hosts</${Link}>`}
        ${can("admin") && html`<${Link} to="?page=webhooks" aria-current=${here === "webhooks" ? "page" : undefined}>Webhooks</${Link}>`}
        ${can("admin") && html`<${Link} to="?page=audit" aria-current=${here === "audit" ? "page" : undefined}>Audit</${Link}>`}
      </nav>
      <${RecentJobs} />
      <div class="me"><${Me} />
        <button class="small" onClick=${signOut}>Sign out</button></div>
    </header>
    <${Flash} flash=${flash} onDismiss=${() => setFlash(null)} />
    ${page}`;
}

async function boot() {
  const root = document.getElementById("app");
  try {
    await loadConfig();
  } catch (e) {
    root.textContent = "NetAuto cannot start: " + e.message;
    return;
  }
  restoreToken();
  let message = "";
  try {
    const back = await finishCognito();
    if (back !== null) history.replaceState(null, "", location.pathname + back);
  } catch (e) {
    message = e.message;
    history.replaceState(null, "", location.pathname);
  }
  root.textContent = "";
  render(html`<${App} initialMessage=${message} />`, root);
  window.netautoNavigate = navigate;
}

boot();
