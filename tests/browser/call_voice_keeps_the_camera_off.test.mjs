// The person answers with voice only: their camera is never opened (no video track exists
// in the page, none is encoded, none reaches the operator), while they still see the
// operator's video; the call view shows the same safety code as both parties' chat.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, callConversation, startCall, callStats, untilStats, inbound, safetyCode } from "./harness.mjs";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

test("a voice call keeps the person's camera off and shows the safety code", async () => {
  const relay = await startRelay();
  const pair = await callConversation(relay);
  const { person, operator } = pair;
  try {
    await startCall(pair, { personVideo: false });

    // The person sees the operator's video, and the operator hears the person.
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the person to see the operator");
    await untilStats(operator.page, (s) => inbound(s, "audio", "packetsReceived") > 20, "the operator to hear the person");
    await sleep(2000);

    // No camera: no live video track in the person's page, nothing encoded, nothing received.
    const liveVideoTracks = await person.page.evaluate(() =>
      [...(window.__pcs || [])].flatMap((pc) => pc.getSenders()).filter((s) => s.track?.kind === "video" && s.track.readyState === "live").length);
    assert.equal(liveVideoTracks, 0, "no camera track is sent");
    const mine = await callStats(person.page);
    const encoded = mine.filter((s) => s.type === "outbound-rtp" && s.kind === "video").reduce((n, s) => n + (s.framesEncoded || 0), 0);
    assert.equal(encoded, 0, "no video frame encoded by the person");
    assert.equal(inbound(await callStats(operator.page), "video", "framesDecoded"), 0, "no video of the person reaches the operator");

    // The safety code in the call view is the conversation's, on both sides.
    const code = await safetyCode(person.page);
    assert.equal(await safetyCode(operator.page), code);
    assert.equal((await person.page.locator("#call-safety-code").textContent()).trim(), code, "the call view shows it");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
