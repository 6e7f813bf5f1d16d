// "End conversation" asks for confirmation in the page (no window.confirm): Cancel keeps the
// conversation going; confirming ends it. The quick exit never asks, even with the question
// on screen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, conversation, send, sees, untilState } from "./harness.mjs";

test("ending asks first; cancel keeps talking; yes ends", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  const browserDialogs = [];
  person.page.on("dialog", (d) => { browserDialogs.push(d.type()); d.dismiss().catch(() => {}); });
  try {
    const ask = person.page.locator("#end-confirm");
    await person.page.locator("#end").click();
    await ask.waitFor({ state: "visible" });
    assert.equal(await person.page.evaluate(() => document.body.dataset.state), "chat", "asking ends nothing");
    await person.page.locator("#end-cancel").click();
    await ask.waitFor({ state: "hidden" });

    // Still talking, both ways.
    await send(person.page, "still here");
    await sees(operator.page, "still here");
    await send(operator.page, "good");
    await sees(person.page, "good");

    await person.page.locator("#end").click();
    await person.page.locator("#end-yes").click();
    await untilState(person.page, "ended");
    await operator.page.locator("#ended-note").waitFor({ state: "visible", timeout: 20_000 });
    assert.deepEqual(browserDialogs, [], "no window.confirm or other browser dialog");
  } finally {
    await talk.close();
    await relay.stop();
  }
});

test("the quick exit never asks, even while the question is shown", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  const browserDialogs = [];
  person.page.on("dialog", (d) => { browserDialogs.push(d.type()); d.dismiss().catch(() => {}); });
  try {
    await person.page.locator("#end").click();
    await person.page.locator("#end-confirm").waitFor({ state: "visible" });
    await person.page.locator("#exit").click();
    await person.page.waitForURL((u) => u.pathname === "/exit");
    await operator.page.locator("#ended-note").waitFor({ state: "visible", timeout: 20_000 });
    assert.deepEqual(browserDialogs, [], "no beforeunload or confirm prompt");
  } finally {
    await talk.close();
    await relay.stop();
  }
});
