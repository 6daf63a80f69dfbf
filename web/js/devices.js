// The devices page: the whole inventory in a virtualised table (only the rows in view are in the
// DOM, so 2,000+ devices stay smooth), client-side search, filters and sorting, selection with
// shift-click ranges and "select all matching", each device's last run (one request per 1,000
// devices), admin add / edit / delete / import, one jump chain set on the selected devices at once,
// and the bulk command button.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, request, can, canSomewhere, canOn, formErrors, ApiError } from "./api.js";
import { StatusBadge, Link, Modal, useVirtual, fmtAgo, FieldError } from "./ui.js";
import { BulkModal } from "./bulk.js";
import { JumpChainField } from "./jumphosts.js";

const ROW = 36;
const PLATFORMS = ["linux", "cisco_ios", "cisco_iosxe", "cisco_nxos", "cisco_iosxr", "arista_eos", "juniper_junos", "generic"];
const COLUMNS = [
  { key: "id", label: "ID" },
  { key: "name", label: "Name" },
  { key: "host", label: "Host" },
  { key: "platform", label: "Platform" },
  { key: "site", label: "Site" },
  { key: "tags", label: "Tags", sortable: false },
  { key: "last", label: "Last run" },
];

function tagText(tags) {
  return Object.entries(tags || {}).map(([k, v]) => (v ? `${k}=${v}` : k)).join(" ");
}

/** loadAll pages through GET /v1/devices (1,000 a page). */
async function loadAll(onPage) {
  const all = [];
  let cursor = "";
  do {
    const q = new URLSearchParams({ limit: "1000" });
    if (cursor) q.set("cursor", cursor);
    const page = await get("/v1/devices?" + q);
    all.push(...page.items);
    onPage(all.length);
    cursor = page.next || "";
  } while (cursor);
  return all;
}

/** loadLastRuns asks for the newest run of every device, 1,000 ids a request. */
async function loadLastRuns(ids) {
  const out = {};
  for (let i = 0; i < ids.length; i += 1000) {
    const r = await post("/v1/devices/last-runs", { device_ids: ids.slice(i, i + 1000) });
    Object.assign(out, r.items);
  }
  return out;
}

function matches(d, f, last) {
  if (f.platform && d.platform !== f.platform) return false;
  if (f.site && d.site !== f.site) return false;
  if (f.status) {
    const s = last[d.id] ? last[d.id].status : "never";
    if (s !== f.status) return false;
  }
  if (f.tag) {
    const [k, v] = f.tag.split("=");
    const tags = d.tags || {};
    if (!(k in tags)) return false;
    if (v !== undefined && tags[k] !== v) return false;
  }
  if (f.q) {
    const q = f.q.toLowerCase();
    const hay = `${d.id} ${d.name} ${d.host} ${d.site || ""} ${tagText(d.tags)}`.toLowerCase();
    if (!q.split(/\s+/).every((w) => hay.includes(w))) return false;
  }
  return true;
}

