// The diff page: two runs' outputs compared by the API (GET /v1/runs/{id}/diff?format=json, noise
// lines of the platform's filters left out unless raw), shown side by side or unified, with the
// hunks as the API sends them. The UI lays them out; it never computes a diff itself.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, request } from "./api.js";
import { Link, navigate, fmtTime, StatusBadge, saveFile } from "./ui.js";

// MAX_ROWS bounds what is put in the DOM; the whole diff stays downloadable.
const MAX_ROWS = 5000;

/** diffHref is the diff page's URL for a run against another (the API's default when empty). */
export function diffHref(runId, against, extra = {}) {
  const q = new URLSearchParams({ diff: runId });
  if (against) q.set("against", against);
  for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
  return "?" + q.toString();
}

/** unifiedRows numbers each hunk line: {hunk} headers, then {op, oldNo, newNo, text}. */
export function unifiedRows(hunks) {
  const rows = [];
  for (const h of hunks) {
    rows.push({ hunk: h });
    let o = h.old_start, n = h.new_start;
    for (const l of h.lines) {
      if (l.op === "context") rows.push({ op: l.op, oldNo: o++, newNo: n++, text: l.text });
      else if (l.op === "delete") rows.push({ op: l.op, oldNo: o++, newNo: null, text: l.text });
      else rows.push({ op: l.op, oldNo: null, newNo: n++, text: l.text });
    }
  }
  return rows;
}

/**
 * splitRows lays hunks out side by side: context on both sides; within a run of changes, the
 * deleted lines on the left face the added lines on the right, row by row, the longer side
 * continuing against blanks. Rows: {hunk} or {left, right}, each side {op, no, text} or null.
 */
export function splitRows(hunks) {
  const rows = [];
  for (const h of hunks) {
    rows.push({ hunk: h });
    let o = h.old_start, n = h.new_start;
    const lines = h.lines;
    for (let i = 0; i < lines.length;) {
      if (lines[i].op === "context") {
        const t = lines[i++].text;
        rows.push({ left: { op: "context", no: o++, text: t }, right: { op: "context", no: n++, text: t } });
        continue;
      }
      const dels = [], adds = [];
      for (; i < lines.length && lines[i].op !== "context"; i++) {
        if (lines[i].op === "delete") dels.push({ op: "delete", no: o++, text: lines[i].text });
        else adds.push({ op: "add", no: n++, text: lines[i].text });
      }
      for (let k = 0; k < Math.max(dels.length, adds.length); k++) rows.push({ left: dels[k] || null, right: adds[k] || null });
    }
  }
  return rows;
}

const OP_WORD = { add: "added", delete: "deleted" };
const OP_MARK = { add: "+", delete: "−", context: " " };

function hunkHeader(h) {
  return `@@ −${h.old_start},${h.old_lines} +${h.new_start},${h.new_lines} @@`;
}

/** Text is one side's line: a glyph and a hidden word for screen readers, never colour alone. */
function Text({ op, text }) {
  return html`<span class="mark" aria-hidden="true">${OP_MARK[op]}</span>${OP_WORD[op] ? html`<span class="visually-hidden">${OP_WORD[op]}: </span>` : ""}${text}`;
}

function UnifiedTable({ hunks, oldLabel, newLabel }) {
  const rows = unifiedRows(hunks);
  const shown = rows.slice(0, MAX_ROWS);
  return html`<table class="diff unified" id="diff-table" data-view="unified">
    <caption class="visually-hidden">Unified diff: lines of ${oldLabel} marked deleted, lines of ${newLabel} marked added</caption>
    <thead><tr><th scope="col" class="no">Old</th><th scope="col" class="no">New</th><th scope="col">Line</th></tr></thead>
    <tbody>${shown.map((r) => r.hunk
      ? html`<tr class="hunk"><td colspan="3">${hunkHeader(r.hunk)}</td></tr>`
      : html`<tr class=${"d-" + r.op} data-op=${r.op}><td class="no">${r.oldNo ?? ""}</td><td class="no">${r.newNo ?? ""}</td>
          <td class="text"><${Text} op=${r.op} text=${r.text} /></td></tr>`)}</tbody>
  </table>${rows.length > MAX_ROWS && html`<p class="warn">${rows.length - MAX_ROWS} more lines are not shown: download the diff to read them all.</p>`}`;
}

