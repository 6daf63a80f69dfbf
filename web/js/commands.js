// Command sequences in the run forms and per-command output: the commands editor (a row per
// command, Enter adds the next, a paste of many lines adds a row for each, up to five prompt
// answers per command), the request body it makes, the client-side checks that mirror the API's
// rules, where the API's field errors land, and the tab labels of a run's commands.
import { useLayoutEffect, useRef } from "preact/hooks";
import { html } from "./html.js";
import { FieldError, StatusBadge, fmtBytes } from "./ui.js";

/** The API's limits (POST /v1/runs and /v1/bulk). */
export const MAX_COMMANDS = 20;
export const MAX_PROMPTS = 5;
export const MAX_COMMAND_BYTES = 4096;
export const MAX_EXPECT = 256;
export const MAX_ANSWER = 1024;

let nextKey = 1;

/** newRow is one command of the editor; keys keep rows and prompts stable as the list changes. */
export function newRow(command = "") {
  return { key: nextKey++, command, prompts: [], open: false };
}

/** newPrompt is one prompt answer of a command. */
export function newPrompt() {
  return { key: nextKey++, expect: "", answer: "", secret: false, regex: false };
}

// CONTROL matches what the API refuses in a command line or an answer.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const bytes = (s) => new TextEncoder().encode(s).length;

/**
 * commandsBody returns the request's command part and the rows it sends, in order (rows left
 * empty are skipped; with none filled the first is sent so its error shows). One command without
 * prompts goes as `command`, as every API version takes it; anything more as `commands`.
 */
export function commandsBody(rows) {
  let sent = rows.filter((r) => r.command.trim() !== "" || r.prompts.length);
  if (!sent.length) sent = [rows[0]];
  const items = sent.map((r) => (r.prompts.length
    ? { command: r.command.trim(), prompts: r.prompts.map((p) => ({ expect: p.expect, answer: p.answer, secret: p.secret, regex: p.regex })) }
    : r.command.trim()));
  const body = items.length === 1 && typeof items[0] === "string" ? { command: items[0] } : { commands: items };
  return { body, sent };
}

/**
 * checkCommands applies the API's rules to the rows commandsBody sends, before the request:
 * [{field, message}] with the API's field paths (commands[1].command, commands[0].prompts[2].expect).
 */
export function checkCommands(sent) {
  const errs = [];
  if (sent.length > MAX_COMMANDS) errs.push({ field: "commands", message: `must hold 1 to ${MAX_COMMANDS} commands, not ${sent.length}` });
  sent.forEach((r, i) => {
    const c = r.command.trim();
    const at = `commands[${i}]`;
    if (c === "") errs.push({ field: at + ".command", message: "is required" });
    else if (bytes(c) > MAX_COMMAND_BYTES) errs.push({ field: at + ".command", message: `must be at most ${MAX_COMMAND_BYTES} bytes` });
    else if (CONTROL.test(c)) errs.push({ field: at + ".command", message: "must not contain control characters" });
    if (r.prompts.length > MAX_PROMPTS) errs.push({ field: at + ".prompts", message: `must hold at most ${MAX_PROMPTS} prompts` });
    r.prompts.forEach((p, j) => {
      const pat = `${at}.prompts[${j}]`;
      if (p.expect.trim() === "") errs.push({ field: pat + ".expect", message: "is required" });
      else if (bytes(p.expect) > MAX_EXPECT) errs.push({ field: pat + ".expect", message: `must be at most ${MAX_EXPECT} bytes` });
      else if (CONTROL.test(p.expect)) errs.push({ field: pat + ".expect", message: "must not contain control characters" });
      else if (p.regex) {
        const bad = regexProblem(p.expect);
        if (bad) errs.push({ field: pat + ".expect", message: "is not a valid regular expression: " + bad });
      }
      if (bytes(p.answer) > MAX_ANSWER) errs.push({ field: pat + ".answer", message: `must be at most ${MAX_ANSWER} bytes` });
      else if (CONTROL.test(p.answer)) errs.push({ field: pat + ".answer", message: "must be one line without control characters" });
    });
  });
  return errs;
}

