// The person's network drops mid-conversation (the connection is cut, as a network would
// cut it); the page reconnects by itself and no message is lost or doubled, including
// those the operator wrote while the person was away.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, startProxy, openBrowser, personStarts, deskLogin, acceptFirst, send, sees, untilState } from "./harness.mjs";

test("the page reconnects and resumes without loss", async () => {
  // WebSocket only: the proxy that cuts the connection is a TCP proxy (over WebTransport
  // the page would reach the relay's UDP port directly, past the proxy).
  const relay = await startRelay({ args: ["--no-quic"] });
  const proxy = await startProxy(relay.url);
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, proxy.url);
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await send(operator.page, "first");
    await sees(person.page, "first");

    proxy.cut();
    await send(operator.page, "while you were away 1");
    await send(operator.page, "while you were away 2");
    await sees(person.page, "while you were away 2", 30_000);
    await send(person.page, "I am back");
    await sees(operator.page, "I am back");

    const texts = await person.page.locator("#messages").allTextContents();
    const all = texts.join("\n");
    for (const m of ["first", "while you were away 1", "while you were away 2"]) {
      assert.equal(all.split(m).length - 1, 1, `"${m}" shown exactly once`);
    }
  } finally {
    await person.close();
    await operator.close();
    await proxy.close();
    await relay.stop();
  }
});
