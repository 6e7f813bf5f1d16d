// The person (phone page) and an operator (desk) chat both ways through the real relay,
// and both screens show the same safety code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, send, sees, safetyCode, untilState, conversation } from "./harness.mjs";

test("person and operator chat both ways", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  try {
    await send(person.page, "Hello, I need help");
    await sees(operator.page, "Hello, I need help");
    await send(operator.page, "I am here. You can write safely.");
    await sees(person.page, "I am here. You can write safely.");
    assert.equal(await safetyCode(person.page), await safetyCode(operator.page));
  } finally {
    await talk.close();
    await relay.stop();
  }
});
