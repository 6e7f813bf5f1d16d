// A waiting person whose connection drops is marked as such in the operator's queue (the
// relay re-sends the view when `away` changes), so the operator knows they may not answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin } from "./harness.mjs";

test("the queue marks a waiting person whose connection dropped", async () => {
  const relay = await startRelay();
  const operator = await openBrowser();
  const person = await openBrowser({ mobile: true });
  try {
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, relay.url);
    const row = operator.page.locator("#queue tbody tr").first();
    await row.waitFor({ timeout: 20_000 });
    assert.equal(await operator.page.locator("#queue .away-mark").count(), 0, "a connected person is not marked");

    await person.page.close(); // the person closes the tab: its connection closes
    await operator.page.locator("#queue tr.away .away-mark").first().waitFor({ timeout: 20_000 });
    assert.match(await operator.page.locator("#queue .away-mark").first().textContent(), /connessione persa/);
    assert.equal(await operator.page.locator("#queue tbody tr").count(), 1, "still in the queue: they may come back");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
