// Saved jobs (GET/POST/PATCH/DELETE /v1/saved-jobs): a command or sequence with its options and a
// device selector whose terms combine with AND, evaluated at every start within its owner's scope.
// The list offers Run now, Edit and Delete on the saved jobs the user may change (their own; any
// for an admin); the editor takes commands as the bulk dialog does (commands.js).
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, request, can, canSomewhere } from "./api.js";
import { useWhoami } from "./whoami.js";
import { Modal, FieldError, Link, fmtAgo } from "./ui.js";
import { CommandsEditor, newRow, newPrompt, commandsBody, checkCommands, placeErrors, commandText } from "./commands.js";
import { Denied } from "./bulk.js";

/** selectorText is a selector's terms joined by AND. */
export function selectorText(s) {
  const terms = [];
  if (s.device_ids && s.device_ids.length) terms.push("ids " + s.device_ids.join(", "));
  for (const k of Object.keys(s.tags || {}).sort()) terms.push(s.tags[k] ? `tag ${k}=${s.tags[k]}` : `tag ${k}`);
  if (s.site) terms.push("site " + s.site);
  if (s.platform) terms.push("platform " + s.platform);
  return terms.join(" AND ");
}

/** scheduleText is a schedule as the list shows it: cron, zone and state. */
export function scheduleText(sc) {
  if (!sc) return "";
  return `${sc.cron} (${sc.time_zone || "UTC"})`;
}

// pausedReasons say in words why the system paused a schedule (schedule.paused_reason).
const pausedReasons = {
  owner_disabled: "its owner's account is disabled in the identity provider",
  owner_deleted: "its owner no longer exists in the identity provider",
  owner_demoted: "its owner no longer holds the roles it was saved with",
  owner_forbidden: "its owner's recorded roles no longer allow starting it",
};

/** pausedText is a paused reason in words, with its token. */
export function pausedText(reason) {
  return pausedReasons[reason] ? `${pausedReasons[reason]} (${reason})` : reason;
}

// fmtWhen is a due time in the browser's own time zone, minutes precision.
const fmtWhen = (t) => new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

/** mayChange mirrors the API's rule: the owner (an operator; me is GET /v1/whoami) or an admin everywhere. */
function mayChange(sj, me) {
  return can("admin") || (canSomewhere("operator") && !!me && me.name === sj.owner);
}