export function DevicesPage({ flash }) {
  const [devices, setDevices] = useState(null);
  const [loaded, setLoaded] = useState(0);
  const [last, setLast] = useState({});
  const [error, setError] = useState(null);
  const [filter, setFilter] = useState({ q: "", platform: "", site: "", tag: "", status: "" });
  const [sort, setSort] = useState({ key: "id", dir: 1 });
  const [selected, setSelected] = useState(() => new Set());
  const [modal, setModal] = useState(null); // {kind: "bulk"|"edit"|"add"|"import-result", ...}
  const anchor = useRef(-1);
  const fileRef = useRef(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    const t0 = performance.now();
    loadAll((n) => live && setLoaded(n))
      .then((all) => {
        if (!live) return;
        setDevices(all);
        performance.mark("netauto:devices-loaded");
        window.netautoTimings = { ...(window.netautoTimings || {}), devicesFetchMs: performance.now() - t0 };
        const t1 = performance.now();
        return loadLastRuns(all.map((d) => d.id)).then((l) => {
          window.netautoTimings.lastRunsMs = performance.now() - t1;
          if (live) setLast(l);
        });
      })
      .catch((e) => live && setError(e));
    return () => { live = false; };
  }, [reload]);

  const sites = useMemo(() => [...new Set((devices || []).map((d) => d.site).filter(Boolean))].sort(), [devices]);

  const rows = useMemo(() => {
    if (!devices) return [];
    const out = devices.filter((d) => matches(d, filter, last));
    const { key, dir } = sort;
    const val = (d) => (key === "last" ? (last[d.id] ? last[d.id].created_at : "") : String(d[key] || ""));
    out.sort((a, b) => {
      const x = val(a), y = val(b);
      return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * dir;
    });
    return out;
  }, [devices, filter, sort, last]);

  const v = useVirtual(rows.length, ROW);
  const selectedMatching = useMemo(() => rows.reduce((n, d) => n + (selected.has(d.id) ? 1 : 0), 0), [rows, selected]);

  function setF(k, val) {
    setFilter((f) => ({ ...f, [k]: val }));
    anchor.current = -1;
  }

  function toggle(index, ev) {
    const d = rows[index];
    const on = ev.target.checked;
    const next = new Set(selected);
    if (ev.shiftKey && anchor.current >= 0 && anchor.current < rows.length) {
      const [a, b] = anchor.current < index ? [anchor.current, index] : [index, anchor.current];
      for (let i = a; i <= b; i++) on ? next.add(rows[i].id) : next.delete(rows[i].id);
    } else {
      on ? next.add(d.id) : next.delete(d.id);
    }
    anchor.current = index;
    setSelected(next);
  }

  function selectAllMatching() {
    const next = new Set(selected);
    for (const d of rows) next.add(d.id);
    setSelected(next);
  }

  function sortBy(key) {
    setSort((s) => ({ key, dir: s.key === key ? -s.dir : 1 }));
  }

  async function remove(d) {
    if (!confirm(`Delete device ${d.id} and its stored credential?`)) return;
    try {
      await request("DELETE", "/v1/devices/" + encodeURIComponent(d.id));
      setDevices((all) => all.filter((x) => x.id !== d.id));
      const next = new Set(selected);
      next.delete(d.id);
      setSelected(next);
      flash({ kind: "ok", text: `Deleted ${d.id}.` });
    } catch (e) {
      flash({ kind: "error", text: `Delete ${d.id}: ${e.text || e.message}` });
    }
  }

  async function importFile(ev) {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (!file) return;
    const csv = /\.csv$/i.test(file.name) || file.type === "text/csv";
    try {
      const res = await request("POST", "/v1/devices/import?mode=per-row", {
        body: await file.text(), contentType: csv ? "text/csv" : "application/json",
      });
      setModal({ kind: "import-result", file: file.name, result: res });
      setReload((n) => n + 1);
    } catch (e) {
      if (e instanceof ApiError && e.body && e.body.result) setModal({ kind: "import-result", file: file.name, result: e.body.result, error: e.text });
      else flash({ kind: "error", text: `Import ${file.name}: ${e.text || e.message}` });
    }
  }

  // Device routes are site-scoped: a role on some site shows the actions, and the list holds that
  // site's devices only; a row's Edit and Delete need admin on its site. Jump hosts are listed to
  // admins everywhere only, so only they set a chain.
  const admin = canSomewhere("admin");
  const adminAll = can("admin");
  const operator = canSomewhere("operator");
  const selectedIds = useMemo(() => [...selected], [selected]);

  if (error) return html`<main id="main"><h1>Devices</h1><p class="error" role="alert">Could not load devices: ${error.text || error.message}</p></main>`;

  return html`
    <main id="main" class="devices-page">
      <div class="page-head">
        <h1>Devices</h1>
        <div class="actions">
          ${admin && html`
            <button onClick=${() => setModal({ kind: "add" })}>Add device</button>
            <button onClick=${() => fileRef.current.click()}>Import JSON or CSV…</button>
            <input type="file" ref=${fileRef} accept=".json,.csv,application/json,text/csv" hidden onChange=${importFile} aria-label="Import file" />`}
          ${adminAll && html`
            <button id="set-jump-chain" disabled=${selected.size === 0} onClick=${() => setModal({ kind: "chain" })}
              title=${selected.size === 0 ? "Select devices first" : ""}>Set jump chain…</button>`}
          ${operator && html`
            <button class="primary" id="run-bulk" disabled=${selected.size === 0}
              onClick=${() => setModal({ kind: "bulk" })}
              title=${selected.size === 0 ? "Select devices first" : ""}>Run bulk command…</button>`}
        </div>
      </div>
      <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
        <label>Search <input type="search" id="filter-q" value=${filter.q} placeholder="id, name, host, tag…"
          onInput=${(e) => setF("q", e.target.value)} /></label>
        <label>Platform <select id="filter-platform" value=${filter.platform} onChange=${(e) => setF("platform", e.target.value)}>
          <option value="">any</option>${PLATFORMS.map((p) => html`<option value=${p}>${p}</option>`)}</select></label>
        <label>Site <select id="filter-site" value=${filter.site} onChange=${(e) => setF("site", e.target.value)}>
          <option value="">any</option>${sites.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
        <label>Tag <input id="filter-tag" value=${filter.tag} placeholder="key or key=value" size="14"
          onInput=${(e) => setF("tag", e.target.value.trim())} /></label>
        <label>Last run <select id="filter-status" value=${filter.status} onChange=${(e) => setF("status", e.target.value)}>
          <option value="">any</option><option value="never">never run</option>
          ${["succeeded", "failed", "timed_out", "unreachable", "auth_failed", "host_key_mismatch", "cancelled", "running", "queued"].map(
            (s) => html`<option value=${s}>${s.replace(/_/g, " ")}</option>`)}</select></label>
      </form>
      <div class="selection-bar" aria-live="polite">
        <strong id="selection-count">${selected.size} selected</strong>
        <span class="muted">${devices ? `${rows.length} of ${devices.length} devices match` : `loading devices… ${loaded}`}</span>
        <button id="select-all" disabled=${!rows.length || selectedMatching === rows.length} onClick=${selectAllMatching}>
          Select all ${rows.length} matching</button>
        <button id="clear-selection" disabled=${!selected.size} onClick=${() => setSelected(new Set())}>Clear selection</button>
      </div>
      <div class="table-scroll" ref=${v.ref} onScroll=${v.onScroll} role="region" aria-label="Devices table" tabindex="-1">
        <table class="devices" aria-rowcount=${rows.length + 1}>
          <colgroup><col class="c-check" /><col class="c-id" /><col class="c-name" /><col class="c-host" /><col class="c-platform" />
            <col class="c-site" /><col class="c-tags" /><col class="c-last" />${admin && html`<col class="c-act" />`}</colgroup>
          <thead><tr>
            <th scope="col"><span class="visually-hidden">Selected</span></th>
            ${COLUMNS.map((c) => html`<th scope="col" aria-sort=${sort.key === c.key ? (sort.dir > 0 ? "ascending" : "descending") : undefined}>
              ${c.sortable === false ? c.label : html`<button class="sort" onClick=${() => sortBy(c.key)}>${c.label}
                <span aria-hidden="true">${sort.key === c.key ? (sort.dir > 0 ? "▲" : "▼") : ""}</span></button>`}</th>`)}
            ${admin && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}
          </tr></thead>
          <tbody>
            ${v.before > 0 && html`<tr class="spacer" aria-hidden="true"><td colspan="9" style=${{ height: v.before + "px" }}></td></tr>`}
            ${rows.slice(v.start, v.end).map((d, i) => {
              const index = v.start + i;
              const lr = last[d.id];
              const on = selected.has(d.id);
              return html`<tr key=${d.id} class=${on ? "selected" : ""} aria-rowindex=${index + 2} data-id=${d.id}>
                <td><input type="checkbox" checked=${on} aria-label=${"Select " + d.id} onClick=${(e) => toggle(index, e)} /></td>
                <td class="mono"><${Link} to=${"?device=" + encodeURIComponent(d.id)}>${d.id}</${Link}>${d.pending_host_key && html` <${Link}
                  to=${"?device=" + encodeURIComponent(d.id)} class="key-pending" title=${"Offered another host key: " + d.pending_host_key.fingerprint}
                  ><span aria-hidden="true">⚠</span> new key<span class="visually-hidden">: ${d.id} offered another host key</span></${Link}>`}</td>
                <td>${d.name}</td>
                <td class="mono">${d.host}${d.port && d.port !== 22 ? ":" + d.port : ""}</td>
                <td>${d.platform}</td>
                <td>${d.site}</td>
                <td class="tags" title=${tagText(d.tags)}>${tagText(d.tags)}</td>
                <td>${lr ? html`<${Link} to=${"?run=" + encodeURIComponent(lr.id)} title=${lr.command}><${StatusBadge} status=${lr.status} reason=${lr.reason} /></${Link}>
                  <span class="muted small"> ${fmtAgo(lr.finished_at || lr.created_at)}</span>` : html`<${StatusBadge} />`}</td>
                ${admin && html`<td class="row-actions">${canOn("admin", d.site) && html`
                  <button class="small" onClick=${() => setModal({ kind: "edit", device: d })} aria-label=${"Edit " + d.id}>Edit</button>
                  <button class="small danger" onClick=${() => remove(d)} aria-label=${"Delete " + d.id}>Delete</button>`}</td>`}
              </tr>`;
            })}
            ${v.after > 0 && html`<tr class="spacer" aria-hidden="true"><td colspan="9" style=${{ height: v.after + "px" }}></td></tr>`}
          </tbody>
        </table>
        ${devices && !rows.length && html`<p class="empty">${devices.length ? "No device matches these filters." : "The inventory is empty."}</p>`}
      </div>
      ${modal && modal.kind === "bulk" && html`<${BulkModal} deviceIds=${selectedIds} onClose=${() => setModal(null)} flash=${flash} />`}
      ${modal && (modal.kind === "edit" || modal.kind === "add") && html`<${DeviceForm} device=${modal.device} onClose=${() => setModal(null)}
        onConflict=${() => setReload((n) => n + 1)}
        onSaved=${(d) => {
          setDevices((all) => (modal.device ? all.map((x) => (x.id === d.id ? d : x)) : [...all, d]));
          setModal(null);
          flash({ kind: "ok", text: `${modal.device ? "Saved" : "Added"} ${d.id}.` });
        }} />`}
      ${modal && modal.kind === "import-result" && html`<${ImportResult} ...${modal} onClose=${() => setModal(null)} />`}
      ${modal && modal.kind === "chain" && html`<${JumpChainModal} deviceIds=${selectedIds} onClose=${() => setModal(null)}
        onSaved=${(items, chain) => {
          const byId = new Map(items.map((d) => [d.id, d]));
          setDevices((all) => all.map((x) => byId.get(x.id) || x));
          setModal(null);
          flash({ kind: "ok", text: chain.length ? `Set the jump chain of ${items.length} devices: ${chain.join(" → ")}.` : `Cleared the jump chain of ${items.length} devices.` });
        }} />`}
    </main>`;
}

