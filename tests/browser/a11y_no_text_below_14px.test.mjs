// No visible text on any state of the person's page or the desk is set below 14 px (the
// computed font size of every element that shows text of its own, form controls included):
// the quick-exit hint, sender labels and system lines were 12.8–13.6 px.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tourStates, textSizes } from "./a11y.mjs";

const MIN_PX = 14;

test("no text below 14 px on any state of both pages", async () => {
  const small = [];
  const seen = [];
  let measured = 0;
  const check = async (page, state) => {
    seen.push(state);
    const sizes = await textSizes(page);
    measured += sizes.length;
    for (const s of sizes) if (s.px < MIN_PX) small.push(`${state}: ${s.el} "${s.text}" ${s.px} px`);
  };
  await tourStates({ person: check, desk: check });
  assert.ok(seen.length >= 30, `the tour reached every state (${seen.join(", ")})`);
  assert.ok(measured > 500, `texts were measured (${measured})`);
  assert.deepEqual(small, [], "texts below 14 px");
});
