// A device's history of one command (GET /v1/devices/{id}/history?command=, newest first, paged):
// which runs changed the output, and any two runs picked to compare on the diff page.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { collect } from "./api.js";
import { diffHref } from "./diff.js";
import { StatusBadge, ChangedBadge, Link, navigate, fmtTime, fmtBytes } from "./ui.js";

/** HistoryPage lists the runs of command on deviceId with their changed badges. */
export function HistoryPage({ deviceId, command }) {
  const [runs, setRuns] = useState([]);
  const [next, setNext] = useState("");
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState(null);
  const [pick, setPick] = useState({ old: "", new: "" });
  const [changedOnly, setChangedOnly] = useState(false);

  async function more(cursor) {
    setLoading(true);
    try {
      // A page may hold no run and still have a next: pages are followed until a run comes (at most 10).
      const q = new URLSearchParams({ command, limit: "50" });
      const page = await collect(`/v1/devices/${encodeURIComponent(deviceId)}/history?${q}`, 1, 10, cursor);
      if (cursor) setRuns((r) => [...r, ...page.items]);
      else {
        setRuns(page.items);
        // The newest run against the one before it, until the user picks others.
        if (page.items.length >= 2) setPick({ new: page.items[0].id, old: page.items[1].id });
      }
      setNext(page.next || "");
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  }
  useEffect(() => { more(""); }, [deviceId, command]);

  const deviceLink = html`<${Link} to=${"?device=" + encodeURIComponent(deviceId)}>${deviceId}</${Link}>`;
  if (error) {
    return html`<main id="main"><p class="crumbs"><${Link} to="?">Devices</${Link}> / ${deviceLink} / history</p>
      <h1>History of <code>${command}</code></h1><p class="error" role="alert">${error.status === 404 ? "No such device." : error.text || error.message}</p></main>`;
  }
  const changes = runs.filter((r) => r.changed === true).length;
  const rows = changedOnly ? runs.filter((r) => r.changed === true) : runs;
  const canCompare = pick.old && pick.new && pick.old !== pick.new;
  return html`<main id="main" class="history-page">
    <p class="crumbs"><${Link} to="?">Devices</${Link}> / ${deviceLink} / history</p>
    <h1>History of <code>${command}</code> on ${deviceId}</h1>
    <p class="lead" id="history-summary">${loading && !runs.length ? "Loading…" : runs.length === 0
      ? (next ? "No finished run of this command on this device in the newest pages." : "No finished run of this command on this device.")
      : `${runs.length}${next ? "+" : ""} run${runs.length === 1 ? "" : "s"}, newest first; ${changes} changed the output (noise lines such as timestamps aside).`}</p>
    ${runs.length > 0 && html`<div class="history-bar">
      <label class="filter-check"><input type="checkbox" id="history-changed-only" checked=${changedOnly}
        onChange=${(e) => setChangedOnly(e.currentTarget.checked)} /> Changed only</label>
      <button class="primary" id="compare-runs" disabled=${!canCompare}
        onClick=${() => navigate(diffHref(pick.new, pick.old))}>Compare selected runs</button>
      <span class="muted small">Pick an old and a new run in the first two columns.</span>
    </div>
    <div class="history-scroll" role="region" tabindex="0" aria-label=${"Runs of " + command}>
    <table class="plain history-table" id="history-table">
      <thead><tr><th scope="col">Old</th><th scope="col">New</th><th scope="col">When</th><th scope="col">Changed</th><th scope="col">Status</th>
        <th scope="col">Size</th><th scope="col">SHA-256</th><th scope="col">Diff</th><th scope="col">By</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr key=${r.id} data-run=${r.id} data-changed=${String(r.changed)}>
        <td><input type="radio" name="pick-old" checked=${pick.old === r.id} aria-label=${"Old: run at " + fmtTime(r.created_at)}
          onChange=${() => setPick((p) => ({ ...p, old: r.id }))} /></td>
        <td><input type="radio" name="pick-new" checked=${pick.new === r.id} aria-label=${"New: run at " + fmtTime(r.created_at)}
          onChange=${() => setPick((p) => ({ ...p, new: r.id }))} /></td>
        <td><${Link} to=${"?run=" + encodeURIComponent(r.id)}>${fmtTime(r.started_at || r.created_at)}</${Link}></td>
        <td><${ChangedBadge} run=${r} /></td>
        <td><${StatusBadge} status=${r.status} reason=${r.reason} /></td>
        <td>${fmtBytes(r.bytes)}</td>
        <td class="mono small" title=${r.content_sha256 || ""}>${r.content_sha256 ? r.content_sha256.slice(0, 12) + "…" : "—"}</td>
        <td>${r.previous_run_id ? html`<${Link} to=${diffHref(r.id, r.previous_run_id)}>diff<span class="visually-hidden"> of the run at ${fmtTime(r.created_at)} with the previous one</span></${Link}>` : ""}</td>
        <td>${r.requested_by}</td></tr>`)}</tbody>
    </table></div>`}
    ${next && html`<p><button id="history-more" onClick=${() => more(next)} disabled=${loading}>Load more</button></p>`}
  </main>`;
}

/** CommandHistoryForm opens the history of a command on a device (the device page offers it). */
export function CommandHistoryForm({ deviceId, commands }) {
  const [command, setCommand] = useState(commands[0] || "");
  useEffect(() => { if (!command && commands[0]) setCommand(commands[0]); }, [commands.join("\n")]);
  function submit(ev) {
    ev.preventDefault();
    if (command.trim()) navigate(`?device=${encodeURIComponent(deviceId)}&command=${encodeURIComponent(command.trim())}`);
  }
  return html`<form class="filters" onSubmit=${submit} aria-labelledby="config-history-title">
    <label>Command<input id="history-command" list="history-commands" value=${command} onInput=${(e) => setCommand(e.currentTarget.value)}
      size="30" required /></label>
    <datalist id="history-commands">${commands.map((c) => html`<option value=${c} />`)}</datalist>
    <button type="submit" id="history-open">Show history</button>
  </form>`;
}
