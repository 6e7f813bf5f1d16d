// Accepting from the queue always opens the accepted conversation, even while an ended
// conversation is on screen (it used to stay on the ended one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, conversation, untilState } from "./harness.mjs";

test("accept opens the accepted conversation while an ended one is shown", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const next = await openBrowser({ mobile: true });
  const { operator } = talk;
  try {
    const title = operator.page.locator("#chat-title");
    const ended = (await title.textContent()).split(" · ").pop();
    await operator.page.locator("#end-session").click();
    await operator.page.locator("#ended-note").waitFor({ state: "visible" });

    await personStarts(next, relay.url);
    const accept = operator.page.locator("#queue button[data-session]").first();
    await accept.waitFor({ timeout: 20_000 });
    const accepted = await accept.getAttribute("data-session");
    assert.ok(!accepted.startsWith(ended));
    await accept.click();
    await untilState(next.page, "chat");

    // The conversation on screen is the accepted one (its title ends with the session's id).
    await operator.page.waitForFunction((id) => document.querySelector("#chat-title")?.textContent.endsWith(id.slice(0, 8)), accepted, { timeout: 20_000 });
    assert.ok(await operator.page.locator("#message-input").isVisible(), "the accepted conversation can be written in");
    assert.ok(await operator.page.locator("#ended-note").isHidden());
  } finally {
    await next.close();
    await talk.close();
    await relay.stop();
  }
});
