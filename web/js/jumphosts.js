// Jump hosts (admins): the SSH bastions devices are reached through, listed without their
// credentials (only whether one is set), with a pending host key's warning and Accept, created,
// edited, rotated and deleted (a jump host still in devices' chains is refused, and the page says
// how many use it). JumpChainField is the device form's ordered pick of 1-3 of them.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, request, formErrors } from "./api.js";
import { FieldError, fmtTime } from "./ui.js";

const blank = { id: "", host: "", port: "22", username: "", kind: "password", secret: "", passphrase: "", host_key: "", trust_on_first_use: false };

/** JumpHostsPage lists and edits the jump hosts. */
export function JumpHostsPage({ flash }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [form, setForm] = useState(null); // { ...fields, editing: jump host or null }
  const [errs, setErrs] = useState({});
  const [general, setGeneral] = useState("");

  const load = () => get("/v1/jump-hosts").then((l) => setItems(l.items), setError);
  useEffect(() => { load(); }, []);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });

  function open(h) {
    setErrs({});
    setGeneral("");
    setForm(h ? { ...blank, id: h.id, host: h.host, port: String(h.port), username: h.username, kind: h.auth_method === "private-key" ? "key" : "password",
      host_key: h.host_key || "", trust_on_first_use: h.trust_on_first_use, editing: h } : { ...blank });
  }

  async function submit(ev) {
    ev.preventDefault();
    setErrs({});
    setGeneral("");
    const body = { host: form.host.trim(), port: Number(form.port), username: form.username.trim(), trust_on_first_use: form.trust_on_first_use };
    if (form.host_key.trim() || form.editing) body.host_key = form.host_key.trim();
    if (form.secret) {
      // The method goes with the secret, so a password can be replaced by a key and back.
      body.auth_method = form.kind === "password" ? "password" : "private-key";
      if (form.kind === "password") body.password = form.secret;
      else {
        body.private_key = form.secret;
        if (form.passphrase) body.passphrase = form.passphrase;
      }
    }
    try {
      if (form.editing) {
        const h = await request("PATCH", `/v1/jump-hosts/${encodeURIComponent(form.id)}`, { body: { ...body, version: form.editing.version } });
        const dropped = form.editing.has_credential && !h.has_credential;
        flash({ kind: dropped ? "error" : "ok", text: `Jump host ${form.id} saved${form.secret ? " (credential replaced)" : ""}${dropped ? ": its address changed, so its credential was dropped; give it a new one" : ""}.` });
      } else {
        await post("/v1/jump-hosts", { id: form.id.trim(), ...body });
        flash({ kind: "ok", text: `Jump host ${form.id} created.` });
      }
      setForm(null);
      load();
    } catch (e) {
      // The inputs on screen, by the API's field names.
      const inputs = [...(form.editing ? [] : ["id"]), "host", "port", "username", form.kind === "password" ? "password" : "private_key",
        ...(form.kind === "key" ? ["passphrase"] : []), "host_key"];
      const { fields, general } = formErrors(e, inputs, { conflict: `Jump host ${form.id} was changed by someone else meanwhile. The list now shows the change: close and edit it again.` });
      setErrs(fields);
      setGeneral(general);
      if (e.status === 409 && e.code === "version_conflict") load();
    }
  }

  async function remove(h) {
    if (!confirm(`Delete jump host ${h.id}?`)) return;
    try {
      await request("DELETE", `/v1/jump-hosts/${encodeURIComponent(h.id)}`);
      flash({ kind: "ok", text: `Jump host ${h.id} deleted.` });
      load();
    } catch (e) {
      flash({ kind: "error", text: e.code === "jump_host_in_use" ? `Jump host ${h.id} is still in use: ${e.message}` : e.text || e.message });
    }
  }

  async function accept(h) {
    try {
      const got = await post(`/v1/jump-hosts/${encodeURIComponent(h.id)}/host-key/accept`, { fingerprint: h.pending_host_key.fingerprint });
      flash({ kind: "ok", text: `Pinned ${got.host_key_fingerprint} on jump host ${h.id}: its devices are reached through it again.` });
    } catch (e) {
      flash({ kind: "error", text: e.code === "host_key_not_pending" ? `${e.message} (${e.code})` : e.text || e.message });
    }
    load();
  }

  if (error) return html`<main id="main"><h1>Jump hosts</h1><p class="error" role="alert">${error.text || error.message}</p></main>`;
  if (!items) return html`<main id="main"><h1>Jump hosts</h1><p aria-busy="true">Loading…</p></main>`;
  const field = (k, wire, label, input, hint) => html`<div class="field"><label for=${"jump-" + k}>${label}</label>${input}
    ${hint && html`<p class="hint">${hint}</p>`}<${FieldError} id=${"jump-" + k + "-error"} error=${errs[wire]} /></div>`;
  const pending = items.filter((h) => h.pending_host_key);
  return html`<main id="main" class="jump-hosts-page">
    <div class="page-head"><h1>Jump hosts</h1>
      <div class="actions"><button class="primary" id="jump-new" onClick=${() => open(null)}>New jump host</button></div></div>
    <p class="muted">Bastions that devices are reached through: a device's jump chain names 1-3 of them, dialled in order. Credentials are write-only.</p>
    ${pending.map((h) => html`<div class="key-warning" role="alert" data-pending=${h.id}>
      <p><strong>Jump host ${h.id} offered a different host key</strong> than the pinned one, so every device behind it ends
        <code>host_key_mismatch</code> (<code>jump_host_key_mismatch</code>) and nothing is sent through it. Check the fingerprint
        with the bastion's owner before accepting it.</p>
      <dl class="summary"><div><dt>Offered key</dt><dd class="mono">${h.pending_host_key.fingerprint}</dd></div>
        <div><dt>Seen at</dt><dd>${fmtTime(h.pending_host_key.seen_at)}</dd></div></dl>
      <button class="danger" data-accept=${h.id} onClick=${() => accept(h)}>Accept this key</button></div>`)}
    <table class="plain" id="jump-hosts"><thead><tr><th scope="col">ID</th><th scope="col">Address</th><th scope="col">Username</th>
      <th scope="col">Host key</th><th scope="col">Credential</th><th scope="col">Version</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
      ${items.length === 0 && html`<tr><td colspan="7" class="muted">No jump hosts yet.</td></tr>`}
      ${items.map((h) => html`<tr data-id=${h.id}><td><code>${h.id}</code></td><td>${h.host}:${h.port}</td><td>${h.username}</td>
        <td class="mono">${h.pending_host_key ? html`<span class="warn">pending</span>` : h.host_key_fingerprint || (h.trust_on_first_use ? "learned on first use" : html`<span class="warn">none</span>`)}</td>
        <td>${h.has_credential ? "set" : html`<span class="warn">none</span>`}</td><td>${h.version}</td>
        <td class="nowrap"><button class="small" onClick=${() => open(h)}>Edit / rotate</button> <button class="small danger" onClick=${() => remove(h)}>Delete</button></td></tr>`)}
    </tbody></table>
    ${form && html`<form onSubmit=${submit} novalidate class="profile-form" aria-labelledby="jump-title">
      <h2 id="jump-title">${form.editing ? `Edit ${form.id}` : "New jump host"}</h2>
      ${!form.editing && field("id", "id", "ID", html`<input id="jump-id" value=${form.id} onInput=${set("id")} />`)}
      ${field("host", "host", "Host", html`<input id="jump-host" value=${form.host} onInput=${set("host")} placeholder="203.0.113.10" />`)}
      ${field("port", "port", "Port", html`<input id="jump-port" inputmode="numeric" value=${form.port} onInput=${set("port")} />`)}
      ${field("username", "username", "Username", html`<input id="jump-username" autocomplete="off" value=${form.username} onInput=${set("username")} />`)}
      <div class="field"><label for="jump-kind">Credential</label><select id="jump-kind" value=${form.kind} onChange=${set("kind")}>
        <option value="password">password</option><option value="key">private key</option></select></div>
      ${field("secret", form.kind === "password" ? "password" : "private_key", form.editing ? "New credential (leave empty to keep)" : "Password or key",
        form.kind === "password" ? html`<input id="jump-secret" type="password" autocomplete="new-password" value=${form.secret} onInput=${set("secret")} />`
          : html`<textarea id="jump-secret" rows="4" spellcheck="false" value=${form.secret} onInput=${set("secret")}></textarea>`,
        form.editing ? "a new host or port drops the stored credential unless you give one here" : "")}
      ${form.kind === "key" && field("passphrase", "passphrase", "Passphrase", html`<input id="jump-passphrase" type="password" autocomplete="off" value=${form.passphrase} onInput=${set("passphrase")} />`)}
      ${field("host_key", "host_key", "Host key (authorized_keys form)", html`<input id="jump-host-key" value=${form.host_key} onInput=${set("host_key")} placeholder="ssh-ed25519 AAAA..." />`)}
      <div class="field check"><label><input type="checkbox" id="jump-tofu" checked=${form.trust_on_first_use} onChange=${set("trust_on_first_use")} />
        Trust the host key on first use</label></div>
      ${general && html`<p class="error" role="alert" id="jump-error">${general}</p>`}
      <div class="modal-actions"><button type="button" onClick=${() => setForm(null)}>Cancel</button>
        <button class="primary" type="submit" id="jump-save">${form.editing ? "Save" : "Create"}</button></div>
    </form>`}
  </main>`;
}

