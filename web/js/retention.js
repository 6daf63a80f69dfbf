// Retention: the current settings, the last purge report and (admins) "purge now".
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, can } from "./api.js";
import { fmtBytes, fmtTime } from "./ui.js";

function Report({ report }) {
  if (!report) return html`<p class="muted" id="retention-report">No purge has run yet.</p>`;
  const stats = [report.age, report.bytes].filter(Boolean);
  const ms = new Date(report.finished_at) - new Date(report.started_at);
  return html`<div id="retention-report">
    <p>${report.complete ? "Complete" : html`<strong class="warn">Incomplete</strong> — continues at the next purge`},
      triggered by <code>${report.trigger}</code>, ${fmtTime(report.started_at)} (${ms} ms).
      ${report.error && html`<span class="error">Error: ${report.error}</span>`}</p>
    ${stats.length > 0 && html`<table class="plain"><thead><tr><th scope="col">Pass</th><th scope="col">Runs deleted</th><th scope="col">Chunks deleted</th>
      <th scope="col">Freed</th><th scope="col">Skipped (still running)</th><th scope="col">Details</th><th scope="col">Time</th></tr></thead><tbody>
      ${stats.map((st) => html`<tr><th scope="row">${st.type === "age" ? "by age" : "by bytes per device"}</th>
        <td>${st.runs_deleted}</td><td>${st.chunks_deleted}</td><td>${fmtBytes(st.bytes_freed)}</td><td>${st.runs_skipped}</td>
        <td class="small">${st.type === "age" ? (st.cutoff ? `runs before ${fmtTime(st.cutoff)}` : "") :
          `${st.devices_checked ?? 0} devices checked, ${st.devices_over_cap ?? 0} over the cap, ${st.devices_still_over ?? 0} still over`}</td>
        <td>${st.duration_ms} ms</td></tr>`)}
    </tbody></table>`}
  </div>`;
}

export function RetentionPage({ flash }) {
  const [view, setView] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => { get("/v1/retention").then(setView, setError); }, []);

  async function purge() {
    setBusy(true);
    try {
      const report = await post("/v1/retention/purge");
      // The purge folded the byte totals too: read them again (the report alone if that fails).
      const fresh = await get("/v1/retention").catch(() => null);
      setView((v) => fresh || { ...v, last_report: report });
      const n = (report.age ? report.age.runs_deleted : 0) + (report.bytes ? report.bytes.runs_deleted : 0);
      flash({ kind: "ok", text: `Purge finished: ${n} run${n === 1 ? "" : "s"} deleted.` });
    } catch (e) {
      flash({ kind: "error", text: `Purge: ${e.text || e.message}` });
    } finally {
      setBusy(false);
    }
  }

  if (error) return html`<main id="main"><h1>Retention</h1><p class="error" role="alert">${error.text || error.message}</p></main>`;
  if (!view) return html`<main id="main"><h1>Retention</h1><p aria-busy="true">Loading…</p></main>`;
  const s = view.settings;
  return html`<main id="main" class="retention-page">
    <div class="page-head"><h1>Retention</h1>
      ${can("admin") && html`<div class="actions"><button class="primary" id="purge-now" onClick=${purge} disabled=${busy}>${busy ? "Purging…" : "Purge now"}</button></div>`}
    </div>
    <h2>Settings</h2>
    <table class="plain kv" id="retention-settings"><tbody>
      <tr><th scope="row">Keep runs for</th><td>${s.max_days ? `${s.max_days} days` : "no age limit"} <span class="muted small">NET_AUTO_RUN_MAX_DAYS</span></td></tr>
      <tr><th scope="row">Output per device</th><td>${s.max_bytes ? fmtBytes(s.max_bytes) : "no cap"} <span class="muted small">NET_AUTO_RUN_MAX_BYTES</span></td></tr>
      <tr><th scope="row">Schedule</th><td><code>${s.cron}</code>${s.schedule ? html` <span class="muted small">(${s.schedule})</span>` : ""}</td></tr>
    </tbody></table>
    ${view.charged_bytes != null && html`<h2>Output bytes</h2>
    <table class="plain kv" id="retention-bytes"><tbody>
      <tr><th scope="row">Charged to devices</th><td id="charged-bytes">${fmtBytes(view.charged_bytes)} <span class="muted small">the exact outputs of every device's runs, what the cap counts</span></td></tr>
      <tr><th scope="row">Stored</th><td id="stored-bytes">${fmtBytes(view.stored_bytes)} <span class="muted small">outputs that differ only in noise lines are stored once${view.charged_bytes > 0 ? ` (${(100 * view.stored_bytes / view.charged_bytes).toFixed(1)}% of charged)` : ""}</span></td></tr>
    </tbody></table>
    <p class="muted small" id="totals-as-of">${view.totals_as_of
      ? `As of ${fmtTime(view.totals_as_of)} (the last purge); runs since then are not in these totals yet.`
      : "Not counted yet: the first purge adds up every device's output."}</p>`}
    <h2>Last purge</h2>
    <${Report} report=${view.last_report} />
  </main>`;
}
