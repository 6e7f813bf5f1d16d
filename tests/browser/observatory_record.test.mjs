// Closing a case files the observatory record: the coordinator sees it counted under its
// month (one case: every count says "<5", never the record), and no session id or
// conversation text anywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, send, sees, untilState, deskLanguage } from "./harness.mjs";

test("closing a case stores the observatory record and nothing else", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  const coordinator = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    await deskLanguage(operator, "en");
    await personStarts(person, relay.url, { worker: "street-unit" });
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await operator.page.locator("#intake").getByText(/street/i).waitFor({ timeout: 20_000 });
    await send(person.page, "CANARY-browser-observatory");
    await sees(operator.page, "CANARY-browser-observatory");

    await operator.page.locator("#close-case").click();
    const form = operator.page.locator("#record-form");
    await form.waitFor({ state: "visible" });
    await form.locator('[name="gender"]').selectOption("female");
    await form.locator('[name="age"]').selectOption("18-25");
    await form.locator('[name="emerged"]').selectOption("veneto");
    await form.locator('[name="exploited"]').selectOption("veneto");
    await form.locator('input[name="exploitation"][value="sexual-street"]').check();
    await form.locator('[name="outcome"]').selectOption("referral");
    await operator.page.locator("#record-submit").click();
    await untilState(person.page, "ended");

    await deskLogin(coordinator, relay, "coordinator");
    await deskLanguage(coordinator, "en");
    await coordinator.page.locator("#load-observatory").click();
    const table = coordinator.page.locator("#observatory");
    await table.getByText(/referral/i).first().waitFor({ timeout: 20_000 });
    const text = await table.textContent();
    const month = new Date().toISOString().slice(0, 7);
    assert.match(text, new RegExp(month), "the record is counted under its month");
    const counts = await table.locator("td").allTextContents();
    assert.ok(counts.length > 0 && counts.every((c) => c === "<5"), "a single case shows only as <5");
    assert.doesNotMatch(text, /CANARY/, "no conversation in the observatory");
    assert.doesNotMatch(text, /[0-9a-f]{32}/, "no session id in the observatory");
  } finally {
    for (const b of [person, operator, coordinator]) await b.close();
    await relay.stop();
  }
});
