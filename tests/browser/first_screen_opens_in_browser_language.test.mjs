// The person's first screen opens in the browser's own language when it is one of the 12
// (first match by primary subtag in navigator.languages), and in English otherwise; the
// language buttons stay, and a tap on another language still wins.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startRelay, openBrowser, untilState } from "./harness.mjs";

const texts = (l) => JSON.parse(readFileSync(new URL(`../../web-client/i18n/${l}.json`, import.meta.url), "utf8"));

async function firstScreen(relay, locale) {
  const b = await openBrowser({ mobile: true, locale });
  await b.page.goto(`${relay.url}/`);
  return b;
}

test("a Ukrainian browser (uk-UA, then en) gets the first screen in Ukrainian", async () => {
  const relay = await startRelay();
  const b = await firstScreen(relay, "uk-UA");
  try {
    const uk = texts("uk");
    await b.page.waitForFunction(() => document.documentElement.lang === "uk", null, { timeout: 20_000 });
    assert.equal((await b.page.locator("#s-language h1").textContent()).trim(), uk.app_title);
    assert.equal((await b.page.locator("#choose-language").textContent()).trim(), uk.choose_language);
    assert.equal(await b.page.evaluate(() => document.body.dataset.state), "language", "still the language screen");
    assert.equal(await b.page.locator("#languages button").count(), 12);
    // The person may still choose another language.
    await b.page.locator('#languages [data-lang="fr"]').click();
    await untilState(b.page, "intake");
    assert.equal(await b.page.evaluate(() => document.documentElement.lang), "fr");
    assert.equal((await b.page.locator("#start").textContent()).trim(), texts("fr").start);
  } finally {
    await b.close();
    await relay.stop();
  }
});

test("an Arabic browser (ar-EG) gets Arabic, right to left", async () => {
  const relay = await startRelay();
  const b = await firstScreen(relay, "ar-EG");
  try {
    await b.page.waitForFunction(() => document.documentElement.lang === "ar", null, { timeout: 20_000 });
    assert.equal(await b.page.evaluate(() => document.documentElement.dir), "rtl");
    assert.equal((await b.page.locator("#s-language h1").textContent()).trim(), texts("ar").app_title);
  } finally {
    await b.close();
    await relay.stop();
  }
});

test("a German browser (none of ours) keeps English", async () => {
  const relay = await startRelay();
  const b = await firstScreen(relay, "de-DE");
  try {
    // Ready: the page warmed up its core; by then a translation would have been applied.
    await b.page.waitForFunction(() => document.body.dataset.core === "ready", null, { timeout: 20_000 });
    assert.equal(await b.page.evaluate(() => document.documentElement.lang), "en");
    assert.equal((await b.page.locator("#s-language h1").textContent()).trim(), texts("en").app_title);
  } finally {
    await b.close();
    await relay.stop();
  }
});
