// The job page: live progress over the WebSocket API (JobFeed), counts per status, the per-device
// list (with whether each device's output changed since its previous run, and a "changed only"
// filter), cancel, and "group by identical output": devices whose outputs match after normalising
// whitespace (same output_digest) form one group, so the odd ones out are visible at once, each
// linked to its diff against the largest group. A job of several commands lists them, shows each
// device's commands at a glance, and its groups (by the whole output) have a tab per command.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, can, canOn, canSomewhere, request } from "./api.js";
import { useWhoami } from "./whoami.js";
import { JobFeed } from "./live.js";
import { commandTabs, commandText } from "./commands.js";
import { readOutput } from "./run.js";
import { diffHref } from "./diff.js";
import { StatusBadge, ChangedBadge, Link, Tabs, useVirtual, fmtDuration, fmtTime, fmtBytes, STATUSES, navigate } from "./ui.js";
import { RerunDialog } from "./saved.js";

const ROW = 34;
const JOB_STATUS_TEXT = { queued: "queued", running: "running", finishing: "finishing…", cancelling: "cancelling…", completed: "completed", cancelled: "cancelled", stopped: "stopped (max errors)", failed: "failed" };

export function JobPage({ jobId, flash }) {
  const [, setTick] = useState(0);
  const [error, setError] = useState(null);
  const [view, setView] = useState("devices");
  const [statusFilter, setStatusFilter] = useState("");
  const [changedOnly, setChangedOnly] = useState(false);
  const [cancelling, setCancelling] = useState(false);
  const [rerunning, setRerunning] = useState(false);
  const feedRef = useRef(null);
  const me = useWhoami();

  useEffect(() => {
    const feed = new JobFeed(jobId, () => setTick((n) => n + 1));
    feedRef.current = feed;
    window.netautoFeed = feed; // for the end-to-end tests (drop the socket, read state)
    feed.start().catch((e) => setError(e));
    return () => feed.close();
  }, [jobId]);

  const feed = feedRef.current;
  if (error) return html`<main id="main"><h1>Job ${jobId}</h1><p class="error" role="alert">${error.status === 404 ? "No such job." : error.text || error.message}</p></main>`;
  if (!feed || !feed.job) return html`<main id="main"><h1>Job ${jobId}</h1><p aria-busy="true">Loading…</p></main>`;

  const job = feed.job;
  const total = job.device_count;
  const done = feed.doneCount();
  const pct = total ? Math.round((done / total) * 100) : 0;
  const finished = feed.state === "done";
  // Cancel and re-run are the requester's, as an operator on every site of the job, or an admin's
  // everywhere (as the API rules).
  const mayAct = can("admin") || (canSomewhere("operator") && (job.sites || []).every((s) => canOn("operator", s)) && !!me && me.name === job.requested_by);
  const jobStatus = finished ? job.status : job.cancel_requested ? "cancelling" : total && done >= total ? "finishing" : done > 0 || feed.counts.running ? "running" : job.status;

  async function cancel() {
    if (!confirm(`Cancel job ${jobId}? Devices already running finish; the rest end cancelled.`)) return;
    setCancelling(true);
    try {
      const j = await post(`/v1/bulk/${encodeURIComponent(jobId)}/cancel`);
      feed.applyJob(j);
      setTick((n) => n + 1);
      flash({ kind: "ok", text: "Cancel requested: devices not yet started will be cancelled." });
    } catch (e) {
      flash({ kind: "error", text: `Cancel: ${e.text || e.message}` });
    } finally {
      setCancelling(false);
    }
  }

  const connection = {
    connecting: "connecting…", live: "live", reconnecting: "connection lost — reconnecting and catching up…",
    polling: "no WebSocket — refreshing every 2 s", expired: "session expired — no more live progress", done: "finished", closed: "",
  }[feed.state];

  return html`
    <main id="main" class="job-page">
      <div class="page-head">
        <div>
          <p class="crumbs"><${Link} to="?">Devices</${Link}> / job</p>
          <h1>Job <code>${jobId}</code></h1>
        </div>
        <div class="actions">
          ${mayAct && !finished && html`<button class="danger" id="cancel-job" onClick=${cancel}
            disabled=${cancelling || job.cancel_requested}>${job.cancel_requested ? "Cancel requested" : "Cancel job"}</button>`}
          ${mayAct && finished && html`<button id="rerun-job" onClick=${() => setRerunning(true)}>Re-run failed…</button>`}
        </div>
      </div>
      <dl class="summary">
        ${job.commands && (job.commands.length > 1 || job.commands.some((c) => c.prompts && c.prompts.length))
          ? html`<div><dt>Commands</dt><dd><ol class="job-commands" id="job-commands">${job.commands.map((c) => html`<li><code>${commandText(c)}</code>${
            c.prompts && c.prompts.length ? html` <span class="small muted">(${c.prompts.length} prompt answer${c.prompts.length === 1 ? "" : "s"})</span>` : ""}</li>`)}</ol></dd></div>`
          : html`<div><dt>Command</dt><dd><code>${job.command}</code></dd></div>`}
        <div><dt>Requested by</dt><dd>${job.requested_by}</dd></div>
        ${job.saved_job_id && html`<div><dt>Saved job</dt><dd><${Link} to="?page=saved" id="job-saved-link">${job.saved_job_id}</${Link}></dd></div>`}
        ${job.rerun_of && html`<div><dt>Re-run of</dt><dd><${Link} to=${"?job=" + encodeURIComponent(job.rerun_of)} id="job-rerun-of">${job.rerun_of}</${Link}></dd></div>`}
        ${job.reruns && job.reruns.length > 0 && html`<div><dt>Re-runs</dt><dd><ul class="inline-list" id="job-reruns">${job.reruns.map((id) => html`<li><${Link} to=${"?job=" + encodeURIComponent(id)}>${id}</${Link}></li>`)}</ul></dd></div>`}
        <div><dt>Started</dt><dd>${fmtTime(job.created_at)}</dd></div>
        ${job.finished_at && html`<div><dt>Finished</dt><dd>${fmtTime(job.finished_at)}</dd></div>`}
        <div><dt>Status</dt><dd><span class=${"job-status j-" + jobStatus} id="job-status">${JOB_STATUS_TEXT[jobStatus] || jobStatus}</span></dd></div>
        ${job.options && Object.keys(job.options).length > 0 && html`<div><dt>Options</dt><dd class="small">${Object.entries(job.options).map(([k, v]) => `${k}=${v}`).join(", ")}</dd></div>`}
      </dl>
      <section class="progress-block" aria-label="Progress">
        <div class="progress" role="progressbar" aria-label="Devices done" aria-valuemin="0" aria-valuemax=${total} aria-valuenow=${done}
             aria-valuetext=${`${done} of ${total} devices done`} id="job-progress" data-done=${done} data-total=${total}>
          <div class="bar" style=${{ width: pct + "%" }}></div>
        </div>
        <p class="progress-text" aria-live="polite" aria-atomic="true"><strong id="progress-text">${done} of ${total} devices done</strong>
          <span class="muted"> (${pct}%)</span> <span class=${"conn c-" + feed.state} id="connection-state">${connection}</span></p>
        ${feed.error && !finished && html`<p class="error" role="alert" id="feed-error">Live progress refused: ${feed.error}${
          feed.errorCode ? ` (${feed.errorCode})` : ""}.</p>`}
        <ul class="counts" aria-label="Devices per status">
          ${Object.keys(STATUSES).map((s) => html`<li>
            <button class=${"count-chip" + (statusFilter === s ? " active" : "")} aria-pressed=${statusFilter === s}
              disabled=${!feed.counts[s] && statusFilter !== s}
              onClick=${() => { setStatusFilter(statusFilter === s ? "" : s); setView("devices"); }} data-status=${s}>
              <${StatusBadge} status=${s} /> <span class="n" data-count=${s}>${feed.counts[s] || 0}</span></button></li>`)}
        </ul>
      </section>
      <${Tabs} label="View" selected=${view} onSelect=${setView} panelId="job-view"
        tabs=${[{ id: "devices", tabId: "tab-devices", label: "Devices" }, { id: "groups", tabId: "tab-groups", label: "Group by identical output" }]} />
      ${view === "devices" ? html`<${DeviceList} feed=${feed} statusFilter=${statusFilter} clearFilter=${() => setStatusFilter("")}
          changedOnly=${changedOnly} setChangedOnly=${setChangedOnly} />`
        : html`<${OutputGroups} feed=${feed} finished=${finished} />`}
      ${rerunning && html`<${RerunDialog} job=${job} counts=${feed.counts} onClose=${() => setRerunning(false)} flash=${flash}
        onStarted=${(id) => navigate("?job=" + encodeURIComponent(id))} />`}
    </main>`;
}

