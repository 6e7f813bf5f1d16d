// The network the person's call used is lost for good in the middle of a video call (a
// phone leaving the shelter's Wi-Fi for mobile data): every datagram of that connection is
// dropped from then on, both ways. The person's page notices its connection staying
// "disconnected" and joins the call again on a new one, within seconds rather than the
// browser's ~30 s "failed"; video flows both ways again and the operator's call never
// ended.
import { test } from "node:test";
import assert from "node:assert/strict";
import { callStats, untilStats, inbound } from "./harness.mjs";
import { callThroughHop } from "./udp_hop.mjs";

test("the person's network is lost mid-call: the page joins again on a new connection", async () => {
  const { hop, person, operator, close } = await callThroughHop();
  try {
    const connectionsBefore = await person.page.evaluate(() => window.__pcs.length);

    const operatorBefore = inbound(await callStats(operator.page), "video", "framesDecoded");
    hop.blackout();
    const lostAt = Date.now();
    // Within 20 s: the browser by itself would call the old connection "failed" only after
    // about 30 s.
    await person.page.waitForFunction((n) => window.__pcs.length > n, connectionsBefore, { timeout: 20_000 });
    const rejoinedAfter = Date.now() - lostAt;
    // The new connection (callStats reads the newest live one) decodes the operator again,
    // and the operator's same connection decodes the person again.
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the person's new connection to decode the operator's video", 20_000);
    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > operatorBefore + 10, "the operator to decode the person's video again", 20_000);
    console.log(`new connection ${rejoinedAfter} ms after the network was lost; video both ways after ${Date.now() - lostAt} ms`);
    assert.equal(await operator.page.evaluate(() => window.__pcs.filter((p) => p.connectionState !== "closed").length), 1, "the operator kept the one connection");
    await operator.page.locator("#call-view").waitFor({ state: "visible" });
  } finally {
    await close();
  }
});
