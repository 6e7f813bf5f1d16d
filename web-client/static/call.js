// Voice and video calls, shared by the person's page and the desk (web-client/CONTRACT.md,
// "Calls"). One RTCPeerConnection to the relay only (no ICE servers, unless the direct
// connection failed and the relay's TURN server is used instead); every encoded frame
// is encrypted end to end in /media-worker.js (SFrame) with keys the core sends over the
// Noise channels. The page gives this module the session's events and draws the buttons;
// this module owns the connection, the worker, the camera and microphone, and the video
// tiles. Nothing here logs keys, SDP or messages, and nothing is stored.
import { checked, h } from "/common.js";
import { SAMPLE_MS, initialQuality, sampleOf, decide, cameraTurnedOn } from "/call-quality.js";

/** Receive slots: each carries one other participant (the relay chooses which), so a call
 * holds as many as a session: six. */
export const CALL_SLOTS = 5;
const CAMERA = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
/** With more than this many others, every receiver decodes that many streams (a phone, five):
 * send 320×180 at 15 fps, at most 300 kbit/s, instead of the camera's 640×360 at 24. */
const LARGE_CALL = 2;
const LARGE_VIDEO = { scaleResolutionDownBy: 2, maxFramerate: 15, maxBitrate: 300_000 };
const MICROPHONE = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
/** How long the direct connection may take after the answer before TURN is asked for. */
const DIRECT_MS = 6000;
/**
 * How long a connection that was up may stay "disconnected" before the page joins again on
 * a new one. The relay follows a member whose address merely changed (a NAT rebinding) on
 * its own, within a check interval; a phone that lost the network its connection used
 * (Wi-Fi gone, now on mobile data) needs a new connection, and the browser alone would only
 * give up on the old one after about 30 s.
 */
const LOST_MS = 4000;
/** A member who leaves and joins again within this (a retry through TURN) is not "gone". */
const END_GRACE_MS = 2500;

/** Whether this browser can take part: WebRTC and a way to transform encoded frames. */
export function callSupported() {
  return typeof RTCPeerConnection === "function" && !!navigator.mediaDevices?.getUserMedia &&
    (typeof RTCRtpScriptTransform === "function" ||
      (typeof RTCRtpSender === "function" && "createEncodedStreams" in RTCRtpSender.prototype));
}

// The worker is fetched with the hash the build listed for it, then started from a blob:
// URL (CSP worker-src blob:), so what runs is exactly what the integrity list names.
let workerUrl = null;
async function startWorker() {
  if (!workerUrl) {
    const r = await checked("/media-worker.js");
    if (!r.ok) throw new Error("worker " + r.status);
    workerUrl = URL.createObjectURL(new Blob([await r.text()], { type: "text/javascript" }));
  }
  return new Worker(workerUrl, { name: "media" });
}

/** The hex key of a `media-key` event as an ArrayBuffer (given to the worker, not kept). */
function keyBuffer(hex) {
  if (typeof hex !== "string" || !/^[0-9a-f]{32}$/i.test(hex)) return null;
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return b.buffer;
}

/** An SDP without its ICE candidate lines. */
export function withoutCandidates(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") && l !== "a=end-of-candidates").join("\r\n");
}

/** Only VP8 and Opus (what the relay forwards, and what the worker's clear prefix knows). */
function preferCodec(transceiver, kind) {
  const want = kind === "video" ? "video/vp8" : "audio/opus";
  try {
    const codecs = (RTCRtpReceiver.getCapabilities(kind)?.codecs || []).filter((c) => c.mimeType.toLowerCase() === want);
    if (codecs.length) transceiver.setCodecPreferences(codecs);
  } catch { /* the browser's default order still offers them */ }
}

/**
 * One session's call. hooks (all optional):
 *   change()                       — state, members, mute or camera changed: redraw buttons
 *   notice(key)                    — "call_audio_fallback", "call_video_possible",
 *                                    "call_failed", "call_no_support", "call_ended"
 *   label(participant) -> string   — the verified name to put under their video
 */