function DeviceList({ feed, statusFilter, clearFilter, changedOnly, setChangedOnly }) {
  const all = [...feed.devices.values()];
  const changed = all.filter((d) => d.changed === true).length;
  const rows = all.filter((d) => (!statusFilter || d.status === statusFilter) && (!changedOnly || d.changed === true));
  const seq = isSequence(feed);
  const cols = seq ? 7 : 6;
  const v = useVirtual(rows.length, ROW);
  return html`
    <section role="tabpanel" id="job-view" aria-labelledby="tab-devices" class="job-devices">
      <p class="list-filters"><label class="filter-check"><input type="checkbox" id="changed-only" checked=${changedOnly}
        onChange=${(e) => setChangedOnly(e.currentTarget.checked)} /> Changed only</label>
        ${" "}<span class="muted small" id="changed-count" data-changed=${changed}>${changed} device${changed === 1 ? "" : "s"} changed since their previous run (noise lines aside)</span></p>
      ${(statusFilter || changedOnly) && html`<p>Showing ${rows.length} ${statusFilter ? statusFilter.replace(/_/g, " ") + " " : ""}${changedOnly ? "changed " : ""}device${rows.length === 1 ? "" : "s"}.${" "}
        <button class="link" onClick=${() => { clearFilter(); setChangedOnly(false); }}>Show all</button></p>`}
      <div class="table-scroll short" ref=${v.ref} onScroll=${v.onScroll} tabindex="-1">
        <table class="plain job-table">
          <thead><tr><th scope="col">Device</th><th scope="col">Status</th><th scope="col">Changed</th><th scope="col">Duration</th><th scope="col">Reason</th>${seq && html`<th scope="col">Commands</th>`}<th scope="col">Output</th></tr></thead>
          <tbody>
            ${v.before > 0 && html`<tr class="spacer" aria-hidden="true"><td colspan=${cols} style=${{ height: v.before + "px" }}></td></tr>`}
            ${rows.slice(v.start, v.end).map((d) => html`<tr key=${d.device_id} data-device=${d.device_id} data-status=${d.status}>
              <td class="mono"><${Link} to=${"?device=" + encodeURIComponent(d.device_id)}>${d.device_id}</${Link}></td>
              <td><${StatusBadge} status=${d.status} reason=${d.reason} /></td>
              <td>${d.changed === true && d.run_id ? html`<${Link} to=${diffHref(d.run_id)}><${ChangedBadge} run=${d} /><span class="visually-hidden"> (diff of ${d.device_id})</span></${Link}>`
                : html`<${ChangedBadge} run=${d} />`}</td>
              <td>${fmtDuration(d.duration_ms)}</td>
              <td class="small">${d.reason && d.reason !== d.status ? d.reason.replace(/_/g, " ") : ""}</td>
              ${seq && html`<td><${CommandMarks} commands=${d.commands} /></td>`}
              <td>${d.run_id && d.status !== "queued" && d.status !== "cancelled"
                ? html`<${Link} to=${"?run=" + encodeURIComponent(d.run_id)}>${d.status === "running" ? "live output" : "output"}<span class="visually-hidden"> of ${d.device_id}</span></${Link}>` : ""}</td>
            </tr>`)}
            ${v.after > 0 && html`<tr class="spacer" aria-hidden="true"><td colspan=${cols} style=${{ height: v.after + "px" }}></td></tr>`}
          </tbody>
        </table>
      </div>
    </section>`;
}

