// A device's SSH host key on its page: the pinned key's fingerprint and when it was learned, and,
// when the device offered another key, a warning with the offered fingerprint and, for admins, the
// button that pins it (POST /v1/devices/{id}/host-key/accept). A 409 is shown in place.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, can } from "./api.js";
import { fmtTime } from "./ui.js";

/** HostKeyPanel shows device's host key; onChange receives the device after an accept or reload. */
export function HostKeyPanel({ device, onChange }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const pending = device.pending_host_key;
  const path = `/v1/devices/${encodeURIComponent(device.id)}`;

  async function accept() {
    setBusy(true);
    setError("");
    setDone("");
    try {
      const d = await post(path + "/host-key/accept", { fingerprint: pending.fingerprint });
      setDone(`Pinned ${d.host_key_fingerprint}: runs on ${d.id} use this key from now on.`);
      onChange(d);
    } catch (e) {
      setError(e.code === "host_key_not_pending" ? `${e.message} (${e.code})` : e.text || e.message);
    } finally {
      setBusy(false);
    }
  }

  async function reload() {
    try {
      onChange(await get(path));
      setError("");
    } catch (e) {
      setError(e.text || e.message);
    }
  }

  let pinned = device.host_key_fingerprint;
  if (!pinned) pinned = device.trust_on_first_use ? "none yet: the first connection pins it (trust on first use)" : "none: runs are refused until one is set";
  let learned = "—";
  if (device.host_key_learned_at) learned = fmtTime(device.host_key_learned_at);
  else if (device.host_key) learned = "given in the inventory";

  return html`<section class="host-key" id="host-key" aria-labelledby="host-key-title">
    <h2 id="host-key-title">SSH host key</h2>
    <dl class="summary">
      <div><dt>Pinned key</dt><dd class="mono" id="host-key-fingerprint">${pinned}</dd></div>
      <div><dt>Learned</dt><dd id="host-key-learned">${learned}</dd></div>
    </dl>
    ${done && html`<p class="notice" role="status" id="host-key-done">${done}</p>`}
    ${pending && html`<div class="key-warning" role="alert" id="host-key-pending">
      <p><strong>The device offered a different host key</strong> than the pinned one, so its runs end <code>host_key_mismatch</code>
        and nothing is sent to it. The device may have been replaced or re-keyed, or someone may be
        intercepting the connection: check the fingerprint with the device's owner before accepting it.</p>
      <dl class="summary">
        <div><dt>Offered key</dt><dd class="mono" id="pending-fingerprint">${pending.fingerprint}</dd></div>
        <div><dt>Seen at</dt><dd id="pending-seen">${fmtTime(pending.seen_at)}</dd></div>
      </dl>
      ${can("admin")
        ? html`<button class="danger" id="host-key-accept" onClick=${accept} disabled=${busy}>${busy ? "Accepting…" : "Accept this key"}</button>`
        : html`<p class="muted small" id="host-key-admin-only">Only an admin can accept a new host key.</p>`}
      ${error && html`<p class="error" role="alert" id="host-key-error">${error}
        <button class="small" id="host-key-reload" onClick=${reload}>Read the device again</button></p>`}
    </div>`}
  </section>`;
}
