// Webhooks (admins): where NetAuto's events are POSTed, signed. Listed without their URLs (only
// scheme and host) and signing secrets; created (the signing secret is shown once, then never
// again), edited (filter, format, allowed ranges, a new URL, which gets a new signing secret shown
// once: the old receiver knows the old one), enabled or disabled with a visible reason, tested,
// their secret rotated, and each one's delivery log read newest first.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, request, formErrors } from "./api.js";
import { FieldError, fmtTime } from "./ui.js";
import { list } from "./policy.js";

const EVENTS = ["Job Finished", "Output Changed", "Host Key Mismatch"];
const blank = { name: "", url: "", events: [], format: "json", cidrs: "" };

// INPUTS are the form's inputs by the API's field names; events[N] fall under events.
const INPUTS = ["name", "url", "events", "format", "allow_private_cidrs"];
const inputOf = (field) => field.replace(/\[\d+\]$/, "");

/** WebhooksPage lists and edits the webhooks and shows one's delivery log. */
export function WebhooksPage({ flash }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [form, setForm] = useState(null); // { ...fields, editing: webhook or null }
  const [errs, setErrs] = useState({});
  const [general, setGeneral] = useState("");
  const [secret, setSecret] = useState(null); // { name, value } shown once
  const [log, setLog] = useState(null); // { hook, items, next }

  const load = () => get("/v1/webhooks").then((l) => setItems(l.items), setError);
  useEffect(() => { load(); }, []);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const toggleEvent = (name) => (e) => setForm({ ...form, events: e.target.checked ? [...form.events, name] : form.events.filter((x) => x !== name) });

  function open(h) {
    setErrs({});
    setGeneral("");
    setForm(h ? { ...blank, name: h.name, events: [...h.events], format: h.format, cidrs: h.allow_private_cidrs.join(", "), editing: h } : { ...blank });
  }

  async function submit(ev) {
    ev.preventDefault();
    setErrs({});
    setGeneral("");
    const body = { name: form.name.trim(), events: form.events, format: form.format, allow_private_cidrs: list(form.cidrs) };
    if (form.url.trim()) body.url = form.url.trim();
    try {
      if (form.editing) {
        // A new URL gets a new signing secret (the API refuses one without): shown once, like a rotation.
        const patch = { ...body, version: form.editing.version, ...(body.url ? { rotate_secret: true } : {}) };
        const h = await request("PATCH", `/v1/webhooks/${encodeURIComponent(form.editing.id)}`, { body: patch });
        if (h && h.signing_secret) setSecret({ name: h.name, value: h.signing_secret });
        flash({ kind: "ok", text: `Webhook ${body.name} saved${body.url ? " (new URL and a new signing secret)" : ""}.` });
      } else {
        const h = await post("/v1/webhooks", body);
        setSecret({ name: h.name, value: h.signing_secret });
      }
      setForm(null);
      load();
    } catch (e) {
      const { fields, general } = formErrors(e, INPUTS, {
        key: inputOf, message: (d) => `${d.field}: ${d.message}`,
        conflict: `Webhook ${form.editing ? form.editing.name : body.name} was changed by someone else meanwhile. The list now shows the change: close and edit it again.`,
      });
      setErrs(fields);
      setGeneral(general);
      if (e.status === 409 && e.code === "version_conflict") load();
    }
  }

  async function setEnabled(h, enabled) {
    try {
      await request("PATCH", `/v1/webhooks/${encodeURIComponent(h.id)}`, { body: { enabled, version: h.version } });
      flash({ kind: "ok", text: `Webhook ${h.name} ${enabled ? "enabled" : "disabled"}.` });
    } catch (e) {
      flash({ kind: "error", text: e.text || e.message });
    }
    load();
  }

  async function test(h) {
    try {
      const a = await post(`/v1/webhooks/${encodeURIComponent(h.id)}/test`);
      const result = a.status_code ? `HTTP ${a.status_code}${a.error ? ": " + a.error : ""}` : a.error;
      flash({ kind: a.outcome === "delivered" ? "ok" : "error", text: `Test delivery to ${h.name}: ${a.outcome} (${result}, ${a.duration_ms} ms).` });
      if (log && log.hook.id === h.id) showLog(h);
    } catch (e) {
      flash({ kind: "error", text: e.text || e.message });
    }
  }

  async function rotate(h) {
    if (!confirm(`Give webhook ${h.name} a new signing secret? Its receiver must be given the new one.`)) return;
    try {
      const got = await post(`/v1/webhooks/${encodeURIComponent(h.id)}/rotate-secret`);
      setSecret({ name: got.name, value: got.signing_secret });
    } catch (e) {
      flash({ kind: "error", text: e.text || e.message });
    }
  }

  async function remove(h) {
    if (!confirm(`Delete webhook ${h.name}?`)) return;
    try {
      await request("DELETE", `/v1/webhooks/${encodeURIComponent(h.id)}`);
      flash({ kind: "ok", text: `Webhook ${h.name} deleted.` });
      if (log && log.hook.id === h.id) setLog(null);
      load();
    } catch (e) {
      flash({ kind: "error", text: e.text || e.message });
    }
  }

  async function showLog(h, cursor) {
    try {
      const page = await get(`/v1/webhooks/${encodeURIComponent(h.id)}/deliveries${cursor ? "?cursor=" + encodeURIComponent(cursor) : ""}`);
      setLog((prev) => ({ hook: h, items: cursor && prev ? [...prev.items, ...page.items] : page.items, next: page.next || "" }));
    } catch (e) {
      flash({ kind: "error", text: e.text || e.message });
    }
  }

  if (error) return html`<main id="main"><h1>Webhooks</h1><p class="error" role="alert">${error.text || error.message}</p></main>`;
  if (!items) return html`<main id="main"><h1>Webhooks</h1><p aria-busy="true">Loading…</p></main>`;
  const field = (k, wire, label, input, hint) => html`<div class="field"><label for=${"hook-" + k}>${label}</label>${input}
    ${hint && html`<p class="hint" id=${"hook-" + k + "-hint"}>${hint}</p>`}<${FieldError} id=${"hook-" + k + "-error"} error=${errs[wire]} /></div>`;
  return html`<main id="main" class="webhooks-page">
    <div class="page-head"><h1>Webhooks</h1>
      <div class="actions"><button class="primary" id="hook-new" onClick=${() => open(null)}>New webhook</button></div></div>
    <p class="muted">NetAuto POSTs its events (a job finished, output changed, a host key mismatch) to these URLs, signed with
      HMAC-SHA256 (<code>X-NetAuto-Signature</code>). URLs and signing secrets are write-only. A failed delivery is retried after
      10 s, 1 min, 5 min and 15 min; a webhook whose deliveries fail 5 times in a row is disabled.</p>
    ${secret && html`<div class="key-warning" role="alert" id="hook-secret-panel">
      <p><strong>The signing secret of webhook ${secret.name}</strong>, shown this once: give it to the receiver now, it cannot be read again.</p>
      <p><code id="hook-secret" class="mono">${secret.value}</code></p>
      <button class="primary" id="hook-secret-done" onClick=${() => setSecret(null)}>I have stored it</button></div>`}
    <table class="plain" id="webhooks"><thead><tr><th scope="col">Name</th><th scope="col">Endpoint</th><th scope="col">Events</th>
      <th scope="col">Format</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
      ${items.length === 0 && html`<tr><td colspan="6" class="muted">No webhooks yet.</td></tr>`}
      ${items.map((h) => html`<tr data-id=${h.id} data-enabled=${String(h.enabled)}><td>${h.name}</td><td class="mono">${h.endpoint}</td>
        <td>${h.events.length ? h.events.join(", ") : "all"}</td><td>${h.format}</td>
        <td>${h.enabled ? (h.failed_deliveries ? html`enabled <span class="warn">(${h.failed_deliveries} failed in a row)</span>` : "enabled")
          : html`<span class="warn">disabled</span><br /><span class="small" data-reason>${h.disabled_reason}</span>`}</td>
        <td class="nowrap"><button class="small" onClick=${() => open(h)} aria-label=${"Edit " + h.name}>Edit</button>${" "}
          <button class="small" onClick=${() => setEnabled(h, !h.enabled)} aria-label=${(h.enabled ? "Disable " : "Enable ") + h.name}>${h.enabled ? "Disable" : "Enable"}</button>${" "}
          <button class="small" onClick=${() => test(h)} aria-label=${"Test " + h.name}>Test</button>${" "}
          <button class="small" onClick=${() => showLog(h)} aria-label=${"Deliveries of " + h.name}>Deliveries</button>${" "}
          <button class="small" onClick=${() => rotate(h)} aria-label=${"Rotate secret of " + h.name}>Rotate secret</button>${" "}
          <button class="small danger" onClick=${() => remove(h)} aria-label=${"Delete " + h.name}>Delete</button></td></tr>`)}
    </tbody></table>
    ${form && html`<form onSubmit=${submit} novalidate class="profile-form" aria-labelledby="hook-title">
      <h2 id="hook-title">${form.editing ? `Edit ${form.editing.name}` : "New webhook"}</h2>
      ${field("name", "name", "Name", html`<input id="hook-name" value=${form.name} onInput=${set("name")} />`)}
      ${field("url", "url", form.editing ? `New URL (leave empty to keep ${form.editing.endpoint}/…)` : "URL",
        html`<input id="hook-url" type="password" autocomplete="off" spellcheck="false" value=${form.url} onInput=${set("url")} aria-describedby="hook-url-hint" />`,
        form.editing ? "https; a write-only secret, shown afterwards as scheme and host only. A new URL gets a new signing secret, shown once after saving: the receiver at the old URL knows the current one"
          : "https; a write-only secret (it often carries a token), shown afterwards as scheme and host only")}
      <fieldset class="field" aria-describedby="hook-events-hint"><legend>Events</legend>
        ${EVENTS.map((name, i) => html`<label class="check"><input type="checkbox" id=${"hook-event-" + i} checked=${form.events.includes(name)} onChange=${toggleEvent(name)} /> ${name}</label>`)}
        <p class="hint" id="hook-events-hint">none ticked: every event</p>
        <${FieldError} id="hook-events-error" error=${errs.events} /></fieldset>
      <div class="field"><label for="hook-format">Body</label><select id="hook-format" value=${form.format} onChange=${set("format")}>
        <option value="json">JSON: the whole event</option><option value="slack">Slack-compatible text</option></select>
        <${FieldError} id="hook-format-error" error=${errs.format} /></div>
      ${field("cidrs", "allow_private_cidrs", "Allowed private ranges", html`<input id="hook-cidrs" value=${form.cidrs} onInput=${set("cidrs")} placeholder="10.1.2.0/24" aria-describedby="hook-cidrs-hint" />`,
        "comma-separated; private, loopback and link-local addresses are refused unless listed here, and http is allowed only to them")}
      ${general && html`<p class="error" role="alert" id="hook-error">${general}</p>`}
      <div class="modal-actions"><button type="button" onClick=${() => setForm(null)}>Cancel</button>
        <button class="primary" type="submit" id="hook-save">${form.editing ? "Save" : "Create"}</button></div>
    </form>`}
    ${log && html`<section aria-labelledby="hook-log-title" id="hook-log">
      <h2 id="hook-log-title">Deliveries of ${log.hook.name}</h2>
      <table class="plain"><thead><tr><th scope="col">At</th><th scope="col">Event</th><th scope="col">Event ID</th><th scope="col">Attempt</th>
        <th scope="col">Outcome</th><th scope="col">Result</th><th scope="col">Duration</th></tr></thead><tbody>
        ${log.items.length === 0 && html`<tr><td colspan="7" class="muted">No deliveries in the last 30 days.</td></tr>`}
        ${log.items.map((a) => html`<tr data-outcome=${a.outcome}><td>${fmtTime(a.at)}</td><td>${a.detail_type}</td><td class="mono">${a.event_id}</td>
          <td>${a.attempt}</td><td>${a.outcome === "delivered" ? a.outcome : html`<span class="warn">${a.outcome}</span>`}${a.next_attempt_at ? html`<br /><span class="small">next ${fmtTime(a.next_attempt_at)}</span>` : ""}</td>
          <td>${a.status_code ? "HTTP " + a.status_code : ""}${a.error ? html`${a.status_code ? " " : ""}<span class="small">${a.error}</span>` : ""}</td><td>${a.duration_ms} ms</td></tr>`)}
      </tbody></table>
      ${log.next && html`<button class="small" id="hook-log-more" onClick=${() => showLog(log.hook, log.next)}>Older deliveries</button>`}
    </section>`}
  </main>`;
}
