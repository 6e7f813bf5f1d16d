// axe-core (WCAG 2.0–2.2 A and AA, and best practices; every impact) finds nothing on any
// state of the staff desk, in Italian and in English: sign-in, the queue empty and with a
// person waiting, a conversation with messages and quick replies, the invite, transfer and
// record tools, a call, the "cannot talk freely" banner, an ended conversation, and the
// coordinator's observatory with its tables and charts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tourStates, axeViolations } from "./a11y.mjs";

test("no axe-core violation on any state of the desk, in Italian and English", async () => {
  const found = [];
  const seen = [];
  await tourStates({
    desk: async (page, state) => {
      seen.push(state);
      for (const v of await axeViolations(page)) found.push(`${state}: ${v}`);
    },
  });
  assert.ok(seen.length >= 20, `the tour reached every state (${seen.join(", ")})`);
  assert.deepEqual(found, [], "axe-core violations");
});
