// The "I can't talk now" clock works from a keyboard as from a tap: the signal sent with
// Enter puts the focus on the clock (nothing of the conversation keeps it), and Enter on
// the clock brings the conversation back with the focus in the message box.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, conversation, sees, deskLanguage } from "./harness.mjs";

const focusedId = (page) => page.evaluate(() => document.activeElement?.id || "");

test("the neutral view is left and entered with the keyboard", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  try {
    await deskLanguage(operator, "en");
    await person.page.focus("#not-safe");
    await person.page.keyboard.press("Enter");
    await person.page.locator("#neutral").waitFor({ state: "visible" });
    assert.equal(await focusedId(person.page), "neutral", "the focus is on the clock");
    assert.equal(await person.page.locator("#messages").isVisible(), false);
    await sees(operator.page, "cannot talk freely");

    await person.page.keyboard.press("Enter");
    await person.page.locator("#neutral").waitFor({ state: "hidden" });
    assert.equal(await person.page.locator("#messages").isVisible(), true, "the conversation is back");
    assert.equal(await focusedId(person.page), "message-input", "the focus is in the message box");
  } finally {
    await talk.close();
    await relay.stop();
  }
});