function SplitTable({ hunks, oldLabel, newLabel }) {
  const rows = splitRows(hunks);
  const shown = rows.slice(0, MAX_ROWS);
  const side = (s) => s
    ? html`<td class="no">${s.no}</td><td class=${"text d-" + s.op} data-op=${s.op}><${Text} op=${s.op} text=${s.text} /></td>`
    : html`<td class="no"></td><td class="text d-none"></td>`;
  return html`<table class="diff split" id="diff-table" data-view="split">
    <caption class="visually-hidden">Side-by-side diff: ${oldLabel} on the left, ${newLabel} on the right</caption>
    <thead><tr><th scope="col" class="no">Line</th><th scope="col">${oldLabel}</th><th scope="col" class="no">Line</th><th scope="col">${newLabel}</th></tr></thead>
    <tbody>${shown.map((r) => r.hunk
      ? html`<tr class="hunk"><td colspan="4">${hunkHeader(r.hunk)}</td></tr>`
      : html`<tr>${side(r.left)}${side(r.right)}</tr>`)}</tbody>
  </table>${rows.length > MAX_ROWS && html`<p class="warn">${rows.length - MAX_ROWS} more rows are not shown: download the diff to read them all.</p>`}`;
}

// DIFF_ERRORS explains the API's refusals in the words of this page.
const DIFF_ERRORS = {
  no_previous_run: "There is no earlier successful run of this command on this device to compare with.",
  run_not_finished: "A run that has not finished cannot be compared yet.",
};

// TOO_LARGE are the 422 refusals of a diff too large for this page, with what can be downloaded
// instead: both outputs always, the unified diff when the API makes it (its text form is about the
// outputs' size; only the JSON form this page lays out is too large).
const TOO_LARGE = {
  output_too_large: { text: "An output is over 1 MiB, more than a diff is made for. Download both outputs to compare them with a tool of your own.", diff: false },
  diff_too_large: { text: "This diff is too large to show here: laid out for this page its lines would not fit one response. Download the unified diff (the same changes as plain text, about the size of the outputs) or both outputs.", diff: true },
};

/** downloadDiff saves the unified diff of runId against against (its previous run when empty). */
async function downloadDiff(runId, against, raw) {
  const q = new URLSearchParams();
  if (against) q.set("against", against);
  if (raw) q.set("raw", "1");
  const resp = await request("GET", `/v1/runs/${encodeURIComponent(runId)}/diff?${q}`, { raw: true });
  saveFile(`${against || "previous"}..${runId}.diff`, await resp.text(), "text/x-diff");
}

/** downloadOutput saves run id's whole output. */
async function downloadOutput(id) {
  const resp = await request("GET", `/v1/runs/${encodeURIComponent(id)}/output`, { raw: true });
  saveFile(`${id}.txt`, await resp.blob());
}

/** TooLarge says why the diff is not shown and offers the downloads that stand in for it. */
function TooLarge({ runId, against, raw, code, flash }) {
  const what = TOO_LARGE[code];
  const [old, setOld] = useState(against || "");
  useEffect(() => {
    if (against) return undefined;
    let live = true; // the API's default: the run's previous run
    get(`/v1/runs/${encodeURIComponent(runId)}`).then((r) => live && setOld(r.previous_run_id || ""), () => {});
    return () => { live = false; };
  }, [runId, against]);
  const run = (label, fn) => async () => {
    try {
      await fn();
    } catch (e) {
      flash({ kind: "error", text: `${label}: ${e.text || e.message}` });
    }
  };
  return html`<section id="diff-too-large" data-code=${code} aria-labelledby="diff-error">
    <p class="warn" role="alert" id="diff-error">${what.text}</p>
    <p class="row-actions">
      <button id="download-old-output" disabled=${!old} onClick=${run("Old output", () => downloadOutput(old))}>Download old output${old ? html` <span class="muted small">(${old})</span>` : ""}</button>
      <button id="download-new-output" onClick=${run("New output", () => downloadOutput(runId))}>Download new output <span class="muted small">(${runId})</span></button>
      ${what.diff && html`<button id="download-diff" onClick=${run("Download", () => downloadDiff(runId, old, raw))}>Download unified .diff</button>`}
    </p></section>`;
}