/**
 * regexProblem judges an expect pattern the way the API's Go (RE2) syntax does, as closely as the
 * browser can: Go's flag groups and named groups are translated, Perl features RE2 lacks
 * (lookaround, back references) are refused. "" means it looks valid; the API has the last word.
 */
function regexProblem(expr) {
  if (/\(\?<?[=!]/.test(expr)) return "lookahead and lookbehind are not supported";
  if (/(^|[^\\])\\[1-9]/.test(expr)) return "back references are not supported";
  const js = expr.replace(/\(\?[imsU]+\)/g, "").replace(/\(\?[imsU-]+:/g, "(?:").replace(/\(\?P</g, "(?<");
  try {
    new RegExp(js);
    return "";
  } catch (e) {
    return e.message.replace(/^Invalid regular expression: /, "");
  }
}

/**
 * placeErrors turns API field paths into the editor's keys: "cmd:<row>", "prompts:<row>",
 * "p:<prompt>:expect" / ":answer", "commands"; other fields keep their name. `command` (a single
 * command sent as such) is the first row's. sent are the rows the request carried, in order.
 */
export function placeErrors(list, sent) {
  const out = {};
  const put = (k, m) => { if (!(k in out)) out[k] = m; };
  for (const { field, message } of list) {
    if (field === "command") {
      put("cmd:" + sent[0].key, message);
      continue;
    }
    const m = /^commands\[(\d+)\](?:\.(command)|\.prompts(?:\[(\d+)\](?:\.(\w+))?)?)?$/.exec(field || "");
    const row = m && sent[Number(m[1])];
    if (!row) {
      put(field || "", message);
      continue;
    }
    if (m[3] !== undefined && row.prompts[Number(m[3])]) put(`p:${row.prompts[Number(m[3])].key}:${m[4] === "answer" ? "answer" : "expect"}`, message);
    else if (field.includes(".prompts")) put("prompts:" + row.key, message);
    else put("cmd:" + row.key, message);
  }
  return out;
}

/** rowID is the id of row i's command input: `<base>-command` for the first, as before sequences. */
export const rowID = (base, i) => (i === 0 ? `${base}-command` : `${base}-command-${i}`);

/**
 * CommandsEditor edits the rows: one input per command (Enter adds the next row, Backspace on an
 * empty row removes it, arrow keys move between rows, a paste of several lines makes a row of
 * each, Ctrl+Enter submits), and per command up to five prompt answers.
 */
export function CommandsEditor({ base, rows, setRows, errors, onSubmitKey }) {
  const boxRef = useRef(null);
  const focusRef = useRef(null); // {key, at}: the row input to focus after the next render
  // A layout effect, so focus has moved before the next key press is handled (fast typists).
  useLayoutEffect(() => {
    const f = focusRef.current;
    if (!f || !boxRef.current) return;
    focusRef.current = null;
    const el = boxRef.current.querySelector(`[data-row-key="${f.key}"]`);
    if (el) {
      el.focus();
      const at = f.at === "end" ? el.value.length : f.at;
      el.setSelectionRange(at, at);
    }
  });
  const update = (key, patch) => setRows((rs) => rs.map((r) => (r.key === key ? { ...r, ...patch } : r)));
  const updatePrompt = (rkey, pkey, patch) => setRows((rs) => rs.map((r) => (r.key !== rkey ? r
    : { ...r, prompts: r.prompts.map((p) => (p.key === pkey ? { ...p, ...patch } : p)) })));

  function insertAfter(i, texts, keepCurrent) {
    const added = texts.map((t) => newRow(t));
    setRows((rs) => [...rs.slice(0, i + 1), ...added, ...rs.slice(i + 1)]);
    const last = added[added.length - 1];
    if (!keepCurrent && last) focusRef.current = { key: last.key, at: "end" };
  }

  function onKeyDown(ev, r, i) {
    const input = ev.currentTarget;
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      onSubmitKey();
    } else if (ev.key === "Enter" && !ev.shiftKey && !ev.altKey) {
      ev.preventDefault();
      if (r.command.trim() === "") return;
      // Enter in the middle of a line splits it, as in a text box.
      const at = input.selectionStart;
      if (at < r.command.length) {
        update(r.key, { command: r.command.slice(0, at) });
        insertAfter(i, [r.command.slice(at)]);
        focusRef.current = { ...focusRef.current, at: 0 };
      } else insertAfter(i, [""]);
    } else if (ev.key === "Backspace" && r.command === "" && !r.prompts.length && rows.length > 1) {
      ev.preventDefault();
      setRows((rs) => rs.filter((x) => x.key !== r.key));
      focusRef.current = { key: rows[i > 0 ? i - 1 : 1].key, at: "end" };
    } else if ((ev.key === "ArrowUp" && i > 0) || (ev.key === "ArrowDown" && i < rows.length - 1)) {
      ev.preventDefault();
      const to = boxRef.current.querySelector(`[data-row-key="${rows[ev.key === "ArrowUp" ? i - 1 : i + 1].key}"]`);
      if (to) {
        to.focus();
        const at = Math.min(input.selectionStart, to.value.length);
        to.setSelectionRange(at, at);
      }
    }
  }

  function onPaste(ev, r, i) {
    const text = ev.clipboardData && ev.clipboardData.getData("text/plain");
    if (!text || !/[\r\n]/.test(text)) return;
    ev.preventDefault();
    const lines = text.split(/\r\n|\r|\n/).map((l) => l.replace(/\s+$/, "")).filter((l) => l.trim() !== "");
    if (!lines.length) return;
    const input = ev.currentTarget;
    const before = r.command.slice(0, input.selectionStart);
    const after = r.command.slice(input.selectionEnd);
    update(r.key, { command: before + lines[0] + (lines.length === 1 ? after : "") });
    if (lines.length > 1) {
      lines[lines.length - 1] += after;
      insertAfter(i, lines.slice(1));
    }
  }

  const n = rows.length;
  const listError = errors.commands;
  return html`<fieldset class="commands" ref=${boxRef} aria-describedby=${base + "-commands-hint"}>
    <legend>Commands</legend>
    <p class="hint" id=${base + "-commands-hint"}>Run in order on one session. Enter adds the next command; pasting
      several lines adds one per line (up to ${MAX_COMMANDS}). Ctrl+Enter runs.</p>
    <ol class="command-rows">
      ${rows.map((r, i) => {
        const id = rowID(base, i);
        const err = errors["cmd:" + r.key];
        const panel = id + "-prompts";
        return html`<li class="command-row" key=${r.key} data-index=${i}>
          <div class="command-line">
            <label for=${id}>${n === 1 ? "Command" : `Command ${i + 1}`}</label>
            <input id=${id} data-row-key=${r.key} class="mono" value=${r.command} spellcheck="false" autocomplete="off"
              aria-invalid=${err ? "true" : "false"} aria-describedby=${err ? id + "-error" : undefined}
              placeholder=${i === 0 ? "e.g. show version" : ""} data-autofocus=${i === 0 ? true : undefined}
              onInput=${(e) => update(r.key, { command: e.target.value })}
              onKeyDown=${(e) => onKeyDown(e, r, i)} onPaste=${(e) => onPaste(e, r, i)} />
            <button type="button" class="small" id=${id + "-prompts-toggle"} aria-expanded=${r.open ? "true" : "false"} aria-controls=${panel}
              onClick=${() => update(r.key, { open: !r.open, prompts: !r.open && !r.prompts.length ? [newPrompt()] : r.prompts })}>
              ${r.prompts.length ? `Prompts (${r.prompts.length})` : "Add prompt answer"}</button>
            ${n > 1 && html`<button type="button" class="small icon" aria-label=${`Remove command ${i + 1}`}
              onClick=${() => { setRows((rs) => rs.filter((x) => x.key !== r.key)); focusRef.current = { key: rows[i > 0 ? i - 1 : 1].key, at: "end" }; }}>×</button>`}
          </div>
          <${FieldError} id=${id + "-error"} error=${err} />
          ${r.open && html`<${PromptsEditor} id=${id} row=${r} index=${i} errors=${errors} update=${update} updatePrompt=${updatePrompt} />`}
        </li>`;
      })}
    </ol>
    <button type="button" class="small" id=${base + "-add-command"} disabled=${n >= MAX_COMMANDS}
      onClick=${() => insertAfter(n - 1, [""])}>Add command</button>
    <${FieldError} id=${base + "-commands-error"} error=${listError} />
  </fieldset>`;
}

function PromptsEditor({ id, row, index, errors, update, updatePrompt }) {
  const r = row;
  const err = errors["prompts:" + r.key];
  return html`<fieldset class="prompts" id=${id + "-prompts"}>
    <legend>Answers to the prompts of command ${index + 1}</legend>
    <p class="hint">When the output's last line ends with <em>Expect</em> (or, as a regular expression, matches the whole line),
      the answer is sent once. A secret answer is never shown again, logged or stored.</p>
    ${r.prompts.map((p, j) => {
      const pid = `${id}-p${j}`;
      const ee = errors[`p:${p.key}:expect`];
      const ae = errors[`p:${p.key}:answer`];
      return html`<div class="prompt-row" key=${p.key}>
        <div class="field"><label for=${pid + "-expect"}>Expect</label>
          <input id=${pid + "-expect"} class="mono" value=${p.expect} placeholder="[confirm]" spellcheck="false" autocomplete="off"
            aria-invalid=${ee ? "true" : "false"} aria-describedby=${ee ? pid + "-expect-error" : undefined}
            onInput=${(e) => updatePrompt(r.key, p.key, { expect: e.target.value })} />
          <${FieldError} id=${pid + "-expect-error"} error=${ee} /></div>
        <div class="field"><label for=${pid + "-answer"}>Answer</label>
          <input id=${pid + "-answer"} class="mono" type=${p.secret ? "password" : "text"} value=${p.answer}
            autocomplete=${p.secret ? "new-password" : "off"} spellcheck="false" placeholder=${p.secret ? "" : "empty: just Enter"}
            aria-invalid=${ae ? "true" : "false"} aria-describedby=${ae ? pid + "-answer-error" : undefined}
            onInput=${(e) => updatePrompt(r.key, p.key, { answer: e.target.value })} />
          <${FieldError} id=${pid + "-answer-error"} error=${ae} /></div>
        <label class="check"><input type="checkbox" id=${pid + "-secret"} checked=${p.secret}
          onChange=${(e) => updatePrompt(r.key, p.key, { secret: e.target.checked })} /> Secret</label>
        <label class="check"><input type="checkbox" id=${pid + "-regex"} checked=${p.regex}
          onChange=${(e) => updatePrompt(r.key, p.key, { regex: e.target.checked })} /> Regex</label>
        <button type="button" class="small icon" aria-label=${`Remove prompt ${j + 1} of command ${index + 1}`}
          onClick=${() => update(r.key, { prompts: r.prompts.filter((x) => x.key !== p.key) })}>×</button>
      </div>`;
    })}
    <button type="button" class="small" id=${id + "-add-prompt"} disabled=${r.prompts.length >= MAX_PROMPTS}
      onClick=${() => update(r.key, { prompts: [...r.prompts, newPrompt()] })}>Add prompt answer</button>
    ${r.prompts.length >= MAX_PROMPTS && html`<span class="hint"> (${MAX_PROMPTS} at most)</span>`}
    <${FieldError} id=${id + "-prompts-error"} error=${err} />
  </fieldset>`;
}

/** commandText is an item of a run's or job's command list as text (a string or {command}). */
export const commandText = (c) => (typeof c === "string" ? c : (c && c.command) || "");

/**
 * commandTabs are the tabs of a run's output: the whole output, then one per command started with
 * its status, exit status and bytes. A run of one command has none (it looks as it always did).
 */
export function commandTabs(commands, idBase) {
  if (!commands || commands.length < 2) return [];
  return [
    { id: -1, tabId: idBase + "-all", label: html`Whole output` },
    ...commands.map((c, i) => ({
      id: i, tabId: `${idBase}-${i}`,
      label: html`<span class="tab-n">${i + 1}.</span> <code class="tab-cmd">${commandText(c)}</code>
        ${c.status && html`<${StatusBadge} status=${c.status} reason=${c.reason} />`}
        <span class="small muted">${c.exit_status != null ? `exit ${c.exit_status} · ` : ""}${fmtBytes(c.bytes || 0)}</span>`,
    })),
  ];
}
