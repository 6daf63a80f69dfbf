// A run's output (live while it runs), with copy and download, and a device's run history. A run
// of several commands gets a tab per command (its status, exit status and bytes; the output of
// that command alone) beside the whole output; a run of one command shows its output as it is.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, request, canOn } from "./api.js";
import { HostKeyPanel } from "./hostkey.js";
import { RunModal } from "./bulk.js";
import { commandTabs, commandText } from "./commands.js";
import { diffHref } from "./diff.js";
import { CommandHistoryForm } from "./history.js";
import { StatusBadge, ChangedBadge, Link, Tabs, fmtTime, fmtDuration, fmtBytes, saveFile } from "./ui.js";

/** readOutput reads a run's output, or with command >= 0 that command's alone. */
export async function readOutput(runId, command = -1) {
  const q = command >= 0 ? `?command=${command}` : "";
  const resp = await request("GET", `/v1/runs/${encodeURIComponent(runId)}/output${q}`, { raw: true });
  const text = await resp.text();
  return { command, text, truncated: resp.headers.get("X-Output-Truncated") === "true", bytes: Number(resp.headers.get("X-Output-Bytes") || text.length) };
}

export function RunPage({ runId, flash }) {
  const [run, setRun] = useState(null);
  const [tab, setTab] = useState(-1); // -1: the whole output; N: command N's
  const [out, setOut] = useState(null);
  const [whole, setWhole] = useState(null); // the whole output's size and truncated flag
  const [history, setHistory] = useState(null);
  const [error, setError] = useState(null);
  const histLoaded = useRef(false);

  useEffect(() => {
    let live = true;
    let timer = 0;
    async function load() {
      let r;
      try {
        r = await get(`/v1/runs/${encodeURIComponent(runId)}`);
      } catch (e) {
        // A run reads (queued, or as its job has it) from the moment its id is handed out: a 404
        // means there is no such run.
        if (live) setError(e);
        return;
      }
      let o;
      try {
        o = await readOutput(runId, tab);
      } catch (e) {
        o = { command: tab, error: e.text || e.message, text: "" };
      }
      if (!live) return;
      setRun(r);
      setOut(o);
      if (tab < 0 && !o.error) setWhole(o);
      if (r.status === "running" || r.status === "queued") timer = setTimeout(load, 1000);
      else if (!histLoaded.current) {
        histLoaded.current = true;
        get(`/v1/devices/${encodeURIComponent(r.device_id)}/runs?limit=20`).then((h) => live && setHistory(h.items), () => {});
      }
    }
    load();
    return () => { live = false; clearTimeout(timer); };
  }, [runId, tab]);

  if (error) return html`<main id="main"><h1>Run</h1><p class="error" role="alert">${error.status === 404 ? "No such run (it may have been purged)." : error.text || error.message}</p></main>`;
  if (!run || !out) return html`<main id="main"><h1>Run <code>${runId}</code></h1><p aria-busy="true">Loading…</p></main>`;

  async function copy() {
    try {
      await navigator.clipboard.writeText(out.text);
      flash({ kind: "ok", text: "Output copied to the clipboard." });
    } catch {
      flash({ kind: "error", text: "The browser refused the clipboard; use Download instead." });
    }
  }
  function download() {
    saveFile(out.command >= 0 ? `${run.id}.command-${out.command + 1}.txt` : `${run.id}.txt`, out.text);
  }

  const running = run.status === "running" || run.status === "queued";
  const tabs = commandTabs(run.commands, "output-tab");
  const loading = out.command !== tab;
  const cmd = tab >= 0 && run.commands ? run.commands[tab] : null;
  const pre = html`<pre class="output" id="run-output" role="region" tabindex="0" aria-label=${cmd ? `Output of command ${tab + 1}` : "Output"}
    aria-busy=${loading ? "true" : "false"}>${loading ? "" : out.text || (running ? "" : "(no output)")}</pre>`;
  const size = whole ? whole.bytes : run.bytes;
  return html`
    <main id="main" class="run-page">
      <p class="crumbs"><${Link} to="?">Devices</${Link}> / <${Link} to=${"?device=" + encodeURIComponent(run.device_id)}>${run.device_id}</${Link}>
        ${run.job_id && html` / <${Link} to=${"?job=" + encodeURIComponent(run.job_id)}>job ${run.job_id}</${Link}>`}</p>
      <h1>Output of <code>${run.command}</code> on ${run.device_id}</h1>
      <dl class="summary">
        <div><dt>Status</dt><dd><${StatusBadge} status=${run.status} reason=${run.reason} />${run.reason ? html` <span class="small">${run.reason}</span>` : ""}</dd></div>
        ${run.exit_status != null && html`<div><dt>Exit status</dt><dd>${run.exit_status}</dd></div>`}
        ${tabs.length > 0 && html`<div><dt>Commands run</dt><dd id="run-command-count">${run.commands.length}</dd></div>`}
        <div><dt>Requested by</dt><dd>${run.requested_by}</dd></div>
        <div><dt>Started</dt><dd>${fmtTime(run.started_at || run.created_at)}</dd></div>
        ${run.timings && run.timings.total_ms ? html`<div><dt>Duration</dt><dd>${fmtDuration(run.timings.total_ms)}</dd></div>` : ""}
        <div><dt>Size</dt><dd id="output-bytes">${fmtBytes(size)}</dd></div>
        <div><dt>Truncated</dt><dd id="output-truncated" class=${out.truncated ? "warn" : ""}>${out.truncated ? "yes — cut at the per-run cap" : "no"}</dd></div>
        ${!running && run.status === "succeeded" && html`<div><dt>Since the previous run</dt><dd id="run-changed"><${ChangedBadge} run=${run} />
          ${run.previous_run_id && html` <${Link} to=${diffHref(run.id, run.previous_run_id)} id="run-diff-previous">diff with the previous run</${Link}>`}</dd></div>`}
        ${run.content_sha256 && html`<div><dt>SHA-256</dt><dd class="mono small" id="run-sha256">${run.content_sha256}</dd></div>`}
      </dl>
      ${run.message && html`<p class="notice">${run.message}</p>`}
      ${run.status === "host_key_mismatch" && html`<p class="notice" id="run-host-key">The device offered a host key other than the pinned one.
        <${Link} to=${"?device=" + encodeURIComponent(run.device_id)}>See ${run.device_id}'s host key</${Link}> to compare and, as an admin, accept it.</p>`}
      ${tabs.length > 0 && html`<${Tabs} label="Output per command" tabs=${tabs} selected=${tab} onSelect=${setTab} panelId="output-panel" className="command-tabs" />`}
      <div id="output-panel" role=${tabs.length ? "tabpanel" : undefined}
        aria-labelledby=${tabs.length ? (tab >= 0 ? `output-tab-${tab}` : "output-tab-all") : undefined}>
        ${cmd && html`<p class="command-head" id="command-summary">Command ${tab + 1} of ${run.commands.length}: <code>${commandText(cmd)}</code>${" "}
          <${StatusBadge} status=${cmd.status} reason=${cmd.reason} />${cmd.reason && cmd.reason !== cmd.status ? html` <span class="small">${cmd.reason}</span>` : ""}
          ${cmd.exit_status != null ? ` · exit status ${cmd.exit_status}` : ""} · ${fmtBytes(cmd.bytes || 0)}</p>`}
        <div class="output-bar">
          <span aria-live="polite">${running ? html`<span class="conn c-live">live — refreshing every second</span>` : ""}</span>
          <button onClick=${copy} id="copy-output" disabled=${loading}>Copy</button>
          <button onClick=${download} id="download-output" disabled=${loading}>Download</button>
        </div>
        ${out.error ? html`<p class="error" role="alert" id="output-error">Could not load the output: ${out.error}</p>` : pre}
      </div>
      ${history && html`<section aria-labelledby="hist-title">
        <h2 id="hist-title">Recent runs on ${run.device_id}</h2>
        <${RunTable} runs=${history} current=${run.id} />
        <p><${Link} to=${"?device=" + encodeURIComponent(run.device_id)}>All runs of ${run.device_id}</${Link}> ·
          <${Link} to=${`?device=${encodeURIComponent(run.device_id)}&command=${encodeURIComponent(run.command)}`} id="run-command-history">History of <code>${run.command}</code> on ${run.device_id}</${Link}></p>
      </section>`}
    </main>`;
}

function RunTable({ runs, current }) {
  if (!runs.length) return html`<p class="muted">No runs yet.</p>`;
  return html`<table class="plain"><thead><tr><th scope="col">When</th><th scope="col">Command</th><th scope="col">Status</th>
    <th scope="col">Changed</th><th scope="col">Duration</th><th scope="col">Size</th><th scope="col">By</th></tr></thead><tbody>
    ${runs.map((r) => html`<tr class=${r.id === current ? "current" : ""} data-run=${r.id}>
      <td><${Link} to=${"?run=" + encodeURIComponent(r.id)} aria-current=${r.id === current ? "page" : undefined}>${fmtTime(r.created_at)}</${Link}></td>
      <td><${Link} to=${`?device=${encodeURIComponent(r.device_id)}&command=${encodeURIComponent(r.command)}`}
        title="This command's history on this device"><code>${r.command}</code></${Link}></td><td><${StatusBadge} status=${r.status} reason=${r.reason} /></td>
      <td>${r.changed === true && r.previous_run_id ? html`<${Link} to=${diffHref(r.id, r.previous_run_id)}><${ChangedBadge} run=${r} /><span class="visually-hidden"> (diff)</span></${Link}>`
        : html`<${ChangedBadge} run=${r} />`}</td>
      <td>${r.timings && r.timings.total_ms ? fmtDuration(r.timings.total_ms) : ""}</td><td>${fmtBytes(r.bytes)}</td><td>${r.requested_by}</td></tr>`)}
  </tbody></table>`;
}

/** DevicePage shows one device and its run history, newest first, paged. */
export function DevicePage({ deviceId, flash }) {
  const [device, setDevice] = useState(null);
  const [running, setRunning] = useState(false);
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
    <div class="page-head">
      <h1>${device ? device.name : deviceId} <span class="muted small mono">${deviceId}</span></h1>
      ${device && canOn("operator", device.site) && html`<div class="actions">
        <button class="primary" id="run-device" onClick=${() => setRunning(true)}>Run commands…</button></div>`}
    </div>
    ${running && html`<${RunModal} deviceId=${deviceId} onClose=${() => setRunning(false)} flash=${flash} />`}
    ${device && html`<dl class="summary">
      <div><dt>Host</dt><dd class="mono">${device.host}:${device.port}</dd></div>
      <div><dt>Platform</dt><dd>${device.platform}</dd></div>
      <div><dt>Site</dt><dd>${device.site || "—"}</dd></div>
      <div><dt>User</dt><dd>${device.username} (${device.auth_method}${device.has_credential ? "" : ", no credential of its own"})</dd></div>
      <div><dt>Tags</dt><dd>${Object.entries(device.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"}</dd></div>
    </dl>`}
    ${device && html`<${HostKeyPanel} device=${device} onChange=${setDevice} />`}
    <h2 id="config-history-title">Config history</h2>
    <p class="hint">Every run of one command on this device, newest first, with what changed and any two runs compared.</p>
    <${CommandHistoryForm} deviceId=${deviceId} commands=${[...new Set(runs.map((r) => r.command))]} />
    <h2>Runs</h2>
    <${RunTable} runs=${runs} />
    ${next && html`<button onClick=${() => more(next)}>Load more</button>`}
  </main>`;
}
