// The desk opens in Italian (the hotline's working language) and switches to English when
// the operator chooses it; the page's `lang` follows, and the choice is stored nowhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, storageOf } from "./harness.mjs";

test("the desk opens in Italian and switches to English", async () => {
  const relay = await startRelay();
  const b = await openBrowser();
  try {
    await b.page.goto(`${relay.url}/desk`);
    await b.page.waitForFunction(() => document.querySelector("#login-view h2")?.textContent === "Accesso del personale");
    assert.equal(await b.page.evaluate(() => document.documentElement.lang), "it");
    assert.equal(await b.page.locator("#login").textContent(), "Sblocca e accedi");
    assert.equal(await b.page.title(), "Approdo — postazione");

    await b.page.locator("#desk-language").selectOption("en");
    await b.page.waitForFunction(() => document.documentElement.lang === "en");
    assert.equal(await b.page.locator("#login-view h2").textContent(), "Staff sign-in");
    assert.equal(await b.page.locator("#login").textContent(), "Unlock and sign in");
    assert.equal(await b.page.title(), "Approdo desk");

    const st = await storageOf(b.page, b.context);
    assert.equal(st.localStorage + st.sessionStorage + st.indexedDB + st.caches + st.cookies, 0, "the choice is not stored");
  } finally {
    await b.close();
    await relay.stop();
  }
});
