// A UDP hop between a browser and the relay's SFU, for the tests of a call member whose
// network changes mid-call. The relay runs one SFU shard on a known port; an init script
// makes the page's peer connections reach that port through the hop, which a test can then
// make look like a NAT rebinding (`move`: a new source port towards the relay, the old one
// closed) or a lost network (`blackout`: every flow so far dropped for good; a new
// connection from the browser gets through).
import dgram from "node:dgram";
import {
  startRelay, openBrowser, deskLogin, personStarts, acceptFirst, untilState, startCall,
  untilStats, inbound,
} from "./harness.mjs";

async function udpSocket() {
  const s = dgram.createSocket("udp4");
  await new Promise((ok) => s.bind(0, "127.0.0.1", ok));
  return s;
}

/** A free UDP port on loopback (for the relay's one SFU shard). */
async function freeUdpPort() {
  const s = await udpSocket();
  const port = s.address().port;
  await new Promise((ok) => s.close(ok));
  return port;
}


/** Start a hop in front of the SFU at `sfuPort`. */
async function startUdpHop(sfuPort) {
  const front = await udpSocket();
  const flows = new Map(); // browser "address:port" -> { back, dead }
  const opening = new Map();
  const backFor = async (from) => {
    const key = `${from.address}:${from.port}`;
    let flow = flows.get(key);
    if (flow) return flow;
    if (!opening.has(key)) {
      opening.set(key, (async () => {
        const f = { back: await udpSocket(), dead: false, to: from };
        f.back.on("message", (m) => { if (!f.dead) front.send(m, f.to.port, f.to.address); });
        flows.set(key, f);
        return f;
      })());
    }
    return opening.get(key);
  };
  front.on("message", async (m, from) => {
    const flow = await backFor(from);
    if (!flow.dead) flow.back.send(m, sfuPort, "127.0.0.1");
  });
  return {
    port: front.address().port,
    /** Every flow continues from a new source port; the old ports are closed. */
    async move() {
      for (const flow of flows.values()) {
        if (flow.dead) continue;
        const old = flow.back;
        const next = await udpSocket();
        next.on("message", (m) => { if (!flow.dead) front.send(m, flow.to.port, flow.to.address); });
        flow.back = next;
        old.close();
      }
    },
    /** Every flow so far is cut for good, both ways. */
    blackout() {
      for (const flow of flows.values()) {
        flow.dead = true;
        try { flow.back.close(); } catch { /* closed */ }
      }
    },
    close() {
      for (const flow of flows.values()) { try { flow.back.close(); } catch { /* closed */ } }
      front.close();
    },
  };
}

/** Init script: the relay's answers name the hop's port instead of the SFU's. */
function answersNameTheHop([sfuPort, hopPort]) {
  const set = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (d, ...rest) {
    if (d && d.type === "answer" && typeof d.sdp === "string") {
      d = { type: d.type, sdp: d.sdp.replaceAll(` ${sfuPort} typ host`, ` ${hopPort} typ host`) };
    }
    return set.call(this, d, ...rest);
  };
}

/**
 * A relay with one SFU shard, the person's browser reaching it through a hop, the national
 * operator, an accepted session and a video call decoding both ways. `close()` ends it all.
 */
export async function callThroughHop() {
  const sfuPort = await freeUdpPort();
  const hop = await startUdpHop(sfuPort);
  const relay = await startRelay({ args: ["--sfu-port", String(sfuPort), "--sfu-shards", "1"] });
  const person = await openBrowser({ mobile: true, media: true });
  const operator = await openBrowser({ media: true });
  const close = async () => {
    await person.close();
    await operator.close();
    hop.close();
    await relay.stop();
  };
  try {
    await person.context.addInitScript(answersNameTheHop, [sfuPort, hop.port]);
    await deskLogin(operator, relay, "operator-national");
    await personStarts(person, relay.url);
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await startCall({ person, operator }, { personVideo: true });
    await untilStats(operator.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the operator to decode the person's video");
    await untilStats(person.page, (s) => inbound(s, "video", "framesDecoded") > 10, "the person to decode the operator's video");
  } catch (e) {
    await close();
    throw e;
  }
  return { hop, relay, person, operator, close };
}
