// The desk's own lines in a conversation ("Person joined", "everyone confirmed: you,
// Person", "interpreter invited for Romanian") are worded in the desk's language of the
// moment: an operator who switches from Italian to English reads them all in English,
// names of roles and languages included, not English sentences with Italian words.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, conversation, deskLanguage } from "./harness.mjs";

const lines = (page) => page.locator("#messages li.sys").allTextContents();

test("system lines follow a change of the desk's language", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay, { language: "ro" });
  const { operator } = talk;
  try {
    await deskLanguage(operator, "it");
    await operator.page.waitForFunction(() =>
      [...document.querySelectorAll("#messages li.sys")].some((li) => li.textContent.includes("Tutti hanno confermato")));
    await operator.page.locator("#invite-language").selectOption("ro");
    await operator.page.locator("#invite").click();
    await operator.page.waitForFunction(() => document.querySelector("#messages").textContent.includes("rumeno"));
    const italian = (await lines(operator.page)).join("\n");
    assert.match(italian, /Persona è entrat/, italian);
    assert.match(italian, /Tutti hanno confermato gli stessi partecipanti: tu, Persona\./, italian);
    assert.match(italian, /Interprete invitato per: rumeno\./, italian);

    await deskLanguage(operator, "en");
    const english = (await lines(operator.page)).join("\n");
    assert.match(english, /Person joined \(verified\)\./, english);
    assert.match(english, /Everyone confirmed the same participants: you, Person\./, english);
    assert.match(english, /Interpreter invited for Romanian\./, english);
    assert.doesNotMatch(english, /\bPersona\b|\brumeno\b|\bInterprete\b/, "no Italian word left in the English lines");
  } finally {
    await talk.close();
    await relay.stop();
  }
});
