// In a call, every remote ICE candidate the person's and the operator's browsers know is
// the relay's: host, 127.0.0.1, a port of the relay's configured UDP range that the relay
// process itself holds. None is the other browser's, so neither learns the other's address.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, callConversation, startCall, callStats, untilStats, inbound, udpPortsOf, SFU_ARGS, SFU_PORTS } from "./harness.mjs";

test("each browser's only remote candidates are the relay's", async () => {
  const relay = await startRelay({ args: SFU_ARGS });
  const pair = await callConversation(relay);
  const { person, operator } = pair;
  try {
    await startCall(pair, { personVideo: true });
    for (const b of [person, operator]) {
      await untilStats(b.page, (s) => inbound(s, "video", "framesDecoded") > 5, "media to flow");
    }
    const relayPorts = udpPortsOf(relay.proc.pid);
    const stats = { person: await callStats(person.page), operator: await callStats(operator.page) };
    const localPorts = (s) => new Set(s.filter((x) => x.type === "local-candidate").map((x) => x.port));
    for (const [name, other] of [["person", "operator"], ["operator", "person"]]) {
      const remote = stats[name].filter((s) => s.type === "remote-candidate");
      assert.ok(remote.length > 0, `${name} has remote candidates`);
      for (const c of remote) {
        const where = `${name}: ${c.candidateType} ${c.address ?? c.ip}:${c.port}`;
        assert.equal(c.address ?? c.ip, "127.0.0.1", `${where}: the relay's address`);
        assert.equal(c.candidateType, "host", `${where}: a host candidate`);
        assert.ok(c.port >= SFU_PORTS.min && c.port <= SFU_PORTS.max, `${where}: in the relay's range`);
        assert.ok(relayPorts.has(c.port), `${where}: a port the relay process holds`);
        assert.ok(!localPorts(stats[other]).has(c.port), `${where}: not one of the ${other}'s ports`);
      }
      // The pair in use leads to one of them.
      const pairs = stats[name].filter((s) => s.type === "candidate-pair" && s.state === "succeeded" && s.nominated);
      assert.ok(pairs.length > 0, `${name}: a connected candidate pair`);
      const remoteIds = new Set(remote.map((c) => c.id));
      for (const p of pairs) assert.ok(remoteIds.has(p.remoteCandidateId), `${name}: the pair in use goes to the relay`);
    }
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
