// A receiver whose media worker holds a wrong key for the sender (every receive key it is
// given is swapped for random bytes, test-side) receives the packets but decodes nothing:
// frames that do not authenticate are dropped before the decoder, and no tile appears.
// The person, with the right key, decodes the same call normally.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, callConversation, startCall, callStats, untilStats, inbound } from "./harness.mjs";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

test("with a wrong key the operator receives packets and decodes no frame", async () => {
  const relay = await startRelay();
  const pair = await callConversation(relay);
  const { person, operator } = pair;
  try {
    await operator.page.evaluate(() => { window.__wrongReceiveKeys = true; });
    await startCall(pair, { personVideo: true });

    // Control: the call itself works (the person has the operator's real key).
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the person to decode the operator's video");

    await untilStats(operator.page, (s) => inbound(s, "video", "packetsReceived") > 50 && inbound(s, "audio", "packetsReceived") > 50,
      "the person's packets to reach the operator");
    await sleep(3000);
    const stats = await callStats(operator.page);
    assert.ok(inbound(stats, "video", "packetsReceived") > 50, "video packets arrive");
    assert.equal(inbound(stats, "video", "framesDecoded"), 0, "no video frame decoded");
    assert.equal(inbound(stats, "video", "framesReceived"), 0, "no video frame even reaches the decoder");
    assert.equal(await operator.page.locator("#call-tiles figure.tile:not([hidden])").count(), 0, "nobody shown: no frame authenticated");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
