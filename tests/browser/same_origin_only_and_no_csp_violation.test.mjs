// Over a whole session on both pages, every request goes to the relay's own origin, no
// Content-Security-Policy violation fires, and no script error happens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, send, sees, untilState, foreignRequests } from "./harness.mjs";

test("no request to another origin and no CSP violation", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, relay.url, { language: "ar" });
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await send(person.page, "مرحبا");
    await sees(operator.page, "مرحبا");
    await send(operator.page, "hello");
    await sees(person.page, "hello");
    await person.page.locator("#exit").click();
    await person.page.waitForURL((u) => u.pathname === "/exit");
    for (const [who, b] of [["person", person], ["operator", operator]]) {
      assert.ok(b.record.requests.length > 3, `${who}: requests were recorded`);
      assert.deepEqual(foreignRequests(b.record, relay.url), [], `${who}: requests to other origins`);
      assert.deepEqual(await b.cspViolations(), [], `${who}: CSP violations`);
      assert.deepEqual(b.record.console.filter((l) => l.startsWith("pageerror")), [], `${who}: script errors`);
    }
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