export class Call {
  constructor({ session, client, pump, hooks = {} }) {
    Object.assign(this, { session, client, pump, hooks });
    this.state = "idle"; // idle | joining | in-call
    this.members = []; // everyone in the call, as the core last said
    this.peers = new Set(); // other participants of the session (from peer-* events)
    this.me = null; // our participant number, once our own key told it
    this.pc = null;
    this.worker = null;
    this.mic = null;
    this.cam = null;
    this.muted = false;
    this.quality = initialQuality();
    this.sample = null;
    this.timer = 0;
    this.wasIn = false; // the relay has listed us as a member since we joined
    this.hadOthers = false; // someone else was in the call with us
    this.rejoins = []; // when we joined again lately
    this.turn = null; // TURN credentials from the relay, once the direct connection failed
    this.turnAsked = false;
    this.iceTimer = 0;
    this.lostTimer = 0;
    this.endTimer = 0;
    this.view = h("div", { class: "call-tiles" });
    this.self = h("video", { class: "self", autoplay: true, muted: true, playsInline: true, hidden: true });
    this.tiles = [];
  }

  get cameraOn() { return !!this.cam; }
  get active() { return this.state !== "idle"; }
  /** Others in the call now (not us). */
  get others() { return this.members.filter((m) => m !== this.me && this.peers.has(m)); }

  /** Feed every event of this session. */
  onEvent(ev) {
    switch (ev.type) {
      case "peer-arrived":
      case "peer-verified":
        this.peers.add(ev.peer);
        break;
      case "peer-left":
        this.peers.delete(ev.peer);
        break;
      case "call-members": return this.onMembers(ev.members || []);
      case "media-key": return this.onKey(ev);
      case "call-answer": return this.onAnswer(ev.sdp);
      case "turn": return this.onTurn(ev);
      case "resumed":
        // The relay dropped our call with the connection: join again, on a new connection
        // (unless the call-members that said so has just done it).
        if (this.active && !(this.state === "joining" && Date.now() - this.rejoins.at(-1) < 5000)) this.rejoin();
        break;
      case "session-ended":
        this.stop();
        break;
    }
  }

  /** Ours is the member that is none of the other participants. */
  isMe(p) { return this.me !== null ? p === this.me : !this.peers.has(p); }

  onMembers(members) {
    const before = this.members;
    this.members = members;
    const inCall = members.some((m) => this.isMe(m));
    for (const p of before) {
      if (!members.includes(p)) this.worker?.postMessage({ op: "forget", participant: p });
    }
    if (this.active && inCall) this.wasIn = true;
    if (this.active && this.wasIn && !inCall) {
      // The relay let us go (the connection dropped, say): join again, a few times at most.
      this.rejoin();
      return;
    }
    if (this.active && this.wasIn && this.hadOthers && !this.others.length) {
      // Everyone else hung up: the call is over, unless someone was only joining again
      // (through TURN, say: their leave and join come back to back).
      clearTimeout(this.endTimer);
      this.endTimer = setTimeout(() => {
        if (!this.active || !this.wasIn || this.others.length) return;
        this.hangUp();
        this.hooks.notice?.("call_ended");
      }, END_GRACE_MS);
    }
    if (this.active && this.others.length) this.hadOthers = true;
    this.fitVideo();
    this.redrawTiles();
    this.hooks.change?.();
  }

  onKey(ev) {
    const own = typeof ev.own === "boolean" ? ev.own : this.isMe(ev.participant);
    if (own) this.me = ev.participant;
    const key = keyBuffer(ev.key);
    if (!this.worker || !key || !Number.isInteger(ev.epoch)) return;
    this.worker.postMessage({ op: "key", participant: ev.participant, epoch: ev.epoch, key, send: own }, [key]);
  }