/** isSequence reports whether the job runs several commands (from the job, or any device's run). */
function isSequence(feed) {
  if (feed.job.commands) return feed.job.commands.length > 1;
  for (const d of feed.devices.values()) if (d.commands && d.commands.length > 1) return true;
  return false;
}

/** CommandMarks shows a device's commands at a glance: a status glyph per command started. */
function CommandMarks({ commands }) {
  if (!commands || !commands.length) return "";
  const label = commands.map((c, i) => `${i + 1}. ${commandText(c)}: ${(c.status || "").replace(/_/g, " ")}`).join("; ");
  return html`<span class="command-marks" role="img" aria-label=${label} title=${label}>${commands.map((c) =>
    html`<span class=${"mark s-" + c.status}>${STATUSES[c.status] || "•"}</span>`)}</span>`;
}

/** groupDevices clusters devices by output_digest; the others by status. Largest groups first. */
export function groupDevices(devices) {
  const groups = new Map();
  for (const d of devices) {
    const byOutput = d.status === "succeeded" && d.output_digest;
    const key = byOutput ? "digest:" + d.output_digest : "status:" + d.status;
    if (!groups.has(key)) groups.set(key, { key, digest: byOutput ? d.output_digest : "", status: d.status, devices: [] });
    groups.get(key).devices.push(d);
  }
  return [...groups.values()].sort((a, b) =>
    (a.digest ? 0 : 1) - (b.digest ? 0 : 1) || b.devices.length - a.devices.length || (a.key < b.key ? -1 : 1));
}

