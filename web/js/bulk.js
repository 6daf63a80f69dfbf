// The bulk command dialog: command, requested_by (the signed-in user; admins may change it), the
// selected device count and the job options. The API validates; its field errors show inline.
import { useState, useRef } from "preact/hooks";
import { html } from "./html.js";
import { post, identity, can } from "./api.js";
import { Modal, FieldError, Link } from "./ui.js";

export function BulkModal({ deviceIds, onClose, flash }) {
  const me = identity();
  const admin = can("admin");
  const [f, setF] = useState({ command: "", requested_by: me ? me.email : "", timeout_s: "", max_concurrency: "", max_errors: "" });
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState("");
  const [busy, setBusy] = useState(false);
  const formRef = useRef(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });

  async function submit(ev) {
    ev.preventDefault();
    setBusy(true);
    setErrors({});
    setGeneral("");
    const options = {};
    // Numbers the browser cannot parse go to the API as they are, so its message names the field.
    const num = (s) => (s.trim() === "" ? undefined : /^-?\d+$/.test(s.trim()) ? Number(s) : s);
    if (num(f.timeout_s) !== undefined) options.timeout_s = num(f.timeout_s);
    if (num(f.max_concurrency) !== undefined) options.max_concurrency = num(f.max_concurrency);
    if (f.max_errors.trim()) options.max_errors = f.max_errors.trim();
    const body = { command: f.command, device_ids: deviceIds, options };
    if (admin && f.requested_by && f.requested_by !== (me && me.email)) body.requested_by = f.requested_by;
    try {
      const acc = await post("/v1/bulk", body);
      onClose();
      flash({
        kind: "ok", focus: true,
        content: html`Job <code>${acc.job_id}</code> started on ${acc.device_count} device${acc.device_count === 1 ? "" : "s"}.${" "}
          <${Link} to=${"?job=" + encodeURIComponent(acc.job_id)} id="flash-job-link">Open the job</${Link}>`,
      });
    } catch (e) {
      const errs = {};
      for (const d of e.details || []) errs[d.field] = d.message;
      if (e.code === "command_denied") errs.command = html`<${Denied} error=${e} />`;
      const known = ["command", "requested_by", "options.timeout_s", "options.max_concurrency", "options.max_errors"];
      if (!e.field || !known.includes(e.field)) setGeneral(e.text || e.message);
      setErrors(errs);
      // Focus the first field in error so keyboard and screen reader users land on it.
      setTimeout(() => {
        const bad = formRef.current && formRef.current.querySelector("[aria-invalid='true']");
        if (bad) bad.focus();
      }, 0);
    } finally {
      setBusy(false);
    }
  }

  const field = (k, id, label, input, hint) => html`<div class="field">
    <label for=${id}>${label}</label>${input}
    ${hint && html`<p class="hint" id=${id + "-hint"}>${hint}</p>`}
    <${FieldError} id=${id + "-error"} error=${errors[k]} /></div>`;
  const attrs = (k, id) => ({
    id, "aria-invalid": errors[k] ? "true" : "false",
    "aria-describedby": [errors[k] && id + "-error", id + "-hint"].filter(Boolean).join(" "),
  });

  return html`<${Modal} title="Run a bulk command" onClose=${onClose}>
    <form onSubmit=${submit} novalidate ref=${formRef}>
      <p class="lead" id="bulk-count"><strong>${deviceIds.length}</strong> device${deviceIds.length === 1 ? "" : "s"} selected</p>
      ${field("command", "bulk-command", "Command", html`<textarea ...${attrs("command", "bulk-command")} rows="3" spellcheck="false"
        value=${f.command} onInput=${set("command")} data-autofocus
        onKeyDown=${(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); formRef.current.requestSubmit(); } }}></textarea>`,
        "One line, e.g. show version. Ctrl+Enter runs it.")}
      ${field("requested_by", "bulk-requested-by", "Requested by", html`<input ...${attrs("requested_by", "bulk-requested-by")}
        value=${f.requested_by} onInput=${set("requested_by")} readonly=${!admin} />`, admin ? "Admins may run on someone's behalf." : "Your signed-in identity.")}
      <fieldset class="options">
        <legend>Options</legend>
        ${field("options.timeout_s", "bulk-timeout", "Timeout (s)", html`<input ...${attrs("options.timeout_s", "bulk-timeout")}
          inputmode="numeric" value=${f.timeout_s} onInput=${set("timeout_s")} placeholder="60" size="6" />`, "per device, 1–240")}
        ${field("options.max_concurrency", "bulk-concurrency", "Max concurrency", html`<input ...${attrs("options.max_concurrency", "bulk-concurrency")}
          inputmode="numeric" value=${f.max_concurrency} onInput=${set("max_concurrency")} placeholder="no limit" size="8" />`, "devices at once")}
        ${field("options.max_errors", "bulk-max-errors", "Max errors", html`<input ...${attrs("options.max_errors", "bulk-max-errors")}
          value=${f.max_errors} onInput=${set("max_errors")} placeholder="e.g. 10 or 5%" size="8" />`, "stop after more failures")}
      </fieldset>
      ${general && html`<p class="error" role="alert" id="bulk-error">${general}</p>`}
      <div class="modal-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary" type="submit" id="bulk-submit" disabled=${busy}>Run on ${deviceIds.length} device${deviceIds.length === 1 ? "" : "s"}</button>
      </div>
    </form>
  </${Modal}>`;
}

/**
 * Denied shows a command the policy refused: the API's message (with the reason and rule), the
 * rule id and the refused device ids, so the user can see which devices to leave out.
 */
export function Denied({ error }) {
  const b = (error.body && error.body.error) || {};
  const ids = b.devices || [];
  return html`<span class="denied" data-rule=${b.rule || ""}>${error.message}
    <br />Rule <code class="denied-rule">${b.rule}</code>; refused on ${ids.length} device${ids.length === 1 ? "" : "s"}:${" "}
    <span class="denied-devices mono">${ids.join(", ")}</span></span>`;
}
