// The operator invites an interpreter; person, operator and interpreter all read each
// other, and the interpreter's private note reaches the operator only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, send, sees, safetyCode, untilState, interpreterJoins } from "./harness.mjs";

test("three-party chat with an interpreter", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  const interpreter = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    await deskLogin(interpreter, relay, "interpreter");
    await personStarts(person, relay.url, { language: "ro" });
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await interpreterJoins(operator, interpreter, "ro");

    await send(person.page, "Bună ziua, am nevoie de ajutor");
    await sees(operator.page, "Bună ziua, am nevoie de ajutor");
    await sees(interpreter.page, "Bună ziua, am nevoie de ajutor");
    await send(interpreter.page, "She says: good morning, I need help");
    await sees(operator.page, "She says: good morning, I need help");
    await sees(person.page, "She says: good morning, I need help");
    await send(operator.page, "Tell her we are here to help");
    await sees(person.page, "Tell her we are here to help");
    await sees(interpreter.page, "Tell her we are here to help");

    await interpreter.page.locator("#private").check();
    await send(interpreter.page, "She seems frightened");
    await sees(operator.page, "She seems frightened");
    await send(operator.page, "checkpoint after the private note");
    await sees(person.page, "checkpoint after the private note");
    assert.equal(await person.page.locator("#messages").getByText("She seems frightened").count(), 0, "private note not shown to the person");

    const codes = [await safetyCode(person.page), await safetyCode(operator.page), await safetyCode(interpreter.page)];
    assert.equal(new Set(codes).size, 1, `one safety code for all three: ${codes}`);
  } finally {
    for (const b of [person, operator, interpreter]) await b.close();
    await relay.stop();
  }
});
