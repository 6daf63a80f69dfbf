// The run dialogs: a bulk command on the selected devices and a command on one device. Both take a
// sequence of commands with prompt answers (commands.js), requested_by (the signed-in user; admins
// may change it) and the options. Client-side checks mirror the API's; its field errors show
// under the field they name, a command the policy refuses under the command it names.
import { useState, useRef } from "preact/hooks";
import { html } from "./html.js";
import { post, identity, can } from "./api.js";
import { Modal, FieldError, Link, navigate } from "./ui.js";
import { CommandsEditor, newRow, commandsBody, checkCommands, placeErrors } from "./commands.js";

/** BulkModal runs commands on deviceIds as a bulk job and flashes a link to the job. */
export function BulkModal({ deviceIds, onClose, flash }) {
  return html`<${CommandDialog} deviceIds=${deviceIds} onClose=${onClose} flash=${flash} base="bulk" />`;
}

/** RunModal runs commands on one device (POST /v1/runs) and opens the run. */
export function RunModal({ deviceId, onClose, flash }) {
  return html`<${CommandDialog} deviceIds=${[deviceId]} single onClose=${onClose} flash=${flash} base="run" />`;
}

// OPTION_FIELDS are the option fields the dialogs show, by the API's names.
const OPTION_FIELDS = ["requested_by", "options.timeout_s", "options.max_concurrency", "options.max_errors", "options.stop_on_error"];

function CommandDialog({ deviceIds, single, onClose, flash, base }) {
  const me = identity();
  const admin = can("admin");
  const [rows, setRows] = useState(() => [newRow()]);
  const [f, setF] = useState({ requested_by: me ? me.name : "", timeout_s: "", max_concurrency: "", max_errors: "", stop_on_error: false });
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState("");
  const [busy, setBusy] = useState(false);
  const formRef = useRef(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });

  function showErrors(errs) {
    setErrors(errs);
    // Focus the first field in error so keyboard and screen reader users land on it.
    setTimeout(() => {
      const bad = formRef.current && formRef.current.querySelector("[aria-invalid='true']");
      if (bad) bad.focus();
    }, 0);
  }

  async function submit(ev) {
    ev.preventDefault();
    setErrors({});
    setGeneral("");
    const { body: cmd, sent } = commandsBody(rows);
    const problems = checkCommands(sent);
    const options = {};
    const t = f.timeout_s.trim();
    if (t !== "") {
      if (/^\d+$/.test(t) && Number(t) >= 1) options.timeout_s = Number(t);
      else problems.push({ field: "options.timeout_s", message: "must be a whole number of seconds, at least 1" });
    }
    // Numbers the browser cannot parse go to the API as they are, so its message names the field.
    const mc = f.max_concurrency.trim();
    if (!single && mc !== "") options.max_concurrency = /^-?\d+$/.test(mc) ? Number(mc) : mc;
    if (!single && f.max_errors.trim()) options.max_errors = f.max_errors.trim();
    if (f.stop_on_error) options.stop_on_error = true;
    if (problems.length) {
      showErrors(placeErrors(problems, sent));
      return;
    }
    const body = { ...cmd, options };
    if (single) body.device_id = deviceIds[0];
    else body.device_ids = deviceIds;
    if (admin && f.requested_by && f.requested_by !== (me && me.name)) body.requested_by = f.requested_by;
    setBusy(true);
    try {
      const acc = await post(single ? "/v1/runs" : "/v1/bulk", body);
      onClose();
      if (single) {
        flash({ kind: "ok", text: `Run ${acc.run_id} started on ${deviceIds[0]}.` });
        navigate("?run=" + encodeURIComponent(acc.run_id));
        return;
      }
      flash({
        kind: "ok", focus: true,
        content: html`Job <code>${acc.job_id}</code> started on ${acc.device_count} device${acc.device_count === 1 ? "" : "s"}.${" "}
          <${Link} to=${"?job=" + encodeURIComponent(acc.job_id)} id="flash-job-link">Open the job</${Link}>`,
      });
    } catch (e) {
      const errs = placeErrors(e.details || [], sent);
      if (e.code === "command_denied") {
        const [k] = Object.keys(placeErrors([{ field: e.field || "command", message: "" }], sent));
        errs[k] = html`<${Denied} error=${e} />`;
      }
      const placed = Object.keys(errs).some((k) => k.includes(":") || k === "commands" || OPTION_FIELDS.includes(k));
      if (!placed) setGeneral(e.text || e.message);
      showErrors(errs);
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
  const n = deviceIds.length;
  const title = single ? `Run commands on ${deviceIds[0]}` : "Run a bulk command";

  return html`<${Modal} title=${title} onClose=${onClose} wide>
    <form onSubmit=${submit} novalidate ref=${formRef}>
      ${!single && html`<p class="lead" id="bulk-count"><strong>${n}</strong> device${n === 1 ? "" : "s"} selected</p>`}
      <${CommandsEditor} base=${base} rows=${rows} setRows=${setRows} errors=${errors} onSubmitKey=${() => formRef.current.requestSubmit()} />
      ${field("requested_by", base + "-requested-by", "Requested by", html`<input ...${attrs("requested_by", base + "-requested-by")}
        value=${f.requested_by} onInput=${set("requested_by")} readonly=${!admin} />`, admin ? "Admins may run on someone's behalf." : "Your signed-in identity.")}
      <fieldset class="options">
        <legend>Options</legend>
        ${field("options.timeout_s", base + "-timeout", "Timeout (s)", html`<input ...${attrs("options.timeout_s", base + "-timeout")}
          inputmode="numeric" value=${f.timeout_s} onInput=${set("timeout_s")} placeholder="60" size="6" />`, "per device, the whole sequence")}
        ${!single && field("options.max_concurrency", "bulk-concurrency", "Max concurrency", html`<input ...${attrs("options.max_concurrency", "bulk-concurrency")}
          inputmode="numeric" value=${f.max_concurrency} onInput=${set("max_concurrency")} placeholder="no limit" size="8" />`, "devices at once")}
        ${!single && field("options.max_errors", "bulk-max-errors", "Max errors", html`<input ...${attrs("options.max_errors", "bulk-max-errors")}
          value=${f.max_errors} onInput=${set("max_errors")} placeholder="e.g. 10 or 5%" size="8" />`, "stop after more failures")}
        <div class="field check">
          <label><input type="checkbox" ...${attrs("options.stop_on_error", base + "-stop-on-error")} checked=${f.stop_on_error}
            onChange=${set("stop_on_error")} /> Stop at the first error</label>
          <p class="hint" id=${base + "-stop-on-error-hint"}>later commands are not sent once one fails (% Invalid input, a non-zero exit status…)</p>
          <${FieldError} id=${base + "-stop-on-error-error"} error=${errors["options.stop_on_error"]} />
        </div>
      </fieldset>
      ${general && html`<p class="error" role="alert" id=${base + "-error"}>${general}</p>`}
      <div class="modal-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary" type="submit" id=${base + "-submit"} disabled=${busy}>${single ? "Run" : `Run on ${n} device${n === 1 ? "" : "s"}`}</button>
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
