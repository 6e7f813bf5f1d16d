// The scenario both TURN tests run: UDP unusable, so the person's direct connection to the
// relay's SFU cannot connect (the test gives that first peer connection no usable candidate
// at all), the page asks the relay for TURN credentials — only then — and joins again
// through a real coturn, over plain TCP or TLS. Frames decode both ways, the person's
// selected candidate pair is a relay candidate reached over that protocol, and the
// operator's call goes on throughout.
import assert from "node:assert/strict";
import {
  startRelay, startTurn, openBrowser, deskLogin, personStarts, acceptFirst, untilState, startCall,
  callStats, untilStats, inbound,
} from "./harness.mjs";

/**
 * Injected before the page's scripts: a peer connection made without ICE servers (the
 * direct attempt) gets `iceTransportPolicy: "relay"` and still no server, so it gathers no
 * candidate and can never connect — as if UDP were blocked. Every connection and its state
 * changes are logged with times in `window.__pcLog`.
 */
function blockDirect() {
  window.__pcLog = [];
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PC {
    constructor(config = {}, ...rest) {
      const direct = !(config.iceServers && config.iceServers.length);
      super(direct ? { ...config, iceServers: [], iceTransportPolicy: "relay" } : config, ...rest);
      const entry = {
        at: Date.now(),
        direct,
        urls: direct ? [] : config.iceServers.flatMap((s) => [].concat(s.urls)),
        policy: config.iceTransportPolicy ?? null,
        states: [],
      };
      window.__pcLog.push(entry);
      this.addEventListener("connectionstatechange", () => entry.states.push({ at: Date.now(), state: this.connectionState }));
      this.addEventListener("signalingstatechange", () => entry.states.push({ at: Date.now(), state: "signaling-" + this.signalingState }));
    }
  };
}

/** The local candidate of the pair in use, from a connection's stats. */
function selectedLocal(stats) {
  const byId = new Map(stats.map((s) => [s.id, s]));
  const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport && byId.get(transport.selectedCandidatePairId);
  return pair && byId.get(pair.localCandidateId);
}

/** Run the scenario with coturn listening on TCP, or on TLS when `tls`. */
export async function callFallsBackToTurn({ tls }) {
  const turn = await startTurn({ tls });
  const relay = await startRelay({ args: turn.args });
  // Over the WebSocket, so the test sees each frame the page sends.
  const person = await openBrowser({
    mobile: true, media: true, webTransport: false,
    // Chromium trusts the test's self-signed TURN certificate by its key, and nothing else.
    extraArgs: tls ? [`--ignore-certificate-errors-spki-list=${turn.spki}`] : [],
  });
  const operator = await openBrowser({ media: true });
  try {
    await person.context.addInitScript(blockDirect);
    const turnRequests = [];
    person.page.on("websocket", (ws) => ws.on("framesent", (f) => {
      const b = Buffer.isBuffer(f.payload) ? f.payload : Buffer.from(f.payload);
      // ClientFrame::TurnRequest{session}: index 20, then the 16-byte session id.
      if (b.length === 17 && b[0] === 0x14) turnRequests.push(Date.now());
    }));
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, relay.url);
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await startCall({ person, operator }, { personVideo: true });

    // Media flows both ways, through TURN on the person's side.
    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the operator to decode the person's video", 60_000);
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the person to decode the operator's video", 30_000);
    const first = inbound(await callStats(operator.page), "video", "framesDecoded");
    await new Promise((ok) => setTimeout(ok, 2000));
    const later = await callStats(operator.page);
    assert.ok(inbound(later, "video", "framesDecoded") > first, "the operator keeps decoding the person's video");
    assert.ok(inbound(await callStats(person.page), "audio", "packetsReceived") > 0, "the operator's audio reaches the person");

    const local = selectedLocal(await callStats(person.page));
    assert.ok(local, "the person has a selected candidate pair");
    assert.equal(local.candidateType, "relay", "the person's media goes through TURN");
    assert.equal(local.relayProtocol, tls ? "tls" : "tcp", tls ? "reached over TLS" : "reached over TCP");

    // The credentials were asked for once, after the direct attempt had its answer and
    // failed to connect, and the TURN connection came after them, with only the test's URL.
    const log = await person.page.evaluate(() => window.__pcLog);
    const direct = log.find((e) => e.direct);
    const viaTurn = log.filter((e) => !e.direct);
    assert.ok(direct, "a direct attempt first");
    assert.equal(turnRequests.length, 1, "one TurnRequest");
    assert.ok(viaTurn.length >= 1, "a connection through TURN");
    assert.ok(!direct.states.some((s) => s.state === "connected"), "the direct attempt never connected");
    const answered = direct.states.find((s) => s.state === "signaling-stable");
    assert.ok(answered, "the direct attempt got the relay's answer");
    assert.ok(turnRequests[0] >= answered.at + 5000, `asked ${turnRequests[0] - answered.at} ms after the answer, not before the direct attempt had its time`);
    assert.ok(viaTurn[0].at >= turnRequests[0], "the TURN connection follows the request");
    assert.deepEqual(viaTurn[0].urls, [turn.url]);
    assert.equal(viaTurn[0].policy, "relay");

    // The person's leave-and-join through TURN did not end the operator's call.
    assert.ok(await operator.page.locator("#call-view").isVisible(), "the operator is still in the call");
    for (const [who, b] of [["person", person], ["operator", operator]]) {
      assert.deepEqual(b.record.console.filter((l) => l.startsWith("pageerror")), [], `${who}: script errors`);
    }
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
    await turn.stop();
  }
}