/** DiffPage shows GET /v1/runs/{runId}/diff as a table, side by side (default) or unified. */
export function DiffPage({ runId, against, view, raw, flash }) {
  const [state, setState] = useState({ diff: null, runs: {}, error: null });
  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const q = new URLSearchParams({ format: "json" });
        if (against) q.set("against", against);
        if (raw) q.set("raw", "1");
        const diff = await get(`/v1/runs/${encodeURIComponent(runId)}/diff?${q}`);
        const [a, b] = await Promise.all([diff.against, diff.run_id].map((id) => get(`/v1/runs/${encodeURIComponent(id)}`)));
        if (live) setState({ diff, runs: { old: a, new: b }, error: null });
      } catch (e) {
        if (live) setState({ diff: null, runs: {}, error: e });
      }
    })();
    return () => { live = false; };
  }, [runId, against, raw]);

  const { diff, runs, error } = state;
  const here = (extra) => diffHref(runId, against, { view: view === "unified" ? "unified" : "", raw: raw ? "1" : "", ...extra });
  if (error) {
    return html`<main id="main"><p class="crumbs"><${Link} to="?">Devices</${Link}> / <${Link} to=${"?run=" + encodeURIComponent(runId)}>run</${Link}> / diff</p>
      <h1>Diff</h1>${TOO_LARGE[error.code] ? html`<${TooLarge} runId=${runId} against=${against} raw=${raw} code=${error.code} flash=${flash} />`
        : html`<p class="error" role="alert" id="diff-error">${DIFF_ERRORS[error.code] || (error.status === 404 ? "No such run (it may have been purged)." : error.text || error.message)}</p>`}</main>`;
  }
  if (!diff) return html`<main id="main"><h1>Diff</h1><p aria-busy="true">Comparing…</p></main>`;

  const label = (r) => `${r.device_id} at ${fmtTime(r.started_at || r.created_at)}`;
  const oldLabel = label(runs.old), newLabel = label(runs.new);
  let added = 0, deleted = 0;
  for (const h of diff.hunks) for (const l of h.lines) { if (l.op === "add") added++; else if (l.op === "delete") deleted++; }
  const sameDevice = runs.old.device_id === runs.new.device_id;

  async function download() {
    try {
      await downloadDiff(runId, diff.against, raw);
    } catch (e) {
      flash({ kind: "error", text: `Download: ${e.text || e.message}` });
    }
  }

  return html`<main id="main" class="diff-page">
    <p class="crumbs"><${Link} to="?">Devices</${Link}> / <${Link} to=${"?device=" + encodeURIComponent(runs.new.device_id)}>${runs.new.device_id}</${Link}>${" / "}<${Link}
      to=${"?device=" + encodeURIComponent(runs.new.device_id) + "&command=" + encodeURIComponent(runs.new.command)}>history</${Link}> / diff</p>
    <h1>Diff of <code>${runs.new.command}</code>${sameDevice ? ` on ${runs.new.device_id}` : `: ${runs.old.device_id} → ${runs.new.device_id}`}</h1>
    <dl class="summary">
      <div><dt>Old</dt><dd><${Link} to=${"?run=" + encodeURIComponent(runs.old.id)} id="diff-old-run">${oldLabel}</${Link}> <${StatusBadge} status=${runs.old.status} /></dd></div>
      <div><dt>New</dt><dd><${Link} to=${"?run=" + encodeURIComponent(runs.new.id)} id="diff-new-run">${newLabel}</${Link}> <${StatusBadge} status=${runs.new.status} /></dd></div>
      ${runs.old.command !== runs.new.command && html`<div><dt>Old command</dt><dd><code>${runs.old.command}</code></dd></div>`}
    </dl>
    <div class="diff-bar">
      <fieldset class="segmented"><legend class="visually-hidden">Layout</legend>
        <label><input type="radio" name="diff-view" id="view-split" checked=${view !== "unified"} onChange=${() => navigate(here({ view: "" }))} /> Side by side</label>
        <label><input type="radio" name="diff-view" id="view-unified" checked=${view === "unified"} onChange=${() => navigate(here({ view: "unified" }))} /> Unified</label>
      </fieldset>
      <label class="check"><input type="checkbox" id="diff-raw" checked=${!!raw} onChange=${(e) => navigate(here({ raw: e.currentTarget.checked ? "1" : "" }))} />
        Include noise lines (raw)</label>
      <button onClick=${download} id="download-diff">Download .diff</button>
    </div>
    <p id="diff-summary" aria-live="polite" data-raw=${String(!!diff.raw)} data-changed=${String(diff.changed)} data-added=${added} data-deleted=${deleted}>
      ${diff.changed
        ? html`<strong>${added} line${added === 1 ? "" : "s"} added, ${deleted} deleted</strong> in ${diff.hunks.length} hunk${diff.hunks.length === 1 ? "" : "s"}.`
        : html`<strong>No difference</strong>${raw ? "." : " once noise lines (timestamps, counters the platform's filters name) are left out."}`}
      ${" "}<span class="muted small">${raw ? "Every line compared, noise included." : "Lines matching the platform's noise filters are left out."}</span></p>
    ${diff.hunks.length > 0 && html`<div class="diff-scroll" role="region" tabindex="0" aria-label="Differences">
      ${view === "unified" ? html`<${UnifiedTable} hunks=${diff.hunks} oldLabel=${oldLabel} newLabel=${newLabel} />`
        : html`<${SplitTable} hunks=${diff.hunks} oldLabel=${oldLabel} newLabel=${newLabel} />`}</div>`}
  </main>`;
}
