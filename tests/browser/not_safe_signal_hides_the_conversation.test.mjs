// "I can't talk now": the person taps a discreet button (or types the deployment's code
// word) and staff are told at once, end to end, while the person's screen shows only a
// clock — no conversation, no preview — until the person taps it to come back. The code
// word itself is never sent as a message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, send, sees, conversation, deskLanguage } from "./harness.mjs";

const SIGNAL = "cannot talk freely";

async function signals(page) {
  return page.locator(`#messages li.not-safe`).count();
}

test("the silent signal reaches staff and hides the person's conversation", async () => {
  const relay = await startRelay({ args: ["--not-safe-word", "Weather"] });
  const talk = await conversation(relay);
  const { person, operator } = talk;
  try {
    await deskLanguage(operator, "en");
    await send(person.page, "hello, are you there?");
    await sees(operator.page, "hello, are you there?");

    await person.page.click("#not-safe");
    await sees(operator.page, SIGNAL);
    assert.equal(await person.page.locator("#neutral").isVisible(), true, "a clock is shown");
    assert.equal(await person.page.locator("#messages").isVisible(), false, "the conversation is hidden");
    assert.equal(await person.page.locator("#message-input").isVisible(), false);
    const shown = await person.page.evaluate(() => document.body.innerText);
    assert.ok(!shown.includes("hello, are you there?"), "no word of the conversation on screen");
    assert.ok(!(await person.page.title()).includes("Approdo"), "nor in the title");

    // Messages that arrive meanwhile stay hidden until the person comes back.
    await send(operator.page, "Understood. Write when you can.");
    await person.page.waitForFunction(() => document.querySelector("#messages").textContent.includes("Understood"));
    assert.ok(!(await person.page.evaluate(() => document.body.innerText)).includes("Understood"));
    await person.page.click("#neutral");
    await sees(person.page, "Understood. Write when you can.");
    assert.equal(await person.page.locator("#neutral").isVisible(), false);

    // The code word does the same and is never sent as words.
    await send(person.page, "  weather ");
    await operator.page.waitForFunction(() => document.querySelectorAll("#messages li.not-safe").length === 2);
    assert.equal(await signals(operator.page), 2);
    const desk = await operator.page.locator("#messages").innerText();
    assert.ok(!/weather/i.test(desk), "the code word never reaches staff as a message");
    assert.equal(await person.page.locator("#neutral").isVisible(), true);
  } finally {
    await talk.close();
    await relay.stop();
  }
});