/** SavedJobsPage lists the saved jobs in the user's scope, with Run now, Edit and Delete. */
export function SavedJobsPage({ flash }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [editing, setEditing] = useState(null); // a saved job, {} for a new one, or null
  const [busy, setBusy] = useState("");
  const me = useWhoami();
  async function load() {
    try {
      const all = [];
      let cursor = "";
      do {
        const page = await get("/v1/saved-jobs?limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        all.push(...page.items);
        cursor = page.next || "";
      } while (cursor);
      setItems(all);
    } catch (e) {
      setError(e);
    }
  }
  useEffect(() => { load(); }, []);

  async function runNow(sj) {
    setBusy(sj.id);
    try {
      const acc = await post(`/v1/saved-jobs/${encodeURIComponent(sj.id)}/run`);
      flash({
        kind: "ok", focus: true,
        content: html`${sj.name}: job <code>${acc.job_id}</code> started on ${acc.device_count} device${acc.device_count === 1 ? "" : "s"}.${" "}
          <${Link} to=${"?job=" + encodeURIComponent(acc.job_id)} id="flash-job-link">Open the job</${Link}>`,
      });
    } catch (e) {
      flash({ kind: "error", text: `Run ${sj.name}: ${e.text || e.message}` });
    } finally {
      setBusy("");
    }
  }

  // toggle pauses or resumes a schedule: the schedule is sent whole, at the version shown.
  async function toggle(sj) {
    const sc = sj.schedule;
    setBusy(sj.id);
    try {
      const body = { schedule: { cron: sc.cron, time_zone: sc.time_zone, enabled: !sc.enabled }, version: sj.version };
      await request("PATCH", `/v1/saved-jobs/${encodeURIComponent(sj.id)}`, { body });
      flash({ kind: "ok", text: `${sj.name}: schedule ${sc.enabled ? "paused" : "resumed; times missed while paused are skipped"}.` });
      load();
    } catch (e) {
      flash({ kind: "error", text: `${sc.enabled ? "Pause" : "Resume"} ${sj.name}: ${e.text || e.message}` });
    } finally {
      setBusy("");
    }
  }

  async function remove(sj) {
    if (!confirm(`Delete the saved job "${sj.name}"? Its secret answers are deleted with it.`)) return;
    try {
      await request("DELETE", `/v1/saved-jobs/${encodeURIComponent(sj.id)}`);
      flash({ kind: "ok", text: `Deleted ${sj.name}.` });
      load();
    } catch (e) {
      flash({ kind: "error", text: `Delete ${sj.name}: ${e.text || e.message}` });
    }
  }

  if (error) return html`<main id="main"><h1>Saved jobs</h1><p class="error" role="alert">${error.text || error.message}</p></main>`;
  return html`<main id="main" class="saved-page">
    <div class="page-head">
      <div><h1>Saved jobs</h1>
        <p class="muted">Commands saved with a device selector. The selector's terms all must hold and are evaluated each time
          the job starts, within its owner's scope, so devices added later are included; the job runs as its owner.</p></div>
      <div class="actions">${canSomewhere("operator") && html`<button class="primary" id="saved-new" onClick=${() => setEditing({})}>New saved job</button>`}</div>
    </div>
    ${!items ? html`<p aria-busy="true">Loading…</p>` : !items.length ? html`<p class="muted" id="saved-empty">No saved jobs yet.</p>` : html`
    <div class="table-scroll"><table class="plain" id="saved-jobs">
      <thead><tr><th scope="col">Name</th><th scope="col">Selector</th><th scope="col">Command</th><th scope="col">Schedule</th><th scope="col">Owner</th><th scope="col">Changed</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${items.map((sj) => html`<tr key=${sj.id} data-saved=${sj.id}>
        <td>${sj.name}</td>
        <td class="small">${selectorText(sj.selector)}</td>
        <td><code>${sj.command}</code></td>
        <td class="small" data-schedule>${sj.schedule ? html`<code>${scheduleText(sj.schedule)}</code>
          ${sj.schedule.enabled ? html`<br />next <time datetime=${sj.next_runs && sj.next_runs[0]}>${sj.next_runs && sj.next_runs.length ? fmtWhen(sj.next_runs[0]) : "—"}</time>`
            : html`<br /><span class="badge">paused</span>${sj.schedule.paused_reason && html` <span class="error" data-paused-reason=${sj.schedule.paused_reason}>${pausedText(sj.schedule.paused_reason)}</span>`}`}` : html`<span class="muted">by hand</span>`}</td>
        <td class="small">${sj.owner}</td>
        <td class="small">${fmtAgo(sj.updated_at)}</td>
        <td class="row-actions">${mayChange(sj, me) && html`
          <button class="small primary" onClick=${() => runNow(sj)} disabled=${busy === sj.id} aria-label=${"Run now: " + sj.name}>Run now</button>
          ${sj.schedule && html`<button class="small" onClick=${() => toggle(sj)} disabled=${busy === sj.id} aria-pressed=${sj.schedule.enabled ? "false" : "true"}
            aria-label=${(sj.schedule.enabled ? "Pause schedule: " : "Resume schedule: ") + sj.name}>${sj.schedule.enabled ? "Pause" : "Resume"}</button>`}
          <button class="small" onClick=${() => setEditing(sj)} aria-label=${"Edit " + sj.name}>Edit</button>
          <button class="small danger" onClick=${() => remove(sj)} aria-label=${"Delete " + sj.name}>Delete</button>`}</td>
      </tr>`)}</tbody></table></div>`}
    ${editing && html`<${SavedEditor} saved=${editing.id ? editing : null} onClose=${() => setEditing(null)}
      onSaved=${(sj) => { setEditing(null); flash({ kind: "ok", text: `Saved ${sj.name}.` }); load(); }} />`}
  </main>`;
}

// rowsOf turns a saved job's commands back into editor rows; a secret prompt comes back without
// its answer, which must be typed again when the commands are changed.
function rowsOf(sj) {
  if (!sj) return [newRow()];
  const cmds = sj.commands && sj.commands.length ? sj.commands : [sj.command];
  return cmds.map((c) => {
    const r = newRow(commandText(c));
    r.prompts = ((c && c.prompts) || []).map((p) => ({ ...newPrompt(), expect: p.expect, answer: p.answer || "", secret: !!p.secret, regex: !!p.regex }));
    r.open = r.prompts.length > 0;
    return r;
  });
}

const tagsText = (tags) => Object.keys(tags || {}).sort().map((k) => (tags[k] ? `${k}=${tags[k]}` : k)).join(", ");

// parseTags reads "role=core, pod" into {role: "core", pod: ""}.
function parseTags(text) {
  const out = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf("=");
    out[i < 0 ? part : part.slice(0, i).trim()] = i < 0 ? "" : part.slice(i + 1).trim();
  }
  return out;
}