const outputCache = new Map(); // digest -> Promise<{text, truncated}>

function representativeOutput(group) {
  if (!outputCache.has(group.digest)) {
    const runId = group.devices[0].run_id;
    outputCache.set(group.digest, request("GET", `/v1/runs/${encodeURIComponent(runId)}/output`, { raw: true }).then(async (r) => ({
      text: await r.text(), truncated: r.headers.get("X-Output-Truncated") === "true", runId,
    })).catch((e) => { outputCache.delete(group.digest); throw e; }));
  }
  return outputCache.get(group.digest);
}

function OutputGroups({ feed, finished }) {
  const groups = groupDevices([...feed.devices.values()]);
  const outputGroups = groups.filter((g) => g.digest);
  const letters = new Map(outputGroups.map((g, i) => [g.key, String.fromCharCode(65 + (i % 26)) + (i >= 26 ? Math.floor(i / 26) : "")]));
  const missingDigest = groups.some((g) => !g.digest && g.status === "succeeded");
  const sequence = isSequence(feed);
  return html`
    <section class="groups" role="tabpanel" id="job-view" aria-labelledby="tab-groups">
      <p class="muted" id="groups-summary">
        ${outputGroups.length === 0 ? "No output to compare yet." : outputGroups.length === 1
          ? `All ${outputGroups[0].devices.length} devices with output returned the same output.`
          : `${outputGroups.length} different outputs among ${outputGroups.reduce((n, g) => n + g.devices.length, 0)} devices that succeeded.`}${" "}
        ${!finished && " Still running: groups grow as devices finish."}
        ${missingDigest && "Some succeeded devices carry no output digest (older API) and are grouped by status. "}
        Whitespace differences are ignored.</p>
      ${groups.map((g) => html`<${Group} key=${g.key} group=${g} letter=${letters.get(g.key)} reference=${g !== outputGroups[0] ? outputGroups[0] : null} sequence=${sequence} />`)}
    </section>`;
}

const norm = (line) => line.replace(/\s+/g, " ").trim();

/** OutputLines shows an output; with a reference, lines the reference lacks are marked. */
function OutputLines({ text, refText, label }) {
  const shown = text.length > 20000 ? text.slice(0, 20000) + "\n…" : text;
  // Focusable and named, so that an output taller than its box scrolls from the keyboard too.
  if (refText == null) return html`<pre class="output group-output" role="region" tabindex="0" aria-label=${label}>${shown}</pre>`;
  const have = new Set(refText.split("\n").map(norm));
  const lines = shown.split("\n");
  const differ = lines.filter((l) => !have.has(norm(l))).length;
  return html`<p class="small diff-note">${differ} line${differ === 1 ? "" : "s"} not in Output A (marked).</p>
    <pre class="output group-output" role="region" tabindex="0" aria-label=${label}>${lines.map((l, i) => {
      const mark = !have.has(norm(l));
      return html`<span class=${mark ? "diff-line" : ""}>${mark ? html`<span class="visually-hidden">differs: </span>` : ""}${l}${i < lines.length - 1 ? "\n" : ""}</span>`;
    })}</pre>`;
}

