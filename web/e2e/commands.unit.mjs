// Unit tests of the run form's command logic (web/js/commands.js) under node's test runner, run by
// web/e2e_test.go (TestCommandsForm): the request body, the client-side checks that mirror the
// API's rules, and where the API's field errors land. The browser tests cover the form itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { newRow, newPrompt, commandsBody, checkCommands, placeErrors } from "../js/commands.js";

const row = (command, prompts = []) => ({ ...newRow(command), prompts: prompts.map((p) => ({ ...newPrompt(), ...p })) });

test("commandsBody", async (t) => {
  const cases = [
    { name: "one command goes as command", rows: [row("show version")], want: { command: "show version" } },
    { name: "blank rows are skipped", rows: [row(""), row("  show clock "), row("")], want: { command: "show clock" } },
    { name: "nothing filled sends the first row", rows: [row(""), row("")], want: { command: "" } },
    { name: "several go as commands", rows: [row("a"), row("b")], want: { commands: ["a", "b"] } },
    {
      name: "a command with prompts is an object, even alone",
      rows: [row("clear counters", [{ expect: "[confirm]", answer: "y" }])],
      want: { commands: [{ command: "clear counters", prompts: [{ expect: "[confirm]", answer: "y", secret: false, regex: false }] }] },
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => assert.deepEqual(commandsBody(c.rows).body, c.want));
  }
});

test("checkCommands", async (t) => {
  const many = Array.from({ length: 21 }, (_, i) => row("show " + i));
  const cases = [
    { name: "valid sequence", sent: [row("show clock"), row("clear counters", [{ expect: "[confirm]", answer: "y" }])], want: [] },
    { name: "empty command", sent: [row(" ")], want: [["commands[0].command", "is required"]] },
    { name: "too many commands", sent: many, want: [["commands", "must hold 1 to 20 commands, not 21"]] },
    { name: "too long", sent: [row("x".repeat(4097))], want: [["commands[0].command", "must be at most 4096 bytes"]] },
    { name: "multi-byte counts bytes", sent: [row("é".repeat(2049))], want: [["commands[0].command", "must be at most 4096 bytes"]] },
    { name: "control character", sent: [row("show\tversion")], want: [["commands[0].command", "must not contain control characters"]] },
    { name: "expect required", sent: [row("a"), row("b", [{ expect: "x" }, { expect: "" }])], want: [["commands[1].prompts[1].expect", "is required"]] },
    { name: "expect too long", sent: [row("a", [{ expect: "x".repeat(257) }])], want: [["commands[0].prompts[0].expect", "must be at most 256 bytes"]] },
    { name: "answer too long", sent: [row("a", [{ expect: "x", answer: "y".repeat(1025) }])], want: [["commands[0].prompts[0].answer", "must be at most 1024 bytes"]] },
    { name: "answer with a line break", sent: [row("a", [{ expect: "x", answer: "y\nreload" }])], want: [["commands[0].prompts[0].answer", "must be one line without control characters"]] },
    { name: "empty answer is Enter", sent: [row("a", [{ expect: "x", answer: "" }])], want: [] },
    { name: "regex: Go flags accepted", sent: [row("a", [{ expect: "(?i)password:", regex: true }])], want: [] },
    { name: "regex: Go named group accepted", sent: [row("a", [{ expect: "(?P<q>yes|no)\\?", regex: true }])], want: [] },
    { name: "regex: broken", sent: [row("a", [{ expect: "[confirm", regex: true }])], want: [["commands[0].prompts[0].expect", /^is not a valid regular expression: /]] },
    { name: "regex: lookahead refused", sent: [row("a", [{ expect: "(?=x)", regex: true }])], want: [["commands[0].prompts[0].expect", "is not a valid regular expression: lookahead and lookbehind are not supported"]] },
    { name: "literal [ is fine without regex", sent: [row("a", [{ expect: "[confirm" }])], want: [] },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const got = checkCommands(c.sent);
      assert.equal(got.length, c.want.length, JSON.stringify(got));
      c.want.forEach(([field, msg], i) => {
        assert.equal(got[i].field, field);
        if (msg instanceof RegExp) assert.match(got[i].message, msg);
        else assert.equal(got[i].message, msg);
      });
    });
  }
});

test("placeErrors", async (t) => {
  const a = row("show clock");
  const b = row("clear counters", [{ expect: "[confirm]", answer: "y" }, { expect: "Password:", answer: "s", secret: true }]);
  const sent = [a, b];
  const cases = [
    { name: "a single command's error is the first row's", list: [{ field: "command", message: "is required" }], want: { ["cmd:" + a.key]: "is required" } },
    { name: "a refused item", list: [{ field: "commands[1]", message: "refused" }], want: { ["cmd:" + b.key]: "refused" } },
    { name: "an item's command", list: [{ field: "commands[1].command", message: "m" }], want: { ["cmd:" + b.key]: "m" } },
    { name: "a prompt's answer", list: [{ field: "commands[1].prompts[1].answer", message: "m" }], want: { [`p:${b.prompts[1].key}:answer`]: "m" } },
    { name: "a prompt's expect", list: [{ field: "commands[1].prompts[0].expect", message: "m" }], want: { [`p:${b.prompts[0].key}:expect`]: "m" } },
    { name: "the prompt list", list: [{ field: "commands[1].prompts", message: "m" }], want: { ["prompts:" + b.key]: "m" } },
    { name: "the list", list: [{ field: "commands", message: "m" }], want: { commands: "m" } },
    { name: "an index beyond what was sent keeps its name", list: [{ field: "commands[7]", message: "m" }], want: { "commands[7]": "m" } },
    { name: "options keep their name", list: [{ field: "options.timeout_s", message: "m" }], want: { "options.timeout_s": "m" } },
    { name: "the first error of a field wins", list: [{ field: "commands[0]", message: "one" }, { field: "commands[0].command", message: "two" }], want: { ["cmd:" + a.key]: "one" } },
  ];
  for (const c of cases) {
    await t.test(c.name, () => assert.deepEqual(placeErrors(c.list, sent), c.want));
  }
});
