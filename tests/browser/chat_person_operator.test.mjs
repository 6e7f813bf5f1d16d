// The person (phone page) and an operator (desk) chat both ways through the real relay,
// and both screens show the same safety code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, send, sees, safetyCode, untilState } from "./harness.mjs";

test("person and operator chat both ways", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, relay.url);
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await send(person.page, "Hello, I need help");
    await sees(operator.page, "Hello, I need help");
    await send(operator.page, "I am here. You can write safely.");
    await sees(person.page, "I am here. You can write safely.");
    assert.equal(await safetyCode(person.page), await safetyCode(operator.page));
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
