// Every screen of the person's page and of the desk (each state, each desk language) has
// exactly one visible h1, so a screen-reader user who jumps to the main heading always
// lands on one, and never on two competing ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tourStates, visibleH1s } from "./a11y.mjs";

test("exactly one visible h1 on every state of both pages", async () => {
  const wrong = [];
  const seen = [];
  const check = async (page, state) => {
    seen.push(state);
    const h1s = await visibleH1s(page);
    if (h1s.length !== 1) wrong.push(`${state}: ${h1s.length} h1 ${JSON.stringify(h1s)}`);
  };
  await tourStates({ person: check, desk: check });
  assert.ok(seen.length >= 30, `the tour reached every state (${seen.join(", ")})`);
  assert.deepEqual(wrong, [], "states without exactly one visible h1");
});
