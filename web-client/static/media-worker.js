// Frame encryption for calls: SFrame (RFC 9605), cipher suite AES_128_GCM_SHA256_128
// (0x0004), run in a dedicated worker on every encoded audio and video frame
// (RTCRtpScriptTransform, or the streams of createEncodedStreams). web-client/CONTRACT.md,
// "Frame encryption", is the specification; this file follows it to the byte.
//
// A classic worker script, self-contained (no imports): the page fetches it with its SRI
// hash, makes a blob: URL of it and starts it. Outside a worker (a Node unit test) it only
// exports its functions through `module.exports`.
//
// Nothing here logs keys or frame contents, and nothing is kept after {op: "clear"}.
"use strict";

const SUITE = 0x0004; // AES_128_GCM_SHA256_128
const NK = 16; // key bytes
const NN = 12; // nonce bytes
const NT = 16; // tag bytes
const KID_EPOCH = 131072; // KID = epoch * 131072 + (video ? 65536 : 0) + participant
const KID_VIDEO = 65536;
const SEND_DELAY_MS = 250; // a new send key is used this long after it arrives
const PREVIOUS_MS = 5000; // a participant's previous receive epoch is kept this long
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const REPLAY_WINDOW = 128; // frames behind the newest one still accepted once, per KID
const KEY_LABEL = "SFrame 1.0 Secret key ";
const SALT_LABEL = "SFrame 1.0 Secret salt ";

// ----- KID ---------------------------------------------------------------------------

/** The SFrame KID of one sender's key for one epoch and media kind. */
function kidOf(epoch, video, participant) {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || !Number.isInteger(participant) ||
    participant < 0 || participant >= KID_VIDEO) throw new RangeError("kid");
  const kid = epoch * KID_EPOCH + (video ? KID_VIDEO : 0) + participant;
  if (!Number.isSafeInteger(kid)) throw new RangeError("kid");
  return kid;
}

/** {epoch, video, participant} of a KID. */
function splitKid(kid) {
  const participant = kid % KID_VIDEO;
  const video = Math.floor(kid / KID_VIDEO) % 2 === 1;
  return { epoch: Math.floor(kid / KID_EPOCH), video, participant };
}

// ----- Header (RFC 9605 section 4.3) -----------------------------------------------------

/** Bytes needed for a non-negative integer, at least 1. */
function byteLength(v) {
  let n = 1;
  while (v >= 256) { v = Math.floor(v / 256); n++; }
  return n;
}

/** `v` as `n` bytes big-endian into `out` at `at`. */
function putUint(out, at, v, n) {
  for (let i = n - 1; i >= 0; i--) { out[at + i] = v % 256; v = Math.floor(v / 256); }
}

/**
 * The SFrame header for (KID, CTR): config byte X|K|Y|C, then the KID bytes, then the CTR
 * bytes. A value under 8 fits in the config byte itself (X or Y clear); a larger one is
 * written in the fewest bytes, whose count minus one goes into K or C.
 */
function encodeHeader(kid, ctr) {
  if (!Number.isSafeInteger(kid) || kid < 0 || !Number.isSafeInteger(ctr) || ctr < 0) throw new RangeError("header");
  const kLen = kid < 8 ? 0 : byteLength(kid);
  const cLen = ctr < 8 ? 0 : byteLength(ctr);
  const out = new Uint8Array(1 + kLen + cLen);
  const k = kLen ? 0x80 | ((kLen - 1) << 4) : kid << 4;
  const c = cLen ? 0x08 | (cLen - 1) : ctr;
  out[0] = k | c;
  if (kLen) putUint(out, 1, kid, kLen);
  if (cLen) putUint(out, 1 + kLen, ctr, cLen);
  return out;
}

/**
 * Parse the header at `at` in `bytes`: {kid, ctr, length}, or null if it runs past the
 * end or holds a value beyond 2^53 (no such KID or CTR is ever used here).
 */