/** SavedEditor creates a saved job (saved null) or changes one. */
function SavedEditor({ saved, onClose, onSaved }) {
  const sel = (saved && saved.selector) || {};
  const [f, setF] = useState({
    name: saved ? saved.name : "", ids: (sel.device_ids || []).join(", "), tags: tagsText(sel.tags), site: sel.site || "",
    platform: sel.platform || "", timeout_s: saved && saved.options.timeout_s ? String(saved.options.timeout_s) : "",
    stop_on_error: !!(saved && saved.options.stop_on_error),
    cron: saved && saved.schedule ? saved.schedule.cron : "", time_zone: saved && saved.schedule ? saved.schedule.time_zone : "UTC",
    enabled: saved && saved.schedule ? saved.schedule.enabled : true,
  });
  const [rows, setRowsRaw] = useState(() => rowsOf(saved));
  const [commandsChanged, setCommandsChanged] = useState(!saved);
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState("");
  const [busy, setBusy] = useState(false);
  const formRef = useRef(null);
  const setRows = (fn) => { setCommandsChanged(true); setRowsRaw(fn); };
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  const hasSecret = saved && rows.some((r) => r.prompts.some((p) => p.secret));

  async function submit(ev) {
    ev.preventDefault();
    setErrors({});
    setGeneral("");
    const { body: cmd, sent } = commandsBody(rows);
    const problems = commandsChanged ? checkCommands(sent) : [];
    if (!f.name.trim()) problems.push({ field: "name", message: "is required" });
    const selector = {};
    const ids = f.ids.split(/[\s,]+/).filter(Boolean);
    if (ids.length) selector.device_ids = ids;
    const tags = parseTags(f.tags);
    if (Object.keys(tags).length) selector.tags = tags;
    if (f.site.trim()) selector.site = f.site.trim();
    if (f.platform.trim()) selector.platform = f.platform.trim();
    if (!Object.keys(selector).length) problems.push({ field: "selector", message: "needs at least one term: device ids, tags, site or platform" });
    const options = {};
    const t = f.timeout_s.trim();
    if (t !== "") {
      if (/^\d+$/.test(t) && Number(t) >= 1) options.timeout_s = Number(t);
      else problems.push({ field: "options.timeout_s", message: "must be a whole number of seconds, at least 1" });
    }
    if (f.stop_on_error) options.stop_on_error = true;
    const hadSchedule = !!(saved && saved.schedule);
    if (!f.cron.trim() && hadSchedule) problems.push({ field: "schedule.cron", message: "is required: pause the schedule rather than clear it" });
    if (problems.length) {
      setErrors(placeErrors(problems, sent));
      return;
    }
    const body = { name: f.name.trim(), selector, options };
    if (f.cron.trim()) body.schedule = { cron: f.cron.trim(), time_zone: f.time_zone.trim() || "UTC", enabled: f.enabled };
    if (commandsChanged) Object.assign(body, cmd);
    if (saved) body.version = saved.version;
    setBusy(true);
    try {
      const sj = saved ? await request("PATCH", `/v1/saved-jobs/${encodeURIComponent(saved.id)}`, { body }) : await post("/v1/saved-jobs", body);
      onSaved(sj);
    } catch (e) {
      const errs = placeErrors(e.details && e.details.length ? e.details : [{ field: e.field || "", message: e.message }], sent);
      if (e.code === "command_denied") errs["cmd:" + sent[0].key] = html`<${Denied} error=${e} />`;
      const placed = Object.keys(errs).some((k) => k.includes(":") || ["name", "selector", "commands", "options.timeout_s"].includes(k) || k.startsWith("selector.") || k.startsWith("schedule."));
      if (!placed) setGeneral(e.text || e.message);
      setErrors(errs);
      setTimeout(() => {
        const bad = formRef.current && formRef.current.querySelector("[aria-invalid='true']");
        if (bad) bad.focus();
      }, 0);
    } finally {
      setBusy(false);
    }
  }

  // errFor is the first error of a field or of a part of it (selector.device_ids[3], selector.tags.role).
  const errFor = (prefix) => {
    const k = Object.keys(errors).find((e) => e === prefix || e.startsWith(prefix + ".") || e.startsWith(prefix + "["));
    return k ? errors[k] : undefined;
  };
  const field = (k, id, label, input, hint, err) => html`<div class="field">
    <label for=${id}>${label}</label>${input}
    ${hint && html`<p class="hint" id=${id + "-hint"}>${hint}</p>`}
    <${FieldError} id=${id + "-error"} error=${err !== undefined ? err : errors[k]} /></div>`;
  const attrs = (id, err) => ({ id, "aria-invalid": err ? "true" : "false", "aria-describedby": [err && id + "-error", id + "-hint"].filter(Boolean).join(" ") });

  return html`<${Modal} title=${saved ? `Edit ${saved.name}` : "New saved job"} onClose=${onClose} wide>
    <form onSubmit=${submit} novalidate ref=${formRef}>
      ${field("name", "saved-name", "Name", html`<input ...${attrs("saved-name", errors.name)} value=${f.name} onInput=${set("name")} />`)}
      <fieldset class="options">
        <legend>Devices (all terms must hold)</legend>
        ${errors.selector && html`<p class="error" id="saved-selector-error" role="alert">${errors.selector}</p>`}
        ${field("", "saved-ids", "Device ids", html`<input ...${attrs("saved-ids", errFor("selector.device_ids"))} value=${f.ids} onInput=${set("ids")} placeholder="r1, r2" />`, "comma-separated; leave empty to select by the other terms", errFor("selector.device_ids"))}
        ${field("", "saved-tags", "Tags", html`<input ...${attrs("saved-tags", errFor("selector.tags"))} value=${f.tags} onInput=${set("tags")} placeholder="role=core, pod" />`, "key=value, or a key alone for any value", errFor("selector.tags"))}
        ${field("", "saved-site", "Site", html`<input ...${attrs("saved-site", errFor("selector.site"))} value=${f.site} onInput=${set("site")} size="12" />`, "", errFor("selector.site"))}
        ${field("", "saved-platform", "Platform", html`<input ...${attrs("saved-platform", errFor("selector.platform"))} value=${f.platform} onInput=${set("platform")} size="14" placeholder="cisco_iosxe" />`, "", errFor("selector.platform"))}
      </fieldset>
      ${hasSecret && !commandsChanged && html`<p class="hint" id="saved-secret-hint">Secret answers are kept and never shown. To change the commands, type every secret answer again.</p>`}
      <${CommandsEditor} base="saved" rows=${rows} setRows=${setRows} errors=${errors} onSubmitKey=${() => formRef.current.requestSubmit()} />
      <fieldset class="options">
        <legend>Options</legend>
        ${field("options.timeout_s", "saved-timeout", "Timeout (s)", html`<input ...${attrs("saved-timeout", errors["options.timeout_s"])}
          inputmode="numeric" value=${f.timeout_s} onInput=${set("timeout_s")} placeholder="60" size="6" />`, "per device")}
        <div class="field check"><label><input type="checkbox" id="saved-stop-on-error" checked=${f.stop_on_error} onChange=${set("stop_on_error")} /> Stop at the first error</label></div>
      </fieldset>
      <fieldset class="options">
        <legend>Schedule</legend>
        ${field("schedule.cron", "saved-cron", "Cron", html`<input ...${attrs("saved-cron", errors["schedule.cron"])} value=${f.cron} onInput=${set("cron")} placeholder="30 2 * * *" size="16" />`,
          "minute hour day-of-month month day-of-week, or @daily / @hourly; empty: only by hand")}
        ${field("schedule.time_zone", "saved-tz", "Time zone", html`<input ...${attrs("saved-tz", errors["schedule.time_zone"])} value=${f.time_zone} onInput=${set("time_zone")} placeholder="Europe/Berlin" size="18" list="saved-tz-list" />
          <datalist id="saved-tz-list">${timeZones().map((z) => html`<option value=${z} />`)}</datalist>`, "IANA name; the cron is read on this zone's clock")}
        <div class="field check"><label><input type="checkbox" id="saved-enabled" checked=${f.enabled} onChange=${set("enabled")} /> Enabled</label></div>
        ${saved && saved.schedule && saved.schedule.paused_reason && html`<p class="error" id="saved-paused-reason">Paused by the system: ${pausedText(saved.schedule.paused_reason)}. Enabling it again clears this.</p>`}
        ${saved && saved.next_runs && saved.next_runs.length > 0 && html`<div class="hint" id="saved-next-runs">Next runs (your clock):
          <ol>${saved.next_runs.map((t) => html`<li><time datetime=${t}>${fmtWhen(t)}</time></li>`)}</ol></div>`}
      </fieldset>
      ${general && html`<p class="error" role="alert" id="saved-error">${general}</p>`}
      <div class="modal-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary" type="submit" id="saved-submit" disabled=${busy}>Save</button>
      </div>
    </form>
  </${Modal}>`;
}

