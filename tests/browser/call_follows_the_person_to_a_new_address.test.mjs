// The person's address changes in the middle of a video call, as when a phone's NAT
// rebinds or it moves between networks: a UDP hop between the person's browser and the
// relay's SFU starts using a new source port, and the old one is gone. Neither browser is
// told. The relay follows the person to the new address: both sides keep decoding video,
// the person's page needs no new connection (no rejoin, no TURN), and the relay counts the
// move.
import { test } from "node:test";
import assert from "node:assert/strict";
import { callStats, untilStats, inbound } from "./harness.mjs";
import { callThroughHop } from "./udp_hop.mjs";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

test("the person's address changes mid-call: the relay follows, the call goes on without a rejoin", async () => {
  const { hop, relay, person, operator, close } = await callThroughHop();
  try {
    const remote = (await callStats(person.page)).find((s) => s.type === "remote-candidate");
    assert.equal(remote?.port, hop.port, "the person's media goes through the hop");
    const connectionsBefore = await person.page.evaluate(() => window.__pcs.length);

    await hop.move();
    const movedAt = Date.now();
    const personBefore = inbound(await callStats(person.page), "video", "framesDecoded");
    const operatorBefore = inbound(await callStats(operator.page), "video", "framesDecoded");
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > personBefore + 30, "the moved person to decode the operator's video again", 20_000);
    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > operatorBefore + 30, "the operator to decode the moved person's video", 20_000);
    console.log(`video decoding again on both sides ${Date.now() - movedAt} ms after the move`);

    // Past the 5 s "disconnected" mark of ICE on either side, still flowing.
    await sleep(6000);
    const late = inbound(await callStats(person.page), "video", "framesDecoded");
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > late + 10, "video to keep reaching the person", 10_000);
    assert.equal(await person.page.evaluate(() => window.__pcs.length), connectionsBefore, "no new connection: the call followed the person");
    const text = await (await fetch(relay.metrics)).text();
    assert.match(text, /^approdo_sfu_path_moves_total [1-9]\d*$/m, "the relay counted the move");
  } finally {
    await close();
  }
});
