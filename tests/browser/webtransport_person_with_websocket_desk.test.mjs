// The person's page talks over WebTransport (QUIC, the self-signed certificate pinned by
// the hash in /config.json) while the desk, in a browser without WebTransport, talks over
// WebSocket: one conversation, both ways, the same safety code, no CSP violation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, untilState, send, sees, safetyCode } from "./harness.mjs";

const transportOf = (page) => page.evaluate(() => document.documentElement.dataset.transport);

test("a WebTransport person and a WebSocket desk share one conversation", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser({ webTransport: false });
  try {
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, relay.url);
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await send(person.page, "Hello over QUIC");
    await sees(operator.page, "Hello over QUIC");
    await send(operator.page, "Hello over TCP");
    await sees(person.page, "Hello over TCP");
    assert.equal(await safetyCode(person.page), await safetyCode(operator.page));
    assert.equal(await transportOf(person.page), "webtransport");
    assert.equal(await transportOf(operator.page), "websocket");
    assert.deepEqual(await person.cspViolations(), [], "person: CSP violations");
    assert.deepEqual(await operator.cspViolations(), [], "desk: CSP violations");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
