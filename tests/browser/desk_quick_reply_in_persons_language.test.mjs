// A quick reply reads in the desk's language on the operator's button and is sent in the
// person's language (the session's), so the operator can reassure before an interpreter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startRelay, conversation, sees } from "./harness.mjs";

const { replies } = JSON.parse(readFileSync(new URL("../../web-client/quick-replies.json", import.meta.url), "utf8"));
const safe = replies.find((r) => r.id === "safe-to-talk");

test("a quick reply is sent in the person's language", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay, { language: "ro" });
  const { person, operator } = talk;
  try {
    const button = operator.page.locator('#quick-reply-list button[data-reply="safe-to-talk"]');
    assert.equal(await button.textContent(), safe.text.it, "the button reads in the desk's language");
    await button.click();
    await sees(person.page, safe.text.ro);
    await sees(operator.page, safe.text.ro);
    assert.equal((await person.page.locator("#messages").textContent()).includes(safe.text.it), false);
  } finally {
    await talk.close();
    await relay.stop();
  }
});
