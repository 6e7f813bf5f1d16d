// Quick exit, by the button and by pressing Shift three times: the page is blanked, the
// history entry replaced (Back does not return to the conversation), the server answers
// with Clear-Site-Data, and no storage of any kind is left.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, send, sees, storageOf, conversation } from "./harness.mjs";

async function exitsCleanly(how) {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  try {
    await send(person.page, "please help");
    await sees(operator.page, "please help");
    const historyBefore = await person.page.evaluate(() => history.length);

    const exitResponse = person.page.waitForResponse((r) => new URL(r.url()).pathname === "/exit");
    if (how === "button") {
      await person.page.locator("#exit").click();
    } else {
      await person.page.locator("#message-input").click();
      for (let i = 0; i < 3; i++) await person.page.keyboard.press("Shift");
    }
    const response = await exitResponse;
    await person.page.waitForURL((u) => u.pathname === "/exit");
    // allHeaders(): Chromium reports security headers such as Clear-Site-Data only there.
    assert.match((await response.allHeaders())["clear-site-data"] ?? "", /"storage"/, "Clear-Site-Data on /exit");
    assert.equal(await person.page.evaluate(() => history.length), historyBefore, "history entry replaced, not added");
    assert.doesNotMatch(await person.page.content(), /please help/, "nothing of the conversation on the page");
    const s = await storageOf(person.page, person.context);
    assert.deepEqual(s, { cookies: 0, localStorage: 0, sessionStorage: 0, indexedDB: 0, caches: 0, serviceWorkers: 0, cookie: "" });
    // The operator sees the session end.
    await operator.page.locator("#ended-note").waitFor({ state: "visible", timeout: 20_000 });
  } finally {
    await talk.close();
    await relay.stop();
  }
}

test("quick exit by the button", () => exitsCleanly("button"));
test("quick exit by pressing Shift three times", () => exitsCleanly("keys"));
