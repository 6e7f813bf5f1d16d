// In a video call on a 360×740 phone, the person's own camera preview covers neither the
// "verified staff" badge nor the name under the operator's video.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, callConversation, startCall, untilStats, inbound } from "./harness.mjs";

const intersects = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

test("the self-preview never covers the verified badge", async () => {
  const relay = await startRelay();
  const pair = await callConversation(relay);
  const { person } = pair;
  try {
    await startCall(pair, { personVideo: true });
    const self = person.page.locator("#call-tiles video.self");
    await self.waitFor({ state: "visible", timeout: 20_000 });
    const badge = person.page.locator("#participants .verified");
    await badge.waitFor({ state: "visible" });
    // Right away (before any of the operator's video arrives: the moment it used to overlap)…
    const check = async (when) => {
      const s = await self.boundingBox();
      const b = await badge.boundingBox();
      assert.ok(s && b, "both are on screen");
      assert.ok(!intersects(s, b), `${when}: preview ${JSON.stringify(s)} covers the badge ${JSON.stringify(b)}`);
      for (const cap of await person.page.locator("#call-tiles figure.tile:not([hidden]) figcaption").all()) {
        const c = await cap.boundingBox();
        if (c) assert.ok(!intersects(s, c), `${when}: preview covers the name ${JSON.stringify(c)}`);
      }
    };
    await check("joining");
    // …and with the operator's video playing.
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 5, "the operator's video");
    await person.page.locator("#call-tiles figure.tile:not([hidden])").first().waitFor({ timeout: 20_000 });
    await check("in the call");
  } finally {
    await person.close();
    await pair.operator.close();
    await relay.stop();
  }
});
