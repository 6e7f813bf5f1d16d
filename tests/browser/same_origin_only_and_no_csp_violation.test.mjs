// Over a whole session on both pages, every request goes to the relay's own origin, no
// Content-Security-Policy violation fires, and no script error happens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, send, sees, untilState, foreignRequests, conversation } from "./harness.mjs";

test("no request to another origin and no CSP violation", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay, { language: "ar" });
  const { person, operator } = talk;
  try {
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
    await talk.close();
    await relay.stop();
  }
});
