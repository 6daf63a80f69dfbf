// The command policy (admins): the ordered rules, edited in place and saved whole with the version
// they replace, and a box that asks the API what the policy says of a command on some devices.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, request } from "./api.js";
import { FieldError } from "./ui.js";

/** list splits a comma-separated input into its trimmed, non-empty items. */
export const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);

// toForm turns a wire rule into the strings the inputs edit.
function toForm(r) {
  return { id: r.id || "", effect: r.effect || "deny", roles: (r.roles || []).join(", "), platforms: (r.platforms || []).join(", "), pattern: r.pattern || "", reason: r.reason || "" };
}

function toWire(f) {
  const r = { id: f.id.trim(), effect: f.effect, pattern: f.pattern, reason: f.reason };
  if (list(f.roles).length) r.roles = list(f.roles);
  if (list(f.platforms).length) r.platforms = list(f.platforms);
  return r;
}

/** PolicyPage shows and edits the command policy. */
export function PolicyPage({ flash }) {
  const [pol, setPol] = useState(null);
  const [rules, setRules] = useState([]);
  const [error, setError] = useState(null);
  const [saveErr, setSaveErr] = useState(null);
  const [busy, setBusy] = useState(false);

  async function load() {
    setSaveErr(null);
    try {
      const p = await get("/v1/policy");
      setPol(p);
      setRules(p.rules.map(toForm));
    } catch (e) {
      setError(e);
    }
  }
  useEffect(() => { load(); }, []);

  const edit = (i, k) => (e) => setRules(rules.map((r, j) => (j === i ? { ...r, [k]: e.target.value } : r)));
  const move = (i, d) => {
    const next = rules.slice();
    [next[i], next[i + d]] = [next[i + d], next[i]];
    setRules(next);
  };
  const remove = (i) => setRules(rules.filter((_, j) => j !== i));
  const add = () => setRules([...rules, toForm({ effect: "allow" })]);

  async function save(ev) {
    ev.preventDefault();
    setBusy(true);
    setSaveErr(null);
    try {
      const p = await request("PUT", "/v1/policy", { body: { rules: rules.map(toWire), version: pol.version } });
      setPol(p);
      setRules(p.rules.map(toForm));
      flash({ kind: "ok", text: `Policy saved (version ${p.version}).` });
    } catch (e) {
      setSaveErr(e);
    } finally {
      setBusy(false);
    }
  }

  if (error) return html`<main id="main"><h1>Command policy</h1><p class="error" role="alert">${error.text || error.message}</p></main>`;
  if (!pol) return html`<main id="main"><h1>Command policy</h1><p aria-busy="true">Loading…</p></main>`;
  const errs = {};
  for (const d of (saveErr && saveErr.details) || []) errs[d.field] = d.message;
  const cell = (i, k, label, extra = {}) => html`<td><input aria-label=${`Rule ${i + 1} ${label}`} class=${"rule-" + k} value=${rules[i][k]}
    onInput=${edit(i, k)} aria-invalid=${errs[`rules[${i}].${k}`] ? "true" : "false"} ...${extra} />
    <${FieldError} error=${errs[`rules[${i}].${k}`]} /></td>`;
  return html`<main id="main" class="policy-page">
    <h1>Command policy</h1>
    <p class="muted" id="policy-version">${pol.default ? "Built-in defaults (never saved)" : `Version ${pol.version}, saved by ${pol.updated_by || "?"}`}.
      The first rule that matches a command decides; a command no rule allows is refused.</p>
    <form onSubmit=${save} novalidate>
      <table class="plain" id="policy-rules"><thead><tr><th scope="col">#</th><th scope="col">ID</th><th scope="col">Effect</th>
        <th scope="col">Roles</th><th scope="col">Platforms</th><th scope="col">Pattern</th><th scope="col">Reason</th><th scope="col">Order</th></tr></thead><tbody>
        ${rules.map((r, i) => html`<tr>
          <th scope="row">${i + 1}</th>
          ${cell(i, "id", "id", { size: 12 })}
          <td><select aria-label=${`Rule ${i + 1} effect`} class="rule-effect" value=${r.effect} onChange=${edit(i, "effect")}>
            <option value="allow">allow</option><option value="deny">deny</option></select></td>
          ${cell(i, "roles", "roles", { size: 10, placeholder: "any role" })}
          ${cell(i, "platforms", "platforms", { size: 10, placeholder: "any platform" })}
          ${cell(i, "pattern", "pattern", { size: 24, spellcheck: "false" })}
          ${cell(i, "reason", "reason", { size: 20 })}
          <td class="nowrap"><button type="button" class="small" aria-label=${`Move rule ${i + 1} up`} disabled=${i === 0} onClick=${() => move(i, -1)}>↑</button>
            <button type="button" class="small" aria-label=${`Move rule ${i + 1} down`} disabled=${i === rules.length - 1} onClick=${() => move(i, 1)}>↓</button>
            <button type="button" class="small" aria-label=${`Remove rule ${i + 1}`} onClick=${() => remove(i)}>Remove</button></td></tr>`)}
      </tbody></table>
      ${saveErr && html`<p class="error" role="alert" id="policy-error">${saveErr.status === 409
        ? html`Someone changed the policy since you loaded it. <button type="button" id="policy-reload" onClick=${load}>Reload</button> (your edits are lost).`
        : saveErr.text || saveErr.message}</p>`}
      <div class="modal-actions">
        <button type="button" id="policy-add" onClick=${add}>Add a rule</button>
        <button type="button" onClick=${load}>Discard changes</button>
        <button class="primary" type="submit" id="policy-save" disabled=${busy}>Save</button>
      </div>
    </form>
    <${PolicyCheck} />
  </main>`;
}

// PolicyCheck asks POST /v1/policy/check whether a command may run on some devices.
function PolicyCheck() {
  const [command, setCommand] = useState("");
  const [ids, setIDs] = useState("");
  const [answer, setAnswer] = useState(null);
  const [err, setErr] = useState(null);
  async function check(ev) {
    ev.preventDefault();
    setErr(null);
    setAnswer(null);
    try {
      setAnswer(await post("/v1/policy/check", { command, device_ids: list(ids) }));
    } catch (e) {
      setErr(e);
    }
  }
  return html`<section aria-labelledby="check-title"><h2 id="check-title">Check a command</h2>
    <form onSubmit=${check} novalidate class="check">
      <div class="field"><label for="check-command">Command</label>
        <input id="check-command" value=${command} onInput=${(e) => setCommand(e.target.value)} spellcheck="false" size="40" /></div>
      <div class="field"><label for="check-devices">Device ids</label>
        <input id="check-devices" value=${ids} onInput=${(e) => setIDs(e.target.value)} placeholder="r1, r2" size="30" /></div>
      <button type="submit" id="check-submit">Check</button>
    </form>
    ${err && html`<p class="error" role="alert" id="check-error">${err.text || err.message}</p>`}
    ${answer && html`<div id="check-result" role="status"><p><strong>${answer.allowed ? "Allowed" : "Refused"}</strong> on ${answer.allowed ? "every device" : "some devices"} (policy version ${answer.version}).</p>
      <table class="plain"><thead><tr><th scope="col">Device</th><th scope="col">Decision</th><th scope="col">Rule</th><th scope="col">Reason</th></tr></thead><tbody>
        ${answer.devices.map((v) => html`<tr><td>${v.device_id}</td><td class=${v.allowed ? "" : "warn"}>${v.allowed ? "allowed" : "refused"}</td>
          <td><code>${v.rule || ""}</code></td><td>${v.reason || ""}</td></tr>`)}
      </tbody></table></div>`}
  </section>`;
}
