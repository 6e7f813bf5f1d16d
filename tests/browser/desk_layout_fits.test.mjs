// At 1366×900 and 1024×768 the operator reaches invite, transfer, close and end without
// scrolling, and no desk text breaks words apart (only message bodies, and the boxes they
// are typed in, may wrap anywhere).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, conversation, send, sees } from "./harness.mjs";

test("the desk fits a laptop screen without breaking words", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  const page = operator.page;
  try {
    await send(person.page, "A long word: Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung");
    await sees(page, "Donaudampfschifffahrts");
    for (const size of [{ width: 1366, height: 900 }, { width: 1024, height: 768 }]) {
      await page.setViewportSize(size);
      await page.evaluate(() => window.scrollTo(0, 0));
      for (const id of ["#invite", "#transfer", "#close-case", "#end-session"]) {
        const box = await page.locator(id).boundingBox();
        assert.ok(box, `${id} is shown at ${size.width}×${size.height}`);
        assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= size.width && box.y + box.height <= size.height,
          `${id} is inside the ${size.width}×${size.height} viewport without scrolling: ${JSON.stringify(box)}`);
      }
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(wide <= size.width, `no sideways scrolling at ${size.width} (${wide})`);
      const breaking = await page.evaluate(() => [...document.querySelectorAll("body *")]
        // Message bodies, and the boxes where one is typed, wrap a long word rather than widen.
        .filter((el) => !el.closest(".msg p") && el.tagName !== "TEXTAREA")
        .filter((el) => { const c = getComputedStyle(el); return c.overflowWrap !== "normal" || c.wordBreak !== "normal"; })
        .map((el) => el.id || el.tagName));
      assert.deepEqual(breaking, [], "nothing but message bodies may break words");
      assert.equal(await page.locator(".msg p").first().evaluate((el) => getComputedStyle(el).overflowWrap), "anywhere");
    }
  } finally {
    await talk.close();
    await relay.stop();
  }
});
