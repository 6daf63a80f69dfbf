// Platforms and their noise filters (GET /v1/platforms): the lines a diff and the `changed` flag
// leave out (timestamps, counters). Built-in filters are listed; admins edit each platform's own
// filters, saved whole (PUT /v1/platforms/{name}/filters).
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, request, can } from "./api.js";
import { FieldError } from "./ui.js";

const blank = () => ({ pattern: "", command: "", description: "" });

/** PlatformsPage lists every platform profile with its noise filters. */
export function PlatformsPage({ flash }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { get("/v1/platforms").then((r) => setItems(r.items), setError); }, []);
  if (error) return html`<main id="main"><h1>Platforms</h1><p class="error" role="alert">${error.text || error.message}</p></main>`;
  if (!items) return html`<main id="main"><h1>Platforms</h1><p aria-busy="true">Loading…</p></main>`;
  const saved = (p) => setItems((all) => all.map((x) => (x.name === p.name ? p : x)));
  return html`<main id="main" class="platforms-page">
    <h1>Platforms</h1>
    <p class="muted">A device's platform picks how NetAuto talks to it and which output lines are noise: lines that change
      on every run without the device changing (timestamps, uptime, counters). Diffs and the <em>changed</em> flag leave
      them out. A pattern is a regular expression (RE2) matched against each line; a command pattern limits it to the
      commands it matches. New filters apply to diffs at once and to <em>changed</em> from the next runs on.</p>
    <nav aria-label="Platforms on this page"><ul class="inline-list">${items.map((p) => html`<li><a href=${"#platform-" + p.name}>${p.name}</a>
      <span class="muted small">(${p.noise_filters.length})</span></li>`)}</ul></nav>
    ${items.map((p) => html`<${Platform} key=${p.name} platform=${p} onSaved=${saved} flash=${flash} />`)}
  </main>`;
}

function Platform({ platform, onSaved, flash }) {
  const [edit, setEdit] = useState(null); // the admin filters being edited, or null
  const [saveErr, setSaveErr] = useState(null);
  const [busy, setBusy] = useState(false);
  const builtins = platform.noise_filters.filter((f) => f.builtin);
  const own = platform.noise_filters.filter((f) => !f.builtin);
  const id = "platform-" + platform.name;

  function start() {
    setSaveErr(null);
    setEdit(own.map((f) => ({ pattern: f.pattern, command: f.command || "", description: f.description || "" })));
  }
  const set = (i, k) => (e) => setEdit(edit.map((f, j) => (j === i ? { ...f, [k]: e.currentTarget.value } : f)));
  async function save(ev) {
    ev.preventDefault();
    setBusy(true);
    setSaveErr(null);
    try {
      const p = await request("PUT", `/v1/platforms/${encodeURIComponent(platform.name)}/filters`, { body: { filters: edit } });
      onSaved(p);
      setEdit(null);
      flash({ kind: "ok", text: `Noise filters of ${platform.name} saved.` });
    } catch (e) {
      setSaveErr(e);
    } finally {
      setBusy(false);
    }
  }
  const errs = {};
  for (const d of (saveErr && saveErr.details) || []) errs[d.field] = d.message;
  const general = saveErr && !Object.keys(errs).some((f) => f.startsWith("filters[")) ? saveErr.text || saveErr.message : "";
  const cell = (i, k, label, size) => {
    const field = `filters[${i}].${k}`;
    return html`<td><input aria-label=${`Filter ${i + 1} ${label}`} class=${"filter-" + k} value=${edit[i][k]} onInput=${set(i, k)}
      size=${size} spellcheck="false" aria-invalid=${errs[field] ? "true" : "false"} aria-describedby=${errs[field] ? `${id}-${i}-${k}-error` : undefined} />
      <${FieldError} id=${`${id}-${i}-${k}-error`} error=${errs[field]} /></td>`;
  };

  return html`<section class="platform" aria-labelledby=${id} data-platform=${platform.name}>
    <h2 id=${id}><code>${platform.name}</code> <span class="muted small">${platform.description}${platform.mode ? ` · ${platform.mode}` : ""}</span></h2>
    ${!edit && html`<table class="plain noise-filters"><thead><tr><th scope="col">Line pattern</th><th scope="col">Commands</th>
      <th scope="col">What it is</th><th scope="col">Source</th></tr></thead><tbody>
      ${platform.noise_filters.length === 0 && html`<tr><td colspan="4" class="muted">No noise filters.</td></tr>`}
      ${[...builtins, ...own].map((f) => html`<tr data-builtin=${String(!!f.builtin)}><td><code>${f.pattern}</code></td>
        <td>${f.command ? html`<code>${f.command}</code>` : html`<span class="muted">every command</span>`}</td>
        <td>${f.description}</td><td>${f.builtin ? "built in" : "added by an admin"}</td></tr>`)}
    </tbody></table>
    ${can("admin") && html`<p><button onClick=${start} id=${id + "-edit"}>Edit ${platform.name}'s own filters</button></p>`}`}
    ${edit && html`<form onSubmit=${save} novalidate>
      <p class="muted small">${builtins.length} built-in filter${builtins.length === 1 ? "" : "s"} always apply; these are ${platform.name}'s own (up to 50).</p>
      <table class="plain"><thead><tr><th scope="col">Line pattern</th><th scope="col">Command pattern (empty: every command)</th>
        <th scope="col">What it is</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
        ${edit.length === 0 && html`<tr><td colspan="4" class="muted">None yet.</td></tr>`}
        ${edit.map((f, i) => html`<tr>${cell(i, "pattern", "line pattern", 28)}${cell(i, "command", "command pattern", 18)}${cell(i, "description", "description", 22)}
          <td><button type="button" class="small" aria-label=${`Remove filter ${i + 1}`} onClick=${() => setEdit(edit.filter((_, j) => j !== i))}>Remove</button></td></tr>`)}
      </tbody></table>
      ${general && html`<p class="error" role="alert">${general}</p>`}
      <div class="modal-actions">
        <button type="button" onClick=${() => setEdit([...edit, blank()])} id=${id + "-add"}>Add a filter</button>
        <button type="button" onClick=${() => setEdit(null)}>Cancel</button>
        <button class="primary" type="submit" disabled=${busy} id=${id + "-save"}>Save</button>
      </div>
    </form>`}
  </section>`;
}
