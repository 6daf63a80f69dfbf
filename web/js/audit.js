// Audit: the append-only audit trail (admins), newest first, filtered by actor, action, target
// and time, a page at a time.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get } from "./api.js";
import { fmtTime } from "./ui.js";

const fields = [
  ["actor", "Actor", "ann@example.com or system:executor"],
  ["action", "Action", "device.update"],
  ["target", "Target", "a device, job or run id"],
];

function query(filter, cursor) {
  const q = new URLSearchParams();
  for (const [k] of fields) if (filter[k]) q.set(k, filter[k]);
  if (filter.since) q.set("since", new Date(filter.since).toISOString().replace(/\.\d+Z$/, "Z"));
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

export function AuditPage() {
  const [filter, setFilter] = useState({});
  const [draft, setDraft] = useState({});
  const [pages, setPages] = useState([""]); // cursors of the pages shown so far
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const cursor = pages[pages.length - 1];
  useEffect(() => {
    setList(null);
    setError(null);
    get("/v1/audit?" + query(filter, cursor)).then(setList, setError);
  }, [filter, cursor]);

  function apply(e) {
    e.preventDefault();
    setPages([""]);
    setFilter({ ...draft });
  }

  return html`<main id="main" class="audit-page">
    <div class="page-head"><h1>Audit trail</h1></div>
    <form class="filters" id="audit-filters" onSubmit=${apply}>
      ${fields.map(([k, label, hint]) => html`<label>${label}
        <input name=${k} placeholder=${hint} value=${draft[k] || ""} onInput=${(e) => setDraft({ ...draft, [k]: e.target.value })} /></label>`)}
      <label>Since <input type="datetime-local" name="since" value=${draft.since || ""} onInput=${(e) => setDraft({ ...draft, since: e.target.value })} /></label>
      <button type="submit">Filter</button>
    </form>
    ${error && html`<p class="error" role="alert">${error.text || error.message}</p>`}
    ${!error && !list && html`<p aria-busy="true">Loading…</p>`}
    ${list && html`<table class="plain" id="audit-table"><thead><tr><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th>
      <th scope="col">Target</th><th scope="col">Outcome</th><th scope="col">Reason</th><th scope="col">Detail</th><th scope="col">Source</th></tr></thead><tbody>
      ${list.items.length === 0 && html`<tr><td colspan="8" class="muted">No entries.</td></tr>`}
      ${list.items.map((e) => html`<tr key=${e.id} class=${"outcome-" + e.outcome}>
        <td title=${e.id}>${fmtTime(e.time)}</td><td>${e.actor}${e.role && html` <span class="muted small">${e.role}</span>`}</td>
        <td><code>${e.action}</code></td><td>${e.target}</td><td class=${e.outcome === "ok" ? "" : "warn"}>${e.outcome}</td><td>${e.reason}</td>
        <td class="small">${Object.entries(e.detail || {}).sort().map(([k, v]) => `${k}=${v}`).join(" ")}</td>
        <td class="small" title=${e.request_id || ""}>${e.source}</td></tr>`)}
    </tbody></table>
    <div class="actions">
      ${pages.length > 1 && html`<button id="audit-first" onClick=${() => setPages([""])}>Newest</button>`}
      ${list.next && html`<button id="audit-next" onClick=${() => setPages([...pages, list.next])}>Next page</button>`}
    </div>`}
  </main>`;
}
