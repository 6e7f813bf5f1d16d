// Ending a call releases what the relay's SFU held for it: its legs (peer connections on the
// shards) and their routes (ICE fragments and the browsers' addresses) are all gone after the
// operator hangs up, and likewise after a second call ends with the session. The shards'
// sockets stay: they carry every call, on the configured ports only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, callConversation, startCall, untilStats, inbound, udpPortsOf, untilCensus, sfuCensus, SFU_ARGS, SFU_PORTS } from "./harness.mjs";

const inRange = (ports) => [...ports].filter((p) => p >= SFU_PORTS.min && p <= SFU_PORTS.max);
const empty = (c) => c.legs === 0 && c.routes === 0;

test("hanging up and ending the session free the SFU's legs and routes", async () => {
  const relay = await startRelay({ args: SFU_ARGS });
  const pair = await callConversation(relay);
  const { person, operator } = pair;
  try {
    assert.deepEqual(await sfuCensus(relay), { legs: 0, routes: 0 }, "nothing held before the call");
    const shards = inRange(udpPortsOf(relay.proc.pid)).sort();
    assert.deepEqual(shards, [SFU_PORTS.min, SFU_PORTS.max], "one socket per shard, on the configured ports");

    // Call 1, ended by the operator hanging up.
    await startCall(pair, { personVideo: true });
    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > 5, "media to flow");
    const during = await sfuCensus(relay);
    assert.equal(during.legs, 2, `one leg per participant during the call: ${JSON.stringify(during)}`);
    assert.ok(during.routes >= 4, `a fragment and an address per leg: ${JSON.stringify(during)}`);
    await operator.page.locator("#hang-up").click();
    await operator.page.locator("#call-view").waitFor({ state: "hidden", timeout: 10_000 });
    // The person, left alone, leaves too.
    await person.page.locator("#call-view").waitFor({ state: "hidden", timeout: 20_000 });
    await untilCensus(relay, empty, "after hang-up");

    // Call 2, ended with the session.
    await startCall(pair, { personVideo: false });
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 5, "media to flow again");
    await untilCensus(relay, (c) => c.legs === 2, "legs during the second call");
    await operator.page.locator("#end-session").click();
    await untilCensus(relay, empty, "after the session ended");
    assert.deepEqual(inRange(udpPortsOf(relay.proc.pid)).sort(), shards, "no port beyond the shards' ever");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
