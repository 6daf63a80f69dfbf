// Small shared pieces: status badges, a modal dialog with a focus trap, a virtual list hook,
// formatters and links that navigate without reloading.
import { useEffect, useRef, useState, useCallback } from "preact/hooks";
import { html } from "./html.js";

/** STATUSES are the per-device statuses, each with a glyph so a badge never relies on colour. */
export const STATUSES = {
  queued: "○", running: "◔", succeeded: "✓", failed: "✗", timed_out: "◷", unreachable: "⊘",
  auth_failed: "⚷", host_key_mismatch: "⚠", cancelled: "–",
};
// JOB_GLYPHS are the glyphs of job statuses that are not device statuses.
const JOB_GLYPHS = { completed: "✓", stopped: "■" };
export const TERMINAL = ["succeeded", "failed", "timed_out", "unreachable", "auth_failed", "host_key_mismatch", "cancelled"];

export function StatusBadge({ status, reason }) {
  if (!status) return html`<span class="muted">never run</span>`;
  const label = status.replace(/_/g, " ");
  return html`<span class=${"badge s-" + status} title=${reason ? `${label}: ${reason}` : label}>
    <span aria-hidden="true">${STATUSES[status] || JOB_GLYPHS[status] || "•"}</span> ${label}</span>`;
}

/**
 * ChangedBadge says whether a run's output changed since the previous successful run of its
 * command on its device (the API's `changed`, compared after noise filters): changed, unchanged,
 * or, for a succeeded run with nothing to compare with, "first run". Glyph and text, never colour
 * alone.
 */
export function ChangedBadge({ run }) {
  if (!run) return null;
  if (run.changed === true) return html`<span class="badge chg-yes" data-changed="true"><span aria-hidden="true">Δ</span> changed</span>`;
  if (run.changed === false) return html`<span class="badge chg-no" data-changed="false"><span aria-hidden="true">=</span> unchanged</span>`;
  if (run.status === "succeeded") return html`<span class="badge chg-first" data-changed="null"
    title="The first successful run of this command on this device (or one from before changes were tracked)"><span aria-hidden="true">☆</span> first run</span>`;
  return null;
}

/** navigate changes the route (the query string) without a reload. */
export function navigate(search) {
  if (search === location.search) return;
  history.pushState(null, "", location.pathname + search);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** Link is an <a> with a real href (open in a new tab works) that navigates in place. */
export function Link({ to, children, ...rest }) {
  function onClick(ev) {
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(to);
  }
  return html`<a href=${location.pathname + to} onClick=${onClick} ...${rest}>${children}</a>`;
}

/** Modal is a dialog that traps focus, closes on Escape and gives focus back when it closes. */
export function Modal({ title, onClose, children, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const before = document.activeElement;
    const node = ref.current;
    const first = node.querySelector("[data-autofocus]") || node.querySelector("textarea, input:not([disabled]), select");
    (first || node).focus();
    return () => {
      // Give focus back unless something outside the dialog took it as it closed (the message
      // announcing a new job focuses its link): which of the two runs first is not fixed.
      const active = document.activeElement;
      const unclaimed = !active || active === document.body || node.contains(active);
      if (unclaimed && before && before.focus) before.focus();
    };
  }, []);
  function onKeyDown(ev) {
    if (ev.key === "Escape") {
      ev.stopPropagation();
      onClose();
      return;
    }
    if (ev.key !== "Tab") return;
    const items = [...ref.current.querySelectorAll("a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex='0']")]
      .filter((el) => el.offsetParent !== null);
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    if (ev.shiftKey && document.activeElement === first) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && document.activeElement === last) {
      ev.preventDefault();
      first.focus();
    }
  }
  return html`
    <div class="backdrop" onMouseDown=${(e) => e.target === e.currentTarget && onClose()}>
      <div class=${"modal" + (wide ? " wide" : "")} role="dialog" aria-modal="true" aria-labelledby="modal-title"
           ref=${ref} tabindex="-1" onKeyDown=${onKeyDown}>
        <header class="modal-head">
          <h2 id="modal-title">${title}</h2>
          <button class="icon" aria-label="Close" onClick=${onClose}>×</button>
        </header>
        ${children}
      </div>
    </div>`;
}

/**
 * useVirtual renders only the rows in view of a scrolling container: it returns the container
 * ref, the scroll handler and the [start, end) window plus the spacer heights.
 */
export function useVirtual(count, rowHeight, overscan = 8) {
  const ref = useRef(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  const frame = useRef(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight || 600));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const onScroll = useCallback(() => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      if (ref.current) setTop(ref.current.scrollTop);
    });
  }, []);
  const start = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const end = Math.min(count, Math.ceil((top + height) / rowHeight) + overscan);
  return { ref, onScroll, start, end, before: start * rowHeight, after: (count - end) * rowHeight };
}

export function fmtDuration(ms) {
  if (ms == null) return "";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function fmtAgo(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function fmtBytes(n) {
  if (n == null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** FieldError shows the API's message for one form field. */
export function FieldError({ id, error }) {
  if (!error) return null;
  return html`<p class="field-error" id=${id} role="alert">${error}</p>`;
}

/**
 * Tabs is a WAI-ARIA tab list: tabs are buttons with role tab, only the selected one is in the Tab
 * order, and the arrow keys, Home and End move to (and select) the others. tabs are
 * [{id, tabId, label}]; panelId names the tabpanel the caller renders.
 */
export function Tabs({ label, tabs, selected, onSelect, panelId, className }) {
  function onKeyDown(ev) {
    const i = tabs.findIndex((t) => t.id === selected);
    const n = tabs.length;
    const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    onSelect(tabs[to].id);
    const el = ev.currentTarget.querySelectorAll("[role=tab]")[to];
    if (el) el.focus();
  }
  return html`<div class=${"tabs" + (className ? " " + className : "")} role="tablist" aria-label=${label} onKeyDown=${onKeyDown}>
    ${tabs.map((t) => html`<button type="button" role="tab" key=${t.tabId} id=${t.tabId} aria-selected=${t.id === selected ? "true" : "false"}
      aria-controls=${panelId} tabindex=${t.id === selected ? "0" : "-1"} onClick=${() => onSelect(t.id)}>${t.label}</button>`)}
  </div>`;
}

/** saveFile hands the browser a file to download: name, contents (a string or a Blob) and type. */
export function saveFile(name, contents, type = "text/plain") {
  const url = URL.createObjectURL(contents instanceof Blob ? contents : new Blob([contents], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
