// Unit tests of the saved jobs page's texts (web/js/saved.js) under node's test runner, run by
// web/e2e_test.go (TestSavedTexts): a schedule's paused reason in words, with its token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pausedText, selectorText } from "../js/saved.js";

const cases = [
  { reason: "owner_disabled", want: "its owner's account is disabled in the identity provider (owner_disabled)" },
  { reason: "owner_deleted", want: "its owner no longer exists in the identity provider (owner_deleted)" },
  { reason: "owner_demoted", want: "its owner no longer holds the roles it was saved with (owner_demoted)" },
  { reason: "owner_forbidden", want: "its owner's recorded roles no longer allow starting it (owner_forbidden)" },
  { reason: "some_new_reason", want: "some_new_reason" },
];
for (const { reason, want } of cases) {
  test(`paused reason ${reason}`, () => assert.equal(pausedText(reason), want));
}

test("selector terms joined by AND", () => {
  assert.equal(selectorText({ tags: { role: "core", env: "" }, site: "ams1" }), "tag env AND tag role=core AND site ams1");
});
