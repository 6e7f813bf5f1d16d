// The person answers the operator's call with video: through the relay's SFU, the
// operator's browser decodes the person's video (frames decoded keep rising) and receives
// their audio, under the label of who the frames cryptographically came from; the person
// sees the operator; the chat goes on during the call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, callConversation, startCall, callStats, untilStats, inbound, send, sees } from "./harness.mjs";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

test("person and operator in a call: the operator decodes the person's video and audio", async () => {
  const relay = await startRelay();
  const pair = await callConversation(relay);
  const { person, operator } = pair;
  try {
    await startCall(pair, { personVideo: true });

    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the operator to decode the person's video");
    const first = inbound(await callStats(operator.page), "video", "framesDecoded");
    await sleep(2000);
    const later = await callStats(operator.page);
    assert.ok(inbound(later, "video", "framesDecoded") > first, `frames decoded keep rising (${first} -> ${inbound(later, "video", "framesDecoded")})`);
    assert.ok(inbound(later, "audio", "packetsReceived") > 0, "the person's audio arrives");

    // The tile is labelled from the decrypted frames' key, i.e. by the verified sender.
    const tile = operator.page.locator("#call-tiles figure.tile:not([hidden])");
    await tile.first().waitFor({ timeout: 10_000 });
    assert.equal(await tile.count(), 1, "one other participant shown");
    assert.match(await tile.locator("figcaption").textContent(), /Person/);

    // And the other way: the operator's camera (on by default for staff) reaches the person.
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the person to decode the operator's video");

    // The chat keeps working during the call.
    await send(person.page, "can you hear me?");
    await sees(operator.page, "can you hear me?");
    await send(operator.page, "yes, clearly");
    await sees(person.page, "yes, clearly");

    // The worker from a blob: URL, the transforms, the media: all within the CSP, no error.
    for (const [who, b] of [["person", person], ["operator", operator]]) {
      assert.deepEqual(await b.cspViolations(), [], `${who}: CSP violations`);
      assert.deepEqual(b.record.console.filter((l) => l.startsWith("pageerror")), [], `${who}: script errors`);
    }
    await person.page.screenshot({ path: process.env.CALL_SCREENSHOT || "/dev/null" }).catch(() => {});
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