/** JumpChainField picks a device's jump chain: up to three jump hosts in order, each next one
 * offered once the one before is chosen. value is the chain (ids); onChange gets the new chain. */
export function JumpChainField({ value, onChange, error, idPrefix = "dev-jump" }) {
  const [hosts, setHosts] = useState(null);
  const [loadError, setLoadError] = useState("");
  useEffect(() => { get("/v1/jump-hosts").then((l) => setHosts(l.items.map((h) => h.id)), (e) => setLoadError(e.text || e.message)); }, []);
  const chain = value || [];
  const pick = (i) => (ev) => {
    const next = chain.slice(0, i);
    if (ev.target.value) next.push(ev.target.value);
    onChange(next);
  };
  const slots = Math.min(3, chain.length + 1);
  return html`<fieldset class="field jump-chain" aria-describedby=${error ? idPrefix + "_host_ids-error" : undefined}>
    <legend>Jump hosts, in order</legend>
    ${loadError && html`<p class="muted small">The jump hosts cannot be listed (${loadError}); the chain stays ${chain.join(" → ") || "direct"}.</p>`}
    ${!loadError && hosts && [...Array(slots).keys()].map((i) => html`<label class="chain-hop">${i === 0 ? "First" : "then"}
      <select id=${idPrefix + "-" + i} value=${chain[i] || ""} onChange=${pick(i)}>
        <option value="">${i === 0 ? "none (direct)" : "none"}</option>
        ${hosts.filter((h) => h === chain[i] || !chain.includes(h)).map((h) => html`<option value=${h}>${h}</option>`)}
      </select></label>`)}
    <${FieldError} id=${idPrefix + "_host_ids-error"} error=${error} />
  </fieldset>`;
}
