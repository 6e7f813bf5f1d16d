// A reload mid-conversation (or Back, or pull-to-refresh) used to end the conversation:
// the person landed on the language screen and the desk saw "session ended". Now the page
// warns before leaving, and if it reloads anyway it takes the same seat with the same
// operator and fresh end-to-end keys; the desk is told the person reconnected with new
// keys, and the safety codes match again (a new code). The tab keeps nothing once back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, send, sees, safetyCode, untilState, conversation, deskLanguage } from "./harness.mjs";

test("a reload takes the person back into the same conversation with new keys", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  try {
    await deskLanguage(operator, "en");
    await send(person.page, "before the reload");
    await sees(operator.page, "before the reload");
    const before = await safetyCode(person.page);

    let warned = false;
    person.page.on("dialog", async (d) => {
      if (d.type() === "beforeunload") warned = true;
      await d.accept();
    });
    await person.page.reload({ waitUntil: "load" });
    assert.ok(warned, "the page warned before leaving the conversation");

    await untilState(person.page, "chat");
    await sees(operator.page, "The person reconnected");
    await send(person.page, "after the reload");
    await sees(operator.page, "after the reload");
    await send(operator.page, "I am still here");
    await sees(person.page, "I am still here");

    const after = await safetyCode(person.page);
    assert.notEqual(after, before, "new keys, new code");
    assert.equal(after, await safetyCode(operator.page));
    const kept = await person.page.evaluate(() => sessionStorage.length);
    assert.equal(kept, 0, "the tab keeps nothing once the seat is taken back");
    assert.ok(!(await operator.page.locator("#messages").innerText()).includes("has ended"));
  } finally {
    await talk.close();
    await relay.stop();
  }
});