function parseHeader(bytes, at = 0) {
  if (at >= bytes.length) return null;
  const config = bytes[at];
  const kLen = config & 0x80 ? ((config >> 4) & 7) + 1 : 0;
  const cLen = config & 0x08 ? (config & 7) + 1 : 0;
  const length = 1 + kLen + cLen;
  if (at + length > bytes.length) return null;
  const read = (from, n) => {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + bytes[from + i];
    return v;
  };
  const kid = kLen ? read(at + 1, kLen) : (config >> 4) & 7;
  const ctr = cLen ? read(at + 1 + kLen, cLen) : config & 7;
  if (kid > MAX_SAFE || ctr > MAX_SAFE) return null;
  return { kid, ctr, length };
}

// ----- Keys (RFC 9605 section 4.4.2) -----------------------------------------------------

/** A label || KID (8 bytes big-endian) || cipher suite (2 bytes big-endian). */
function label(text, kid) {
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(head.length + 10);
  out.set(head);
  putUint(out, head.length, kid, 8);
  putUint(out, head.length + 8, SUITE, 2);
  return out;
}

/**
 * sframe_key and sframe_salt for one KID from a 16-byte base key: HKDF-SHA256 with an
 * empty salt. Returns {kid, key: CryptoKey (AES-GCM, not extractable), salt: Uint8Array}.
 */
async function deriveKey(baseKey, kid) {
  const subtle = crypto.subtle;
  const base = await subtle.importKey("raw", baseKey, "HKDF", false, ["deriveBits"]);
  const hkdf = (info, bytes) => subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info }, base, bytes * 8);
  const [raw, salt] = await Promise.all([hkdf(label(KEY_LABEL, kid), NK), hkdf(label(SALT_LABEL, kid), NN)]);
  const rawBytes = new Uint8Array(raw);
  const key = await subtle.importKey("raw", rawBytes, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  rawBytes.fill(0);
  return { kid, key, salt: new Uint8Array(salt) };
}

/** nonce = sframe_salt XOR CTR (right-aligned, big-endian, in 12 bytes). */
function nonceFor(salt, ctr) {
  const n = new Uint8Array(NN);
  putUint(n, NN - 8, ctr, 8);
  for (let i = 0; i < NN; i++) n[i] ^= salt[i];
  return n;
}

/** AES-GCM seal: ciphertext || 16-byte tag. */
async function seal(rec, ctr, aad, plaintext) {
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonceFor(rec.salt, ctr), additionalData: aad, tagLength: NT * 8 }, rec.key, plaintext);
  return new Uint8Array(ct);
}

/** AES-GCM open; throws if the tag does not verify. */
async function open(rec, ctr, aad, ciphertext) {
  const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonceFor(rec.salt, ctr), additionalData: aad, tagLength: NT * 8 }, rec.key, ciphertext);
  return new Uint8Array(pt);
}

// ----- Replay window ---------------------------------------------------------------------

/**
 * The counters a receiver has accepted for one KID: a frame whose CTR was already
 * accepted, or is REPLAY_WINDOW or more behind the newest accepted, is dropped. Without
 * it, a relay (or anyone on the path) could play back a participant's recorded frames
 * for as long as the key lives. Frames a few behind the newest (reordering) still pass.
 */
class ReplayWindow {
  constructor(size = REPLAY_WINDOW) {
    this.size = size;
    this.top = -1; // newest accepted CTR
    // slot CTR % size holds the last CTR accepted there; within (top - size, top] a slot
    // holding another value means that CTR was never accepted.
    this.slots = new Float64Array(size).fill(-1);
  }

  /** Whether a frame with this CTR could still be accepted (checked before decrypting). */
  fresh(ctr) {
    if (ctr > this.top) return true;
    if (this.top - ctr >= this.size) return false;
    return this.slots[ctr % this.size] !== ctr;
  }

  /**
   * Accept a CTR of an authenticated frame, once: false if it is stale or already
   * accepted. Only authenticated frames move the window, so a forged frame with a high
   * counter cannot push the genuine ones out of it.
   */
  admit(ctr) {
    if (!this.fresh(ctr)) return false;
    this.top = Math.max(this.top, ctr);
    this.slots[ctr % this.size] = ctr;
    return true;
  }
}

// ----- Frames ----------------------------------------------------------------------------

/**
 * Bytes left in clear at the start of a frame, for the receiver's depacketizer: Opus 1;
 * VP8 10 on a key frame, 3 otherwise. Key frames are told by the VP8 payload header's
 * inverse key-frame bit (bit 0 of the first byte, 0 on a key frame), which is itself in
 * clear, so sender and receiver always agree.
 */
