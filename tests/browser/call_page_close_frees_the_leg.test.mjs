// A page that simply closes (no hang-up, no goodbye) in a call: the relay closes its leg at
// once from the signalling side (the connection dropped), without waiting for ICE consent to
// fail (5 s to "disconnected", about 30 s to "failed"), and forgets its routes; once the other
// page closes too, the SFU holds nothing.
//
// The pages use the WebSocket here: a browser killed outright sends no QUIC close, so over
// WebTransport the relay learns of it only at QUIC's 30 s idle timeout, with either SFU.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  startRelay, openBrowser, deskLogin, personStarts, acceptFirst, untilState, startCall, untilStats, inbound,
  untilCensus, sfuCensus,
} from "./harness.mjs";

test("closing the page frees its call leg and routes", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true, media: true, webTransport: false });
  const operator = await openBrowser({ media: true, webTransport: false });
  await deskLogin(operator, relay, "operator-national");
  await personStarts(person, relay.url);
  await acceptFirst(operator.page);
  await untilState(person.page, "chat");
  const pair = { person, operator };
  let personOpen = true;
  try {
    await startCall(pair, { personVideo: true });
    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > 5, "media to flow");
    const during = await sfuCensus(relay);
    assert.equal(during.legs, 2, JSON.stringify(during));

    const closed = Date.now();
    await operator.close();
    // Consent freshness alone would take 5 s to notice and about 30 s to give up.
    await untilCensus(relay, (c) => c.legs <= 1 && c.routes < during.routes, "after the operator's page closed", 4_000);
    const took = Date.now() - closed;
    assert.ok(took < 4_000, `leg closed ${took} ms after the page`);

    await person.close();
    personOpen = false;
    await untilCensus(relay, (c) => c.legs === 0 && c.routes === 0, "after both pages closed", 4_000);
  } finally {
    if (personOpen) await person.close();
    await relay.stop();
  }
});
