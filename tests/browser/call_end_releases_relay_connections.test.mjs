// Ending a call releases the relay's peer connections: the UDP ports of the relay's call
// range that its process holds during the call are all free again after the operator hangs
// up, and likewise after a second call ends with the session.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, callConversation, startCall, untilStats, inbound, udpPortsOf, SFU_ARGS, SFU_PORTS } from "./harness.mjs";

const inRange = (ports) => [...ports].filter((p) => p >= SFU_PORTS.min && p <= SFU_PORTS.max);

async function untilPorts(relay, pred, what, timeout = Number(process.env.PORTS_TIMEOUT || 15_000)) {
  const end = Date.now() + timeout;
  let ports = [];
  while (Date.now() < end) {
    ports = inRange(udpPortsOf(relay.proc.pid));
    if (pred(ports)) return ports;
    await new Promise((ok) => setTimeout(ok, 250));
  }
  assert.fail(`${what}: relay still holds ${ports.join(", ") || "none"}`);
}

test("hanging up and ending the session free the relay's call ports", async () => {
  const relay = await startRelay({ args: SFU_ARGS });
  const pair = await callConversation(relay);
  const { person, operator } = pair;
  try {
    assert.deepEqual(inRange(udpPortsOf(relay.proc.pid)), [], "no call port bound before the call");

    // Call 1, ended by the operator hanging up.
    await startCall(pair, { personVideo: true });
    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > 5, "media to flow");
    const during = await untilPorts(relay, (p) => p.length >= 2, "one port per participant during the call");
    assert.ok(during.length >= 2, `ports bound during the call: ${during}`);
    await operator.page.locator("#hang-up").click();
    await operator.page.locator("#call-view").waitFor({ state: "hidden", timeout: 10_000 });
    // The person, left alone, leaves too.
    await person.page.locator("#call-view").waitFor({ state: "hidden", timeout: 20_000 });
    await untilPorts(relay, (p) => p.length === 0, "after hang-up");

    // Call 2, ended with the session.
    await startCall(pair, { personVideo: false });
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 5, "media to flow again");
    await untilPorts(relay, (p) => p.length >= 2, "ports bound during the second call");
    await operator.page.locator("#end-session").click();
    await untilPorts(relay, (p) => p.length === 0, "after the session ended");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