function prefixLength(kind, data) {
  if (kind !== "video") return 1;
  return data.length && (data[0] & 1) === 0 ? 10 : 3;
}

/** RFC 9605 §4.4.3: AAD = SFrame header || metadata, the metadata being the clear prefix. */
function aadOf(header, prefix) {
  const aad = new Uint8Array(header.length + prefix.length);
  aad.set(header);
  aad.set(prefix, header.length);
  return aad;
}

/** One encrypted frame: clear prefix || header || ciphertext || tag; AAD = header || prefix. */
async function protect(rec, ctr, kind, data) {
  const n = prefixLength(kind, data);
  if (data.length < n) throw new RangeError("frame");
  const header = encodeHeader(rec.kid, ctr);
  const out = new Uint8Array(n + header.length + (data.length - n) + NT);
  out.set(data.subarray(0, n));
  out.set(header, n);
  const ct = await seal(rec, ctr, aadOf(header, data.subarray(0, n)), data.subarray(n));
  out.set(ct, n + header.length);
  return out;
}

/**
 * The clear frame of an encrypted one, or null (drop it): no header, a KID of the other
 * kind, no key for it (`keyFor(kid)` returns the key record or null), no authentication,
 * or a replay (a record with a `window`, as every receive key has, accepts a CTR once).
 * Returns {participant, epoch, data}.
 */
async function unprotect(keyFor, kind, data) {
  const n = prefixLength(kind, data);
  const header = parseHeader(data, n);
  if (!header) return null;
  const who = splitKid(header.kid);
  if (who.video !== (kind === "video")) return null;
  const start = n + header.length;
  if (data.length < start + NT) return null;
  const rec = keyFor(header.kid);
  if (!rec) return null;
  if (rec.window && !rec.window.fresh(header.ctr)) return null;
  let pt;
  try {
    pt = await open(rec, header.ctr, aadOf(data.subarray(n, start), data.subarray(0, n)), data.subarray(start));
  } catch {
    return null;
  }
  // Checked again after the await: two copies of a frame may have been decrypting at once.
  if (rec.window && !rec.window.admit(header.ctr)) return null;
  const out = new Uint8Array(n + pt.length);
  out.set(data.subarray(0, n));
  out.set(pt, n);
  return { participant: who.participant, epoch: who.epoch, data: out };
}

// ----- Key state and transforms ------------------------------------------------------------

/**
 * Everything the worker holds: the send keys, the receive keys per participant, the
 * counters. `post(msg)` reaches the page; `now()` and `later(fn, ms)` are the clock.
 */
class Engine {
  constructor({ post = () => {}, now = () => Date.now(), later = (f, ms) => setTimeout(f, ms), cancel = (t) => clearTimeout(t) } = {}) {
    Object.assign(this, { post, now, later, cancel });
    this.reset();
  }

  reset() {
    this.generation = (this.generation || 0) + 1; // work started before a clear is discarded
    for (const t of this.timers || []) this.cancel(t);
    this.timers = new Set();
    this.send = null; // {epoch, audio, video}: the key records in use
    this.recv = new Map(); // participant -> [{epoch, audio, video, until}], newest first
    this.counters = new Map(); // send KID -> next CTR; never reset while the worker lives
    this.seen = new Map(); // "slot/kind" -> participant last decrypted there
  }

