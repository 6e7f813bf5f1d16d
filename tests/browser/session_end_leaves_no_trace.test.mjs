// When the conversation ends normally, the phone keeps nothing: no cookies,
// localStorage, sessionStorage, IndexedDB, Cache Storage or service worker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, send, sees, untilState, storageOf, conversation } from "./harness.mjs";

test("the end of a session leaves no storage behind", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const { person, operator } = talk;
  try {
    await send(person.page, "thank you, goodbye");
    await sees(operator.page, "thank you, goodbye");
    await person.page.locator("#end").click();
    await person.page.locator("#end-yes").click(); // "End the conversation?" — yes
    await untilState(person.page, "ended");
    const s = await storageOf(person.page, person.context);
    assert.deepEqual(s, { cookies: 0, localStorage: 0, sessionStorage: 0, indexedDB: 0, caches: 0, serviceWorkers: 0, cookie: "" });
    for (const o of [operator]) {
      const st = await storageOf(o.page, o.context);
      assert.equal(st.localStorage + st.sessionStorage + st.indexedDB + st.caches + st.cookies, 0, "the desk stores nothing either");
    }
  } finally {
    await talk.close();
    await relay.stop();
  }
});
