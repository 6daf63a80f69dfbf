// A run's whole output (live while it runs), with copy and download, and a device's run history.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, request } from "./api.js";
import { HostKeyPanel } from "./hostkey.js";
import { StatusBadge, Link, fmtTime, fmtDuration, fmtBytes } from "./ui.js";

export function RunPage({ runId, flash }) {
  const [run, setRun] = useState(null);
  const [out, setOut] = useState(null);
  const [history, setHistory] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    let live = true;
    let timer = 0;
    async function load() {
      try {
        const r = await get(`/v1/runs/${encodeURIComponent(runId)}`);
        const resp = await request("GET", `/v1/runs/${encodeURIComponent(runId)}/output`, { raw: true });
        const text = await resp.text();
        if (!live) return;
        setRun(r);
        setOut({ text, truncated: resp.headers.get("X-Output-Truncated") === "true", bytes: Number(resp.headers.get("X-Output-Bytes") || text.length) });
        if (r.status === "running" || r.status === "queued") timer = setTimeout(load, 1000);
        else get(`/v1/devices/${encodeURIComponent(r.device_id)}/runs?limit=20`).then((h) => live && setHistory(h.items), () => {});
      } catch (e) {
        // A run reads (queued, or as its job has it) from the moment its id is handed out: a 404
        // means there is no such run.
        if (live) setError(e);
      }
    }
    setRun(null);
    setOut(null);
    setHistory(null);
    load();
    return () => { live = false; clearTimeout(timer); };
  }, [runId]);

  if (error) return html`<main id="main"><h1>Run</h1><p class="error" role="alert">${error.status === 404 ? "No such run (it may have been purged)." : error.text || error.message}</p></main>`;
  if (!run) return html`<main id="main"><h1>Run <code>${runId}</code></h1><p aria-busy="true">Loading…</p></main>`;

  async function copy() {
    try {
      await navigator.clipboard.writeText(out.text);
      flash({ kind: "ok", text: "Output copied to the clipboard." });
    } catch {
      flash({ kind: "error", text: "The browser refused the clipboard; use Download instead." });
    }
  }
  function download() {
    const url = URL.createObjectURL(new Blob([out.text], { type: "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${run.id}.txt`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  const running = run.status === "running" || run.status === "queued";
  return html`
    <main id="main" class="run-page">
      <p class="crumbs"><${Link} to="?">Devices</${Link}> / <${Link} to=${"?device=" + encodeURIComponent(run.device_id)}>${run.device_id}</${Link}>
        ${run.job_id && html` / <${Link} to=${"?job=" + encodeURIComponent(run.job_id)}>job ${run.job_id}</${Link}>`}</p>
      <h1>Output of <code>${run.command}</code> on ${run.device_id}</h1>
      <dl class="summary">
        <div><dt>Status</dt><dd><${StatusBadge} status=${run.status} reason=${run.reason} />${run.reason ? html` <span class="small">${run.reason}</span>` : ""}</dd></div>
        ${run.exit_status != null && html`<div><dt>Exit status</dt><dd>${run.exit_status}</dd></div>`}
        <div><dt>Requested by</dt><dd>${run.requested_by}</dd></div>
        <div><dt>Started</dt><dd>${fmtTime(run.started_at || run.created_at)}</dd></div>
        ${run.timings && run.timings.total_ms ? html`<div><dt>Duration</dt><dd>${fmtDuration(run.timings.total_ms)}</dd></div>` : ""}
        <div><dt>Size</dt><dd id="output-bytes">${fmtBytes(out.bytes)}</dd></div>
        <div><dt>Truncated</dt><dd id="output-truncated" class=${out.truncated ? "warn" : ""}>${out.truncated ? "yes — cut at the per-run cap" : "no"}</dd></div>
      </dl>
      ${run.message && html`<p class="notice">${run.message}</p>`}
      ${run.status === "host_key_mismatch" && html`<p class="notice" id="run-host-key">The device offered a host key other than the pinned one.
        <${Link} to=${"?device=" + encodeURIComponent(run.device_id)}>See ${run.device_id}'s host key</${Link}> to compare and, as an admin, accept it.</p>`}
      <div class="output-bar">
        <span aria-live="polite">${running ? html`<span class="conn c-live">live — refreshing every second</span>` : ""}</span>
        <button onClick=${copy} id="copy-output">Copy</button>
        <button onClick=${download} id="download-output">Download</button>
      </div>
      <pre class="output" id="run-output" role="region" tabindex="0" aria-label="Output">${out.text || (running ? "" : "(no output)")}</pre>
      ${history && html`<section aria-labelledby="hist-title">
        <h2 id="hist-title">Recent runs on ${run.device_id}</h2>
        <${RunTable} runs=${history} current=${run.id} />
        <p><${Link} to=${"?device=" + encodeURIComponent(run.device_id)}>All runs of ${run.device_id}</${Link}></p>
      </section>`}
    </main>`;
}

function RunTable({ runs, current }) {
  if (!runs.length) return html`<p class="muted">No runs yet.</p>`;
  return html`<table class="plain"><thead><tr><th scope="col">When</th><th scope="col">Command</th><th scope="col">Status</th>
    <th scope="col">Duration</th><th scope="col">Size</th><th scope="col">By</th></tr></thead><tbody>
    ${runs.map((r) => html`<tr class=${r.id === current ? "current" : ""}>
      <td><${Link} to=${"?run=" + encodeURIComponent(r.id)} aria-current=${r.id === current ? "page" : undefined}>${fmtTime(r.created_at)}</${Link}></td>
      <td><code>${r.command}</code></td><td><${StatusBadge} status=${r.status} reason=${r.reason} /></td>
      <td>${r.timings && r.timings.total_ms ? fmtDuration(r.timings.total_ms) : ""}</td><td>${fmtBytes(r.bytes)}</td><td>${r.requested_by}</td></tr>`)}
  </tbody></table>`;
}

/** DevicePage shows one device and its run history, newest first, paged. */
export function DevicePage({ deviceId }) {
  const [device, setDevice] = useState(null);
  const [runs, setRuns] = useState([]);
  const [next, setNext] = useState("");
  const [error, setError] = useState(null);
  async function more(cursor) {
    const q = new URLSearchParams({ limit: "50" });
    if (cursor) q.set("cursor", cursor);
    const page = await get(`/v1/devices/${encodeURIComponent(deviceId)}/runs?${q}`);
    setRuns((r) => (cursor ? [...r, ...page.items] : page.items));
    setNext(page.next || "");
  }
  useEffect(() => {
    get(`/v1/devices/${encodeURIComponent(deviceId)}`).then(setDevice, setError);
    more("").catch(setError);
  }, [deviceId]);
  if (error) return html`<main id="main"><h1>${deviceId}</h1><p class="error" role="alert">${error.status === 404 ? "No such device." : error.text || error.message}</p></main>`;
  return html`<main id="main">
    <p class="crumbs"><${Link} to="?">Devices</${Link}> / ${deviceId}</p>
    <h1>${device ? device.name : deviceId} <span class="muted small mono">${deviceId}</span></h1>
    ${device && html`<dl class="summary">
      <div><dt>Host</dt><dd class="mono">${device.host}:${device.port}</dd></div>
      <div><dt>Platform</dt><dd>${device.platform}</dd></div>
      <div><dt>Site</dt><dd>${device.site || "—"}</dd></div>
      <div><dt>User</dt><dd>${device.username} (${device.auth_method}${device.has_credential ? "" : ", no credential of its own"})</dd></div>
      <div><dt>Tags</dt><dd>${Object.entries(device.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"}</dd></div>
    </dl>`}
    ${device && html`<${HostKeyPanel} device=${device} onChange=${setDevice} />`}
    <h2>Runs</h2>
    <${RunTable} runs=${runs} />
    ${next && html`<button onClick=${() => more(next)}>Load more</button>`}
  </main>`;
}
