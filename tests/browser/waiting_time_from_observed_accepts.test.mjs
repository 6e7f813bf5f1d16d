// The waiting time shown comes from accepts the relay observed, in the language's plural:
// before any accept there is no estimate (never a built-in guess); after one, a person next
// in line reads "about 1 minute" (not "1 minutes"), and an Arabic speaker the Arabic form
// for one minute.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst } from "./harness.mjs";

const texts = (l) => JSON.parse(readFileSync(new URL(`../../web-client/i18n/${l}.json`, import.meta.url), "utf8"));

const waitShown = (page, text) => page.waitForFunction((text) => {
  const el = document.querySelector("#wait-time");
  return el.checkVisibility() && el.textContent.trim() === text;
}, text, { timeout: 30_000 });

test("no estimate before an accept; then one minute, singular", async () => {
  const relay = await startRelay();
  const operator = await openBrowser();
  const first = await openBrowser({ mobile: true });
  const english = await openBrowser({ mobile: true });
  const arabic = await openBrowser({ mobile: true });
  try {
    await deskLogin(operator, relay, "operator-national");
    await personStarts(first, relay.url, { language: "en" });
    await first.page.locator("#queue-position").filter({ hasText: /1/ }).waitFor({ timeout: 20_000 });
    assert.equal(await first.page.locator("#wait-time").isVisible(), false, "nothing observed yet: no estimate");

    // The operator takes the first person: one observed wait (counted as at least 30 s).
    await acceptFirst(operator.page);

    // Next in line with one operator: 30 s, shown as one minute.
    await personStarts(english, relay.url, { language: "en" });
    await waitShown(english.page, texts("en").estimated_wait_one.replace("{n}", "1"));
    assert.doesNotMatch(await english.page.locator("#wait-time").textContent(), /minutes/);

    await personStarts(arabic, relay.url, { language: "ar" });
    // Lines are per language: the Arabic speaker is first in theirs, and reads Arabic's
    // form for one minute.
    await waitShown(arabic.page, texts("ar").estimated_wait_one);
  } finally {
    for (const b of [operator, first, english, arabic]) await b.close();
    await relay.stop();
  }
});
