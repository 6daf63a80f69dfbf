// Credential profiles (admins): shared device credentials, listed without their secrets (only
// whether one is set), created, edited (allowed sites and tags, username), rotated and deleted.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, request, formErrors } from "./api.js";
import { FieldError } from "./ui.js";
import { list } from "./policy.js";
// Tags edit as "k=v, k2=v2; k=v3": each ";"-separated group is one set of tags a device must all carry.
const tagsText = (ts) => (ts || []).map((m) => Object.entries(m).map(([k, v]) => `${k}=${v}`).join(", ")).join("; ");
const parseTags = (s) => s.split(";").map((g) => Object.fromEntries(list(g).map((kv) => { const i = kv.indexOf("="); return i < 0 ? [kv, ""] : [kv.slice(0, i).trim(), kv.slice(i + 1).trim()]; }))).filter((m) => Object.keys(m).length);

const blank = { id: "", username: "", sites: "", tags: "", kind: "password", secret: "", passphrase: "" };

/** ProfilesPage lists and edits the credential profiles. */
export function ProfilesPage({ flash }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [form, setForm] = useState(null); // { ...fields, editing: profile or null }
  const [errs, setErrs] = useState({});
  const [general, setGeneral] = useState("");

  const load = () => get("/v1/credential-profiles").then((l) => setItems(l.items), setError);
  useEffect(() => { load(); }, []);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });

  function open(p) {
    setErrs({});
    setGeneral("");
    setForm(p ? { ...blank, id: p.id, username: p.username || "", sites: (p.allowed_sites || []).join(", "), tags: tagsText(p.allowed_tags), editing: p } : { ...blank });
  }

  async function submit(ev) {
    ev.preventDefault();
    setErrs({});
    setGeneral("");
    const secret = {};
    if (form.secret) {
      if (form.kind === "password") secret.password = form.secret;
      else {
        secret.private_key = form.secret;
        if (form.passphrase) secret.passphrase = form.passphrase;
      }
    }
    try {
      if (form.editing) {
        await request("PATCH", `/v1/credential-profiles/${encodeURIComponent(form.id)}`, {
          body: { username: form.username, allowed_sites: list(form.sites), allowed_tags: parseTags(form.tags), version: form.editing.version, ...secret },
        });
        flash({ kind: "ok", text: `Profile ${form.id} saved${form.secret ? " (secret rotated)" : ""}.` });
      } else {
        await post("/v1/credential-profiles", { id: form.id.trim(), username: form.username, allowed_sites: list(form.sites), allowed_tags: parseTags(form.tags), ...secret });
        flash({ kind: "ok", text: `Profile ${form.id} created.` });
      }
      setForm(null);
      load();
    } catch (e) {
      // The inputs on screen, by the API's field names (allowed_tags[1].k falls under allowed_tags).
      const inputs = [...(form.editing ? [] : ["id"]), "username", "allowed_sites", "allowed_tags", form.kind === "password" ? "password" : "private_key",
        ...(form.kind === "key" ? ["passphrase"] : [])];
      const { fields, general } = formErrors(e, inputs, {
        key: (f) => f.replace(/[[.].*$/, ""),
        conflict: `Profile ${form.id} was changed by someone else meanwhile. The list now shows the change: close and edit it again.`,
      });
      setErrs(fields);
      setGeneral(general);
      if (e.status === 409 && e.code === "version_conflict") load();
    }
  }

  async function remove(p) {
    if (!confirm(`Delete credential profile ${p.id}?`)) return;
    try {
      await request("DELETE", `/v1/credential-profiles/${encodeURIComponent(p.id)}`);
      flash({ kind: "ok", text: `Profile ${p.id} deleted.` });
      load();
    } catch (e) {
      const ids = (e.body && e.body.device_ids) || [];
      flash({ kind: "error", text: `${e.text || e.message}${ids.length ? ` — used by ${ids.join(", ")}` : ""}` });
    }
  }

  if (error) return html`<main id="main"><h1>Credential profiles</h1><p class="error" role="alert">${error.text || error.message}</p></main>`;
  if (!items) return html`<main id="main"><h1>Credential profiles</h1><p aria-busy="true">Loading…</p></main>`;
  const field = (k, wire, label, input, hint) => html`<div class="field"><label for=${"prof-" + k}>${label}</label>${input}
    ${hint && html`<p class="hint">${hint}</p>`}<${FieldError} id=${"prof-" + k + "-error"} error=${errs[wire]} /></div>`;
  return html`<main id="main" class="profiles-page">
    <div class="page-head"><h1>Credential profiles</h1>
      <div class="actions"><button class="primary" id="profile-new" onClick=${() => open(null)}>New profile</button></div></div>
    <p class="muted">A device names a profile to use its credential; the profile is used only on devices of its allowed sites and tags. Secrets are write-only.</p>
    <table class="plain" id="profiles"><thead><tr><th scope="col">ID</th><th scope="col">Username</th><th scope="col">Allowed sites</th>
      <th scope="col">Allowed tags</th><th scope="col">Secret</th><th scope="col">Version</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
      ${items.length === 0 && html`<tr><td colspan="7" class="muted">No profiles yet.</td></tr>`}
      ${items.map((p) => html`<tr data-id=${p.id}><td><code>${p.id}</code></td><td>${p.username || "—"}</td><td>${(p.allowed_sites || []).join(", ") || "—"}</td>
        <td>${tagsText(p.allowed_tags) || "—"}</td><td>${p.has_secret ? "set" : html`<span class="warn">none</span>`}</td><td>${p.version}</td>
        <td class="nowrap"><button class="small" onClick=${() => open(p)}>Edit / rotate</button> <button class="small danger" onClick=${() => remove(p)}>Delete</button></td></tr>`)}
    </tbody></table>
    ${form && html`<form onSubmit=${submit} novalidate class="profile-form" aria-labelledby="prof-title">
      <h2 id="prof-title">${form.editing ? `Edit ${form.id}` : "New profile"}</h2>
      ${!form.editing && field("id", "id", "ID", html`<input id="prof-id" value=${form.id} onInput=${set("id")} />`)}
      ${field("username", "username", "Username", html`<input id="prof-username" value=${form.username} onInput=${set("username")} />`)}
      ${field("sites", "allowed_sites", "Allowed sites", html`<input id="prof-sites" value=${form.sites} onInput=${set("sites")} placeholder="ams1, fra2" />`, "comma-separated")}
      ${field("tags", "allowed_tags", "Allowed tags", html`<input id="prof-tags" value=${form.tags} onInput=${set("tags")} placeholder="role=edge; env=lab" />`, "k=v pairs; ';' separates alternatives")}
      <div class="field"><label for="prof-kind">Secret</label><select id="prof-kind" value=${form.kind} onChange=${set("kind")}>
        <option value="password">password</option><option value="key">private key</option></select></div>
      ${field("secret", form.kind === "password" ? "password" : "private_key", form.editing ? "New secret (leave empty to keep)" : "Secret",
        form.kind === "password" ? html`<input id="prof-secret" type="password" autocomplete="new-password" value=${form.secret} onInput=${set("secret")} />`
          : html`<textarea id="prof-secret" rows="4" spellcheck="false" value=${form.secret} onInput=${set("secret")}></textarea>`)}
      ${form.kind === "key" && field("passphrase", "passphrase", "Passphrase", html`<input id="prof-passphrase" type="password" autocomplete="off" value=${form.passphrase} onInput=${set("passphrase")} />`)}
      ${general && html`<p class="error" role="alert" id="profile-error">${general}</p>`}
      <div class="modal-actions"><button type="button" onClick=${() => setForm(null)}>Cancel</button>
        <button class="primary" type="submit" id="profile-save">${form.editing ? "Save" : "Create"}</button></div>
    </form>`}
  </main>`;
}