  async onAnswer(sdp) {
    const pc = this.pc;
    if (!pc || this.state !== "joining" || pc.signalingState !== "have-local-offer") return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp });
      if (pc !== this.pc) return;
      this.state = "in-call";
      this.watchDirect(pc);
      this.fitVideo();
      // A new connection starts with video forwarded; keep audio only if we fell back.
      if (this.quality.mode === "audio-only") this.receiveVideo(false);
      this.hooks.change?.();
    } catch (e) {
      console.warn("call answer:", e.name);
      this.fail();
    }
  }

  /** Not connected DIRECT_MS after the answer (UDP blocked, say): try TURN. */
  watchDirect(pc) {
    clearTimeout(this.iceTimer);
    this.iceTimer = setTimeout(() => {
      if (pc === this.pc && pc.connectionState !== "connected") this.unreachable();
    }, DIRECT_MS);
  }

  /**
   * The connection failed or does not connect. Directly: ask the relay for TURN
   * credentials (only now, so an open network never needs them). Through TURN: give up.
   */
  unreachable() {
    if (this.turn) return this.fail();
    if (this.turnAsked) return;
    this.turnAsked = true;
    try { this.client.requestTurn(this.session); } catch { return this.fail(); }
    this.pump();
  }

  /** The relay's answer: join again through its TURN server, or give up. */
  async onTurn(ev) {
    if (!this.active || !this.turnAsked) return;
    this.turnAsked = false;
    if (ev.refused || !Array.isArray(ev.urls)) return this.fail();
    this.turn = { urls: ev.urls, username: ev.username, credential: ev.credential, until: Date.now() + ev.lifetimeSecs * 1000 };
    this.dropConnection();
    this.state = "joining";
    this.wasIn = false;
    try {
      await this.connect();
    } catch (e) {
      console.warn("call turn:", e.name || e.message);
      this.fail();
    }
  }

  /** Enter the call. `video`: open the camera now (a voice call never does). */
  async start({ video = false } = {}) {
    if (this.active) return;
    if (!callSupported()) { this.hooks.notice?.("call_no_support"); return; }
    this.state = "joining";
    this.wasIn = this.hadOthers = false;
    this.hooks.change?.();
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: MICROPHONE, video: video ? CAMERA : false });
      if (this.state !== "joining") { for (const t of stream.getTracks()) t.stop(); return; }
      this.mic = stream.getAudioTracks()[0] || null;
      this.cam = stream.getVideoTracks()[0] || null;
      if (this.mic) this.mic.enabled = !this.muted;
      this.showSelf();
      await this.connect();
    } catch (e) {
      console.warn("call start:", e.name || e.message);
      this.fail();
    }
  }

  /** A new connection and worker, with the tracks we have, and the join. */
  async connect() {
    const worker = await startWorker();
    if (this.state !== "joining") { worker.terminate(); return; }
    this.worker = worker;
    worker.onmessage = (e) => this.fromWorker(e.data);
    const script = typeof RTCRtpScriptTransform === "function";
    // No ICE servers: the only candidates are the relay's own (CONTRACT.md). Once the
    // direct connection failed, only the relay's TURN server, while its credentials last
    // (they are checked when the allocation is made, not during the call).
    if (this.turn && Date.now() > this.turn.until - 10000) this.turn = null;
    const config = this.turn
      ? { iceServers: [{ urls: this.turn.urls, username: this.turn.username, credential: this.turn.credential }], iceTransportPolicy: "relay" }
      : {};
    if (!script) config.encodedInsertableStreams = true;
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    const transform = (target, options) => {
      if (script) target.transform = new RTCRtpScriptTransform(worker, options);
      else {
        const { readable, writable } = target.createEncodedStreams();
        worker.postMessage({ op: "streams", readable, writable, ...options }, [readable, writable]);
      }
    };
    const audio = pc.addTransceiver(this.mic || "audio", { direction: "sendonly" });
    preferCodec(audio, "audio");
    transform(audio.sender, { role: "send", kind: "audio", slot: -1 });
    const video = pc.addTransceiver(this.cam || "video", { direction: "sendonly" });
    preferCodec(video, "video");
    transform(video.sender, { role: "send", kind: "video", slot: -1 });
    this.videoSender = video.sender;
    this.largeVideo = undefined;
    this.tiles = [];
    for (let slot = 0; slot < CALL_SLOTS; slot++) {
      const tracks = [];
      for (const kind of ["audio", "video"]) {
        const tr = pc.addTransceiver(kind, { direction: "recvonly" });
        preferCodec(tr, kind);
        // Right away, before the offer: Chromium never feeds a transform set later.
        transform(tr.receiver, { role: "receive", kind, slot });
        tracks.push(tr.receiver.track);
      }
      this.tiles.push(this.tile(slot, tracks));
    }
    this.view.replaceChildren(this.self, ...this.tiles.map((t) => t.el));
    let wasConnected = false;
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.pc) return;
      const state = pc.connectionState;
      if (state === "connected") {
        wasConnected = true;
        clearTimeout(this.lostTimer);
      } else if (state === "disconnected" && wasConnected) {
        clearTimeout(this.lostTimer);
        this.lostTimer = setTimeout(() => {
          if (pc === this.pc && pc.connectionState !== "connected") this.rejoin();
        }, LOST_MS);
      } else if (state === "failed") {
        // A connection that worked and then failed: the network changed, try a new one
        // (which falls back to TURN in turn if it cannot connect directly).
        if (wasConnected) this.rejoin();
        else this.unreachable();
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    if (pc !== this.pc || this.state !== "joining") return;
    // No candidates of ours go to the relay, not even our local addresses: it learns where
    // we are from our connectivity checks (a peer-reflexive candidate), so the offer need
    // not wait for gathering either.
    this.client.joinCall(this.session, withoutCandidates(pc.localDescription.sdp));
    this.pump();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.check(), SAMPLE_MS);
  }

  /** One video tile per receive slot, shown once a frame from someone decrypts there. */
  tile(slot, tracks) {
    const video = h("video", { autoplay: true, playsInline: true });
    video.srcObject = new MediaStream(tracks);
    const caption = h("figcaption", { dir: "auto" });
    const el = h("figure", { class: "tile", hidden: true, dataset: { slot } }, video, caption);
    const t = { slot, el, video, caption, who: null, hasVideo: false };
    const vt = tracks[1];
    // A sender's camera going off stops its frames: the track mutes, the tile shows the name only.
    vt.addEventListener("mute", () => { t.hasVideo = false; this.redrawTiles(); });
    vt.addEventListener("unmute", () => this.redrawTiles());
    return t;
  }

  fromWorker(msg) {
    if (msg?.op !== "decrypted") return;
    const t = this.tiles[msg.slot];
    if (!t) return;
    t.who = msg.participant; // who it cryptographically came from, not what the relay says
    if (msg.kind === "video") t.hasVideo = true;
    this.redrawTiles();
  }

  redrawTiles() {
    for (const t of this.tiles) {
      const present = t.who !== null && this.members.includes(t.who);
      t.el.hidden = !present;
      t.el.classList.toggle("no-video", !t.hasVideo);
      t.el.dataset.participant = present ? String(t.who) : "";
      t.caption.textContent = present ? this.hooks.label?.(t.who) ?? "" : "";
      if (present) t.video.play?.().catch(() => { /* autoplay refused: sound needs a tap */ });
    }
  }

  /** Send smaller video in a large call, the camera's own in a small one. */
  async fitVideo() {
    const sender = this.videoSender;
    const large = this.others.length > LARGE_CALL;
    if (!sender || this.largeVideo === large) return;
    this.largeVideo = large;
    try {
      const p = sender.getParameters();
      const e = p.encodings?.[0];
      if (!e) return;
      if (large) Object.assign(e, LARGE_VIDEO);
      else { e.scaleResolutionDownBy = 1; delete e.maxFramerate; delete e.maxBitrate; }
      await sender.setParameters(p);
    } catch (err) {
      if (sender === this.videoSender) this.largeVideo = undefined; // try again at the next change
      console.warn("call video size:", err.name);
    }
  }

  showSelf() {
    this.self.hidden = !this.cam;
    this.self.srcObject = this.cam ? new MediaStream([this.cam]) : null;
  }

  setMuted(muted) {
    this.muted = muted;
    if (this.mic) this.mic.enabled = !muted;
    this.hooks.change?.();
  }

  /** Camera on (asks for it only now) or off (released, so its light goes out). */
  async setCamera(on) {
    if (!this.active || on === this.cameraOn) return;
    if (on) {
      let track;
      try {
        track = (await navigator.mediaDevices.getUserMedia({ video: CAMERA })).getVideoTracks()[0];
      } catch (e) {
        console.warn("camera:", e.name);
        return;
      }
      if (!this.active || this.cam) { track.stop(); return; }
      this.cam = track;
      this.quality = cameraTurnedOn();
      if (this.receivingVideo === false) this.receiveVideo(true);
    } else {
      const old = this.cam;
      this.cam = null;
      old?.stop();
    }
    try {
      await this.videoSender?.replaceTrack(this.cam);
    } catch { /* the connection is being replaced; connect() uses this.cam */ }
    this.showSelf();
    this.hooks.change?.();
  }

  /** Every SAMPLE_MS: is the network still good enough for video? */
  async check() {
    const pc = this.pc;
    if (!pc || this.state !== "in-call") return;
    let report;
    try { report = await pc.getStats(); } catch { return; }
    if (pc !== this.pc) return;
    this.sample = sampleOf(report, this.sample);
    const r = decide(this.quality, this.sample, this.cameraOn);
    this.quality = r.state;
    if (r.action === "audio-only") {
      await this.setCamera(false);
      this.quality = r.state; // setCamera(false) keeps the fall-back state
      // The relay stops sending us video too: audio gets the whole of a weak link.
      this.receiveVideo(false);
      this.hooks.notice?.("call_audio_fallback");
    } else if (r.action === "offer-video") {
      // Receiving video again costs the person nothing in privacy: resume it; sending is
      // only offered (the camera needs their tap).
      this.receiveVideo(true);
      this.hooks.notice?.("call_video_possible");
    }
  }

  /** Ask the relay to stop (or resume) forwarding the others' video to us. */
  receiveVideo(on) {
    if (this.receivingVideo === on) return;
    this.receivingVideo = on;
    try { this.client.receiveVideo(this.session, on); } catch { return; }
    this.pump();
  }

  /** Leave the call (the chat goes on). */
  hangUp() {
    if (!this.active) return;
    try { this.client.leaveCall(this.session); } catch { /* the session is gone */ }
    this.pump();
    this.stop();
  }

  /** After a reconnection: same microphone and camera, new connection, join again. */
  async rejoin() {
    const now = Date.now();
    this.rejoins = [...this.rejoins.filter((t) => now - t < 60000), now];
    if (this.rejoins.length > 3) return this.fail();
    this.dropConnection();
    this.state = "joining";
    this.wasIn = false;
    this.turnAsked = false; // an answer lost with the connection is not waited for
    this.hooks.change?.();
    try {
      await this.connect();
    } catch (e) {
      console.warn("call rejoin:", e.name || e.message);
      this.fail();
    }
  }

  fail() {
    if (!this.active) return;
    try { this.client.leaveCall(this.session); } catch { /* gone */ }
    this.pump();
    this.stop();
    this.hooks.notice?.("call_failed");
  }

  /** Close the connection and wipe the worker's keys; the tracks stay. */
  dropConnection() {
    clearInterval(this.timer);
    this.timer = 0;
    clearTimeout(this.iceTimer);
    clearTimeout(this.lostTimer);
    if (this.worker) {
      this.worker.postMessage({ op: "clear" });
      this.worker.terminate();
      this.worker = null;
    }
    try { this.pc?.close(); } catch { /* closed */ }
    this.pc = null;
    this.receivingVideo = undefined; // the relay forgets it with the connection
    this.videoSender = null;
    for (const t of this.tiles) t.video.srcObject = null;
    this.tiles = [];
    this.view.replaceChildren(this.self);
    this.sample = null;
  }

  /** Everything off: connection, worker, microphone, camera. */
  stop() {
    this.dropConnection();
    for (const t of [this.mic, this.cam]) t?.stop();
    this.mic = this.cam = null;
    this.showSelf();
    this.state = "idle";
    this.wasIn = this.hadOthers = false;
    this.turn = null;
    this.turnAsked = false;
    clearTimeout(this.endTimer);
    this.quality = initialQuality();
    this.hooks.change?.();
  }
}
