// The first screen at 360×740 in every language: title and purpose first, then all twelve
// language buttons inside the viewport without scrolling, what happens next, and the (short)
// quick-exit warning after them; the change-language control on the next screen is labelled
// by its visible words and at least 44×44 px.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startRelay, openBrowser, untilState } from "./harness.mjs";

const LANGS = ["it", "en", "fr", "es", "ro", "ru", "uk", "zh", "sq", "ar", "pcm", "ur"];
const texts = (l) => JSON.parse(readFileSync(new URL(`../../web-client/i18n/${l}.json`, import.meta.url), "utf8"));

/** Every language button's box lies inside the 360×740 viewport, the page unscrolled. */
async function assertButtonsFit(page, lang) {
  const { boxes, scrollY, vw, vh } = await page.evaluate(() => ({
    boxes: [...document.querySelectorAll("#languages button")].map((b) => {
      const r = b.getBoundingClientRect();
      return { lang: b.dataset.lang, top: r.top, left: r.left, bottom: r.bottom, right: r.right };
    }),
    scrollY: window.scrollY,
    vw: window.innerWidth,
    vh: window.innerHeight,
  }));
  assert.equal(scrollY, 0, `${lang}: not scrolled`);
  assert.deepEqual([vw, vh], [360, 740]);
  assert.equal(boxes.length, 12);
  for (const b of boxes) {
    assert.ok(b.top >= 0 && b.left >= 0 && b.bottom <= vh && b.right <= vw,
      `${lang}: the ${b.lang} button (${JSON.stringify(b)}) is not inside the 360×740 viewport`);
  }
}

/** Where `sel` starts in document order, for "comes before". */
const order = (page, a, b) => page.evaluate(([a, b]) =>
  !!(document.querySelector(a).compareDocumentPosition(document.querySelector(b)) & Node.DOCUMENT_POSITION_FOLLOWING), [a, b]);

test("the first screen fits a 360×740 phone in all twelve languages", async () => {
  const relay = await startRelay();
  const b = await openBrowser({ mobile: true, locale: "en-GB" });
  try {
    const { page } = b;
    await page.goto(`${relay.url}/`);
    await assertButtonsFit(page, "en (served)");
    assert.ok(await order(page, "h1", ".warn"), "the title comes before the warning");
    assert.ok(await order(page, ".tagline", ".warn"), "the purpose comes before the warning");
    assert.ok(await order(page, "#languages", ".warn"), "the languages come before the warning");
    for (const lang of LANGS) {
      const tr = texts(lang);
      await page.locator(`#languages [data-lang="${lang}"]`).click();
      await untilState(page, "intake");
      // The change-language control: named by its visible words, big enough to tap.
      const change = page.locator("#change-language");
      const name = await change.evaluate((el) => el.textContent.trim());
      assert.ok(name.includes(tr.change_language), `${lang}: "${name}" names the control`);
      await assert.doesNotReject(page.getByRole("button", { name: tr.change_language }).first().waitFor({ timeout: 5000 }),
        `${lang}: a button whose accessible name says "${tr.change_language}"`);
      const box = await change.boundingBox();
      assert.ok(box.width >= 44 && box.height >= 44, `${lang}: change-language is ${box.width}×${box.height}`);
      await change.click();
      await untilState(page, "language");
      await page.evaluate(() => window.scrollTo(0, 0));
      // The screen is now in that language: purpose, what happens next, the warning.
      assert.equal((await page.locator("#s-language h1").textContent()).trim(), tr.app_title);
      for (const key of ["next_chat", "next_interpreter", "next_calls", "exit_warning"]) {
        assert.equal((await page.locator(`[data-i18n="${key}"]`).textContent()).trim(), tr[key], `${lang}: ${key}`);
        assert.ok(await page.locator(`[data-i18n="${key}"]`).isVisible(), `${lang}: ${key} is shown`);
      }
      await assertButtonsFit(page, lang);
    }
  } finally {
    await b.close();
    await relay.stop();
  }
});
