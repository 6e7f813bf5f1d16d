// The desk gets a busy operator's attention: the tab title counts what waits for them, and
// (once they turn notifications on) a desktop notification says that someone waits in the
// queue and that a message arrived in a conversation not on screen — never what it says.
// Viewing that conversation clears its count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, send, untilState } from "./harness.mjs";

/** Records every Notification the page creates, and grants permission when asked. */
function recordNotifications() {
  window.__notes = [];
  window.Notification = class {
    static permission = "default";
    static requestPermission() {
      window.Notification.permission = "granted";
      return Promise.resolve("granted");
    }
    constructor(title, options = {}) {
      window.__notes.push({ title, body: options.body ?? "" });
    }
    close() {}
  };
}

const notes = (page) => page.evaluate(() => window.__notes);
const untilNote = (page, body) =>
  page.waitForFunction((b) => window.__notes.some((n) => n.body === b), body, { timeout: 20_000 });

test("title count and notifications for a waiting person and a background message", async () => {
  const relay = await startRelay();
  const operator = await openBrowser();
  const first = await openBrowser({ mobile: true });
  const second = await openBrowser({ mobile: true });
  try {
    await operator.context.addInitScript(recordNotifications);
    await deskLogin(operator, relay, "operator-national");
    await operator.page.locator("#notify-toggle").check();
    await operator.page.waitForFunction(() => window.Notification.permission === "granted");

    await personStarts(first, relay.url);
    await untilNote(operator.page, "C'è una persona in attesa in coda.");
    await operator.page.waitForFunction(() => document.title === "(1) Approdo — postazione");
    await acceptFirst(operator.page);
    await untilState(first.page, "chat");
    await operator.page.waitForFunction(() => document.title === "Approdo — postazione");

    await personStarts(second, relay.url);
    await operator.page.waitForFunction(() => window.__notes.filter((n) => n.body === "C'è una persona in attesa in coda.").length === 2);
    await acceptFirst(operator.page);
    await untilState(second.page, "chat");
    const firstTab = operator.page.locator("#sessions .tab").first();
    const firstSession = await firstTab.getAttribute("data-session");
    assert.notEqual(await operator.page.locator("#chat").getAttribute("data-session"), firstSession, "the second conversation is shown");

    const secret = "my employer keeps my passport";
    await send(first.page, secret);
    await untilNote(operator.page, "Nuovo messaggio in una conversazione.");
    await operator.page.waitForFunction(() => document.title === "(1) Approdo — postazione");
    for (const n of await notes(operator.page)) {
      assert.ok(!`${n.title} ${n.body}`.includes("passport"), "no message content in a notification");
    }

    await firstTab.click();
    await operator.page.locator("#messages").getByText(secret).waitFor();
    await operator.page.waitForFunction(() => document.title === "Approdo — postazione");
  } finally {
    for (const b of [operator, first, second]) await b.close();
    await relay.stop();
  }
});
