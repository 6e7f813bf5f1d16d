// Focus goes where the next action is, so a keyboard or screen-reader user never has to
// hunt for it: on the person's page to the message box after Start (they may write while
// waiting) and again when an operator joins; on the desk, accepting a person moves focus
// to that conversation's message box.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, deskLogin, personStarts, acceptFirst, untilState } from "./harness.mjs";

const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return el === document.body || !el ? "body" : `${el.tagName.toLowerCase()}#${el.id}${el.closest("#chat") ? " in #chat" : ""}`;
});

test("focus moves to the message box after Start, when an operator joins, and on accept", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, relay.url);
    await untilState(person.page, "waiting");
    assert.equal(await focused(person.page), "input#message-input", "after Start, the message box");

    // The person's focus is elsewhere (they read the page) when the operator answers.
    await person.page.evaluate(() => document.activeElement.blur());
    assert.equal(await focused(person.page), "body");
    await acceptFirst(operator.page);
    assert.equal(await focused(operator.page), "textarea#message-input in #chat", "on the desk, the accepted conversation's message box");
    await untilState(person.page, "chat");
    assert.equal(await focused(person.page), "input#message-input", "when the operator joins, the message box");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
