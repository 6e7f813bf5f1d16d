// axe-core (WCAG 2.0–2.2 A and AA, and best practices; every impact) finds nothing on any
// state of the person's page: the language and intake screens, waiting, the conversation
// with messages both ways and system lines, the safety code explained, a voice call, the
// neutral "I can't talk now" view, the end, and the page a quick exit lands on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tourStates, axeViolations } from "./a11y.mjs";

test("no axe-core violation on any state of the person's page", async () => {
  const found = [];
  const seen = [];
  await tourStates({
    person: async (page, state) => {
      seen.push(state);
      for (const v of await axeViolations(page)) found.push(`${state}: ${v}`);
    },
  });
  assert.ok(seen.length >= 10, `the tour reached every state (${seen.join(", ")})`);
  assert.deepEqual(found, [], "axe-core violations");
});