  /** A message from the page. */
  async onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.op) {
      case "key": return this.addKey(msg);
      case "forget": this.recv.delete(msg.participant); return;
      case "clear": this.reset(); return;
    }
  }

  async addKey({ participant, epoch, key, send }) {
    const generation = this.generation;
    const base = new Uint8Array(key);
    if (base.length !== NK) return;
    let audio, video;
    try {
      [audio, video] = await Promise.all([
        deriveKey(base, kidOf(epoch, false, participant)),
        deriveKey(base, kidOf(epoch, true, participant)),
      ]);
    } catch {
      return;
    } finally {
      base.fill(0);
    }
    if (generation !== this.generation) return;
    if (send) {
      // The others receive this key at the same time; give them a head start.
      const t = this.later(() => {
        this.timers.delete(t);
        if (generation !== this.generation) return;
        if (!this.send || epoch >= this.send.epoch) this.send = { epoch, audio, video };
      }, SEND_DELAY_MS);
      this.timers.add(t);
      return;
    }
    const list = (this.recv.get(participant) || []).filter((e) => e.epoch !== epoch);
    const newest = list[0];
    if (newest && newest.epoch > epoch) return; // an older key arriving late: not used
    if (newest) newest.until = this.now() + PREVIOUS_MS;
    audio.window = new ReplayWindow();
    video.window = new ReplayWindow();
    // Keep only the previous epoch (for its grace period) behind the new one.
    this.recv.set(participant, [{ epoch, audio, video, until: Infinity }, ...list.slice(0, 1)]);
  }

  /** The receive key record of a KID, or null. */
  keyFor(kid) {
    const { epoch, video, participant } = splitKid(kid);
    const e = (this.recv.get(participant) || []).find((x) => x.epoch === epoch);
    if (!e || e.until <= this.now()) return null;
    return video ? e.video : e.audio;
  }

  /** The next CTR for a send KID; each value is used once. */
  nextCounter(kid) {
    const ctr = this.counters.get(kid) || 0;
    if (ctr >= MAX_SAFE) throw new RangeError("counter");
    this.counters.set(kid, ctr + 1);
    return ctr;
  }

  /** Encrypt one outgoing frame's bytes; null (drop) while there is no send key. */
  async encrypt(kind, data) {
    const keys = this.send;
    if (!keys || !data.length) return null;
    const rec = kind === "video" ? keys.video : keys.audio;
    if (data.length < prefixLength(kind, data)) return null;
    const generation = this.generation;
    const out = await protect(rec, this.nextCounter(rec.kid), kind, data);
    return generation === this.generation ? out : null;
  }

  /** Decrypt one incoming frame's bytes; null (drop) if it does not authenticate. */
  async decrypt(slot, kind, data) {
    const generation = this.generation;
    const r = await unprotect((kid) => this.keyFor(kid), kind, data);
    if (!r || generation !== this.generation) return null;
    const where = slot + "/" + kind;
    if (this.seen.get(where) !== r.participant) {
      this.seen.set(where, r.participant);
      this.post({ op: "decrypted", slot, kind, participant: r.participant });
    }
    return r.data;
  }

  /** Pipe encoded frames from `readable` through encryption or decryption to `writable`. */
  attach(readable, writable, { role, kind, slot }) {
    const engine = this;
    const work = role === "send" ? (d) => engine.encrypt(kind, d) : (d) => engine.decrypt(slot, kind, d);
    readable.pipeThrough(new TransformStream({
      async transform(frame, controller) {
        let out = null;
        try {
          out = await work(new Uint8Array(frame.data));
        } catch {
          out = null;
        }
        if (!out) return; // dropped: never forwarded in clear, never given to the decoder
        frame.data = out.buffer;
        controller.enqueue(frame);
      },
    })).pipeTo(writable).catch(() => { /* the transceiver went away */ });
  }
}

const SFrame = {
  SUITE, KID_EPOCH, KID_VIDEO, SEND_DELAY_MS, PREVIOUS_MS, REPLAY_WINDOW, ReplayWindow,
  kidOf, splitKid, encodeHeader, parseHeader, label, deriveKey, nonceFor, seal, open,
  prefixLength, protect, unprotect, Engine,
};

// ----- Worker wiring ------------------------------------------------------------------------

if (typeof WorkerGlobalScope === "function" && globalThis instanceof WorkerGlobalScope) {
  const engine = new Engine({ post: (m) => globalThis.postMessage(m) });
  globalThis.onmessage = (ev) => {
    const msg = ev.data;
    if (msg && msg.op === "streams") engine.attach(msg.readable, msg.writable, msg);
    else engine.onMessage(msg);
  };
  // RTCRtpScriptTransform: options are {role, kind, slot}.
  globalThis.onrtctransform = (ev) => {
    const t = ev.transformer;
    engine.attach(t.readable, t.writable, t.options || {});
  };
} else if (typeof module === "object" && module && module.exports) {
  module.exports = SFrame;
}
