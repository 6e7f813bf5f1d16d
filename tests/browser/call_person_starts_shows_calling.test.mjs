// A call the person starts shows "calling the helpline…" until a staff member is in the
// call, and no longer once the operator joins.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startRelay, callConversation, untilStats, inbound } from "./harness.mjs";

test("the person's call rings until the operator joins", async () => {
  const relay = await startRelay();
  const pair = await callConversation(relay);
  const { person, operator } = pair;
  try {
    const calling = person.page.locator("#call-calling");
    await person.page.locator("#voice-call").click();
    await person.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
    await calling.waitFor({ state: "visible", timeout: 20_000 });
    assert.equal((await calling.textContent()).trim(), "Calling the helpline…");

    // The operator sees the call and joins it.
    const join = operator.page.locator("#start-call");
    // The desk's button turns into "join the call" (the desk opens in Italian).
    const deskIt = JSON.parse(readFileSync(new URL("../../web-client/i18n/desk/it.json", import.meta.url), "utf8"));
    await operator.page.waitForFunction((label) => {
      const b = document.querySelector("#start-call");
      return b && !b.hidden && !b.disabled && b.textContent.trim() === label;
    }, deskIt.join_call, { timeout: 20_000 });
    // Still ringing while nobody from the helpline is in the call.
    assert.ok(await calling.isVisible(), "still calling before the operator joins");
    await join.click();
    await calling.waitFor({ state: "hidden", timeout: 20_000 });
    await untilStats(person.page, (s) => inbound(s, "audio", "packetsReceived") > 0, "the operator's audio to reach the person");
    assert.ok(await person.page.locator("#call-view").isVisible(), "the call goes on");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
