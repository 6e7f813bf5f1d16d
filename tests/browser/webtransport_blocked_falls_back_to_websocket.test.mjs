// When the QUIC port the relay announces does not answer (UDP dropped on the way), the
// person's page falls back to its WebSocket by itself after WEBTRANSPORT_TIMEOUT_MS
// (2.5 s) and reaches the operator; the person chooses nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { startRelay, conversation, send, sees } from "./harness.mjs";

test("a silent QUIC port falls back to the WebSocket", async () => {
  // A bound socket that never answers: datagrams to it vanish, as behind a firewall.
  const blackHole = dgram.createSocket("udp4");
  await new Promise((ok) => blackHole.bind(0, "127.0.0.1", ok));
  blackHole.on("message", () => {});
  const relay = await startRelay({ args: ["--quic-announce-port", String(blackHole.address().port)] });
  const started = Date.now();
  const talk = await conversation(relay);
  try {
    await send(talk.person.page, "Can you read me?");
    await sees(talk.operator.page, "Can you read me?");
    console.log(`person reached the operator over the fallback; the conversation was set up in ${Date.now() - started} ms`);
    assert.equal(await talk.person.page.evaluate(() => document.documentElement.dataset.transport), "websocket");
  } finally {
    await talk.close();
    await relay.stop();
    blackHole.close();
  }
});