function Group({ group, letter, reference, sequence }) {
  const [open, setOpen] = useState(!!group.digest);
  const [out, setOut] = useState(null);
  const [refOut, setRefOut] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    if (!group.digest || !open) return;
    representativeOutput(group).then(setOut, (e) => setErr(e.text || e.message));
    if (reference && reference.digest) representativeOutput(reference).then(setRefOut, () => {});
  }, [group.digest, open, reference && reference.digest]);
  const n = group.devices.length;
  const title = group.digest
    ? html`Output ${letter} <span class="muted small">· ${n} device${n === 1 ? "" : "s"}</span>`
    : html`<${StatusBadge} status=${group.status} /> <span class="muted small">· ${n} device${n === 1 ? "" : "s"} without comparable output</span>`;
  const reasons = !group.digest ? [...new Set(group.devices.map((d) => d.reason).filter(Boolean))] : [];
  return html`<article class="group" data-group=${group.digest ? "output" : "status"} data-size=${n}>
    <h2 class="group-title"><button class="group-toggle" aria-expanded=${open} onClick=${() => setOpen(!open)}>
      <span aria-hidden="true">${open ? "▾" : "▸"}</span> ${title}</button></h2>
    ${open && html`<div class="group-body">
      <p class="group-devices">${group.devices.slice(0, 200).map((d, i) => html`${i ? ", " : ""}<${Link}
        to=${"?run=" + encodeURIComponent(d.run_id || "")}>${d.device_id}</${Link}>`)}${n > 200 ? ` and ${n - 200} more` : ""}</p>
      ${reasons.length > 0 && html`<p class="small">Reasons: ${reasons.join(", ")}</p>`}
      ${group.digest && reference && reference.digest && html`<p class="small"><${Link} class="group-diff"
        to=${diffHref(group.devices[0].run_id, reference.devices[0].run_id)}>Diff of Output ${letter} against Output A</${Link}>
        <span class="muted"> (${group.devices[0].device_id} against ${reference.devices[0].device_id}, noise lines aside)</span></p>`}
      ${group.digest && html`<${GroupOutput} group=${group} letter=${letter} sequence=${sequence} whole=${err ? html`<p class="error">Could not load the output: ${err}</p>`
        : out ? html`<${OutputLines} text=${out.text} refText=${reference ? (refOut ? refOut.text : null) : null} label=${"Output " + letter} />
          ${out.truncated && html`<p class="warn">This output was truncated at the per-run cap.</p>`}`
        : html`<p aria-busy="true">Loading output…</p>`} />`}
    </div>`}
  </article>`;
}

/**
 * GroupOutput is a group's representative output: for a job of several commands, the whole output
 * (whole, compared with Output A) in one tab and each command's own output in the others.
 */
function GroupOutput({ group, letter, sequence, whole }) {
  const rep = group.devices[0];
  const [commands, setCommands] = useState(rep.commands || null);
  const [tab, setTab] = useState(-1);
  const [out, setOut] = useState(null);
  useEffect(() => {
    if (sequence && !commands && rep.run_id) get(`/v1/runs/${encodeURIComponent(rep.run_id)}`).then((r) => setCommands(r.commands || []), () => setCommands([]));
  }, [sequence, rep.run_id]);
  useEffect(() => {
    if (tab < 0) return;
    setOut(null);
    readOutput(rep.run_id, tab).then(setOut, (e) => setOut({ command: tab, error: e.text || e.message }));
  }, [tab, rep.run_id]);
  const base = `group-${letter}-tab`;
  const tabs = sequence ? commandTabs(commands, base) : [];
  if (!tabs.length) return whole;
  const panel = `group-${letter}-panel`;
  return html`<div class="group-output-tabs">
    <${Tabs} label=${`Output ${letter} per command`} tabs=${tabs} selected=${tab} onSelect=${setTab} panelId=${panel} className="command-tabs" />
    <div role="tabpanel" id=${panel} aria-labelledby=${tab >= 0 ? `${base}-${tab}` : `${base}-all`} data-command=${tab}>
      ${tab < 0 ? whole : !out || out.command !== tab ? html`<p aria-busy="true">Loading output…</p>`
        : out.error ? html`<p class="error">Could not load the output: ${out.error}</p>`
        : html`<p class="small muted">The output of command ${tab + 1} on ${rep.device_id} (${fmtBytes(out.bytes)}).</p>
          <pre class="output group-output" role="region" tabindex="0" aria-label=${`Output ${letter}, command ${tab + 1}`}>${out.text || "(no output)"}</pre>`}
    </div>
  </div>`;
}