// timeZones are the IANA names the browser knows, for the time zone field's suggestions.
function timeZones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["UTC"];
  }
}

/** RerunDialog asks which statuses to run again and starts the re-run of a finished job. */
export function RerunDialog({ job, counts, onClose, flash, onStarted }) {
  const failing = ["failed", "timed_out", "unreachable", "auth_failed", "host_key_mismatch", "cancelled"];
  const all = [...failing, "succeeded"];
  const [picked, setPicked] = useState(() => new Set(failing.filter((s) => counts[s])));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const n = [...picked].reduce((sum, s) => sum + (counts[s] || 0), 0);
  async function submit(ev) {
    ev.preventDefault();
    setError("");
    if (!picked.size) {
      setError("Choose at least one status.");
      return;
    }
    setBusy(true);
    try {
      const acc = await post(`/v1/bulk/${encodeURIComponent(job.job_id)}/rerun`, { statuses: all.filter((s) => picked.has(s)) });
      onClose();
      flash({ kind: "ok", text: `Re-run ${acc.job_id} started on ${acc.device_count} device${acc.device_count === 1 ? "" : "s"}.` });
      onStarted(acc.job_id);
    } catch (e) {
      setError(e.text || e.message);
    } finally {
      setBusy(false);
    }
  }
  return html`<${Modal} title="Re-run devices of this job" onClose=${onClose}>
    <form onSubmit=${submit} novalidate>
      <fieldset><legend>Run again on the devices that ended</legend>
        ${all.map((s) => html`<div class="field check"><label><input type="checkbox" name="rerun-status" value=${s} checked=${picked.has(s)}
          disabled=${!counts[s]} onChange=${(e) => { const p = new Set(picked); if (e.currentTarget.checked) p.add(s); else p.delete(s); setPicked(p); }} />
          ${" "}${s.replace(/_/g, " ")} <span class="muted small">(${counts[s] || 0})</span></label></div>`)}
      </fieldset>
      ${error && html`<p class="error" role="alert" id="rerun-error">${error}</p>`}
      <div class="modal-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary" type="submit" id="rerun-submit" disabled=${busy || !n}>Re-run ${n} device${n === 1 ? "" : "s"}</button>
      </div>
    </form>
  </${Modal}>`;
}