/** MAX_CHAIN_UPDATE is how many devices one bulk update may name (the API's bound). */
const MAX_CHAIN_UPDATE = 100;

/**
 * JumpChainModal sets one jump host chain on the selected devices, or clears it, in one request:
 * all or nothing, so a refusal (a device deleted meanwhile, a jump host gone) changes none.
 */
function JumpChainModal({ deviceIds, onClose, onSaved }) {
  const [chain, setChain] = useState([]);
  const [error, setError] = useState("");
  const [chainError, setChainError] = useState("");
  const [busy, setBusy] = useState(false);
  const tooMany = deviceIds.length > MAX_CHAIN_UPDATE;

  async function submit(ev) {
    ev.preventDefault();
    setBusy(true);
    setError("");
    setChainError("");
    try {
      const res = await post("/v1/devices/bulk-update", { device_ids: deviceIds, set: { jump_host_ids: chain } });
      onSaved(res.items, chain);
    } catch (e) {
      if (e.field === "set.jump_host_ids") setChainError(e.message);
      else if (e.body && e.body.unknown_ids) setError(`Nothing was changed: ${e.message}`);
      else setError(e.text || e.message);
    } finally {
      setBusy(false);
    }
  }

  return html`<${Modal} title=${`Set the jump chain of ${deviceIds.length} device${deviceIds.length === 1 ? "" : "s"}`} onClose=${onClose}>
    <form onSubmit=${submit} novalidate id="jump-chain-form">
      <p class="muted small">Every selected device gets this chain, in order, replacing its own; "none (direct)" clears it.
        All or nothing: if one device cannot take it, none changes.</p>
      <${JumpChainField} value=${chain} onChange=${setChain} error=${chainError} idPrefix="bulk-jump" />
      ${tooMany && html`<p class="error" role="alert">At most ${MAX_CHAIN_UPDATE} devices at once: select fewer.</p>`}
      ${error && html`<p class="error" role="alert" id="jump-chain-error">${error}</p>`}
      <div class="modal-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary" type="submit" id="jump-chain-apply" disabled=${busy || tooMany}>
          ${chain.length ? "Set chain" : "Clear chains"}</button>
      </div>
    </form>
  </${Modal}>`;
}

