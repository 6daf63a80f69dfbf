// Unit tests of the diff page's layout (web/js/diff.js) under node's test runner, run by
// web/e2e_test.go (TestDiffLayout): how the API's hunks become numbered unified rows and
// side-by-side rows. The browser test (drift.test.mjs) covers the page against the real API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { unifiedRows, splitRows, diffHref } from "../js/diff.js";

const c = (text) => ({ op: "context", text });
const a = (text) => ({ op: "add", text });
const d = (text) => ({ op: "delete", text });
const hunk = (old_start, old_lines, new_start, new_lines, lines) => ({ old_start, old_lines, new_start, new_lines, lines });
// side renders one side of a split row as "no:op:text" (or "-" for a blank).
const side = (s) => (s ? `${s.no}:${s.op}:${s.text}` : "-");
const split = (hunks) => splitRows(hunks).map((r) => (r.hunk ? `@@${r.hunk.old_start}` : `${side(r.left)} | ${side(r.right)}`));
const unified = (hunks) => unifiedRows(hunks).map((r) => (r.hunk ? `@@${r.hunk.old_start}` : `${r.oldNo ?? "-"} ${r.newNo ?? "-"} ${r.op} ${r.text}`));

const cases = [
  {
    name: "a changed line faces its replacement",
    hunks: [hunk(11, 3, 11, 3, [c("interface Gi1"), d(" shutdown"), a(" no shutdown"), c("!")])],
    split: ["@@11", "11:context:interface Gi1 | 11:context:interface Gi1", "12:delete: shutdown | 12:add: no shutdown", "13:context:! | 13:context:!"],
    unified: ["@@11", "11 11 context interface Gi1", "12 - delete  shutdown", "- 12 add  no shutdown", "13 13 context !"],
  },
  {
    name: "an inserted block has blanks on the left",
    hunks: [hunk(0, 0, 1, 2, [a("banner motd ^C"), a("^C")])],
    split: ["@@0", "- | 1:add:banner motd ^C", "- | 2:add:^C"],
    unified: ["@@0", "- 1 add banner motd ^C", "- 2 add ^C"],
  },
  {
    name: "a deleted block has blanks on the right",
    hunks: [hunk(40, 3, 40, 1, [c("end"), d("ntp server 10.0.0.1"), d("ntp server 10.0.0.2")])],
    split: ["@@40", "40:context:end | 40:context:end", "41:delete:ntp server 10.0.0.1 | -", "42:delete:ntp server 10.0.0.2 | -"],
    unified: ["@@40", "40 40 context end", "41 - delete ntp server 10.0.0.1", "42 - delete ntp server 10.0.0.2"],
  },
  {
    name: "two lines replaced by three: the longer side continues against blanks",
    hunks: [hunk(5, 2, 5, 3, [d("a"), d("b"), a("x"), a("y"), a("z")])],
    split: ["@@5", "5:delete:a | 5:add:x", "6:delete:b | 6:add:y", "- | 7:add:z"],
    unified: ["@@5", "5 - delete a", "6 - delete b", "- 5 add x", "- 6 add y", "- 7 add z"],
  },
  {
    name: "deletes and adds interleaved in one change keep their own numbering",
    hunks: [hunk(1, 2, 1, 1, [d("a"), a("x"), d("b")])],
    split: ["@@1", "1:delete:a | 1:add:x", "2:delete:b | -"],
    unified: ["@@1", "1 - delete a", "- 1 add x", "2 - delete b"],
  },
  {
    name: "each hunk numbers from its own start",
    hunks: [hunk(1, 1, 1, 1, [d("old")].concat([a("new")])), hunk(90, 1, 90, 2, [c("end"), a("!")])],
    split: ["@@1", "1:delete:old | 1:add:new", "@@90", "90:context:end | 90:context:end", "- | 91:add:!"],
    unified: ["@@1", "1 - delete old", "- 1 add new", "@@90", "90 90 context end", "- 91 add !"],
  },
  { name: "no hunks, no rows", hunks: [], split: [], unified: [] },
];

test("splitRows", async (t) => {
  for (const tc of cases) await t.test(tc.name, () => assert.deepEqual(split(tc.hunks), tc.split));
});

test("unifiedRows", async (t) => {
  for (const tc of cases) await t.test(tc.name, () => assert.deepEqual(unified(tc.hunks), tc.unified));
});

test("diffHref", async (t) => {
  const cases = [
    { name: "the API's default previous run", args: ["r2"], want: "?diff=r2" },
    { name: "against another run", args: ["r2", "r1"], want: "?diff=r2&against=r1" },
    { name: "view and raw kept, empty ones left out", args: ["r 2", "r1", { view: "unified", raw: "" }], want: "?diff=r+2&against=r1&view=unified" },
  ];
  for (const tc of cases) await t.test(tc.name, () => assert.equal(diffHref(...tc.args), tc.want));
});
