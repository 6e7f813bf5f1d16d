// The region choices are named in the person's language (the deployment's `names` for each
// desk in /config.json), falling back to the configured name where it gave none.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, untilState } from "./harness.mjs";

const regions = (page) => page.locator("#region option").evaluateAll((os) => os.map((o) => [o.value, o.textContent]));

test("region names follow the person's language", async () => {
  const relay = await startRelay();
  const b = await openBrowser({ mobile: true, locale: "en-GB" });
  try {
    const { page } = b;
    await page.goto(`${relay.url}/`);
    await page.locator('#languages [data-lang="fr"]').click();
    await untilState(page, "intake");
    await page.waitForFunction(() => document.querySelectorAll("#region option").length === 3);
    const fr = new Map(await regions(page));
    assert.equal(fr.get("toscana"), "Toscane — projet régional");
    assert.equal(fr.get("veneto"), "Vénétie — N.A.Ve");

    await page.locator("#change-language").click();
    await page.locator('#languages [data-lang="ar"]').click();
    await untilState(page, "intake");
    const ar = new Map(await regions(page));
    assert.equal(ar.get("toscana"), "توسكانا — مشروع إقليمي");

    // Albanian: a name for Tuscany, none for Veneto: the configured name.
    await page.locator("#change-language").click();
    await page.locator('#languages [data-lang="sq"]').click();
    await untilState(page, "intake");
    const sq = new Map(await regions(page));
    assert.equal(sq.get("toscana"), "Toskana — projekt rajonal");
    assert.equal(sq.get("veneto"), "Veneto — N.A.Ve");
  } finally {
    await b.close();
    await relay.stop();
  }
});