function ImportResult({ file, result, error, onClose }) {
  const bad = result.rows.filter((r) => r.status !== "created");
  return html`<${Modal} title=${"Import of " + file} onClose=${onClose} wide>
    <p role="status">${result.created} created, ${result.failed} rejected${error ? ` — ${error}` : ""}.</p>
    ${bad.length > 0 && html`<table class="plain"><thead><tr><th>Row</th><th>ID</th><th>Status</th><th>Problems</th></tr></thead><tbody>
      ${bad.slice(0, 200).map((r) => html`<tr><td>${r.row}</td><td class="mono">${r.id}</td><td>${r.status}</td>
        <td>${(r.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ")}</td></tr>`)}</tbody></table>`}
    <div class="modal-actions"><button class="primary" onClick=${onClose}>Close</button></div>
  </${Modal}>`;
}

function parseTags(s) {
  const out = {};
  for (const part of s.split(/[;,]/).map((x) => x.trim()).filter(Boolean)) {
    const i = part.indexOf("=");
    if (i < 0) out[part] = "";
    else out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** DeviceForm adds (device undefined) or edits a device; the API's field errors show inline. */
function DeviceForm({ device, onClose, onSaved, onConflict }) {
  const editing = !!device;
  const [f, setF] = useState(() => ({
    id: device ? device.id : "", name: device ? device.name : "", host: device ? device.host : "",
    port: device ? String(device.port) : "22", platform: device ? device.platform : "linux",
    username: device ? device.username : "", site: device ? device.site || "" : "", tags: device ? tagText(device.tags).replace(/ /g, "; ") : "",
    host_key: device ? device.host_key || "" : "", trust_on_first_use: device ? !!device.trust_on_first_use : false, password: "",
    enable_secret: "", jump_host_ids: device ? device.jump_host_ids || [] : [],
  }));
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState("");
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });

  async function submit(ev) {
    ev.preventDefault();
    setBusy(true);
    setErrors({});
    setGeneral("");
    const body = {
      name: f.name, host: f.host, port: Number(f.port), platform: f.platform, username: f.username, site: f.site,
      tags: parseTags(f.tags), trust_on_first_use: f.trust_on_first_use,
    };
    if (f.host_key) body.host_key = f.host_key;
    if (f.password) body.password = f.password;
    if (f.enable_secret) body.enable_secret = f.enable_secret;
    if (editing || f.jump_host_ids.length) body.jump_host_ids = f.jump_host_ids;
    try {
      let d;
      if (editing) d = await request("PATCH", "/v1/devices/" + encodeURIComponent(device.id), { body: { ...body, version: device.version } });
      else d = await post("/v1/devices", { id: f.id, ...body });
      onSaved(d);
    } catch (e) {
      const inputs = ["id", "name", "host", "port", "platform", "username", "password", "enable_secret", "site", "tags", "host_key", ...(can("admin") ? ["jump_host_ids"] : [])];
      const { fields, general } = formErrors(e, inputs, {
        key: (f) => f.split(".")[0], conflict: `${device ? device.id : "This device"} was changed by someone else meanwhile. The list now shows the change: close and edit it again.`,
      });
      if (e.status === 409 && e.code === "version_conflict") onConflict();
      setErrors(fields);
      setGeneral(general);
    } finally {
      setBusy(false);
    }
  }

  const field = (k, label, input) => html`<div class="field">
    <label for=${"dev-" + k}>${label}</label>${input}<${FieldError} id=${"dev-" + k + "-error"} error=${errors[k]} /></div>`;
  const text = (k, label, extra = {}) => field(k, label, html`<input id=${"dev-" + k} value=${f[k]} onInput=${set(k)}
    aria-invalid=${!!errors[k]} aria-describedby=${errors[k] ? "dev-" + k + "-error" : undefined} ...${extra} />`);

  return html`<${Modal} title=${editing ? "Edit " + device.id : "Add a device"} onClose=${onClose} wide>
    <form onSubmit=${submit} novalidate class="grid-form">
      ${text("id", "ID", { disabled: editing, "data-autofocus": !editing ? "" : undefined })}
      ${text("name", "Name", { "data-autofocus": editing ? "" : undefined })}
      ${text("host", "Host (IP or DNS name)")}
      ${text("port", "Port", { inputmode: "numeric" })}
      ${field("platform", "Platform", html`<select id="dev-platform" value=${f.platform} onChange=${set("platform")}>
        ${PLATFORMS.map((p) => html`<option value=${p}>${p}</option>`)}</select>`)}
      ${text("username", "Username", { autocomplete: "off" })}
      ${text("password", editing ? "Password (blank keeps the stored one)" : "Password", { type: "password", autocomplete: "new-password" })}
      ${text("enable_secret", editing && device.has_enable_secret ? "Enable secret (set; blank keeps it)" : "Enable secret (privileged mode)", { type: "password", autocomplete: "new-password" })}
      ${text("site", "Site")}
      ${text("tags", "Tags (key=value; key2=value2)")}
      ${text("host_key", "Host key (authorized_keys form)")}
      <div class="field check"><label><input type="checkbox" checked=${f.trust_on_first_use} onChange=${set("trust_on_first_use")} />
        Trust the host key on first use</label></div>
      ${can("admin") && html`<${JumpChainField} value=${f.jump_host_ids} onChange=${(c) => setF({ ...f, jump_host_ids: c })} error=${errors.jump_host_ids} />`}
      ${general && html`<p class="error" role="alert">${general}</p>`}
      <div class="modal-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary" type="submit" disabled=${busy}>${editing ? "Save" : "Add device"}</button>
      </div>
    </form>
  </${Modal}>`;
}
