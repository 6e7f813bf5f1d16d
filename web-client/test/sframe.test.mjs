// SFrame (RFC 9605) in static/media-worker.js: the RFC's own test vector for cipher suite
// 0x0004, the header encoding, round trips, and every way a frame must be dropped.
//   node --test web-client/test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { hkdfSync } from "node:crypto";
import { readFileSync } from "node:fs";

// The worker is a classic script: run it as a function body given a CommonJS-style
// `module`, in this realm (WebCrypto included); outside a worker it only exports.
const S = (() => {
  const module = { exports: {} };
  new Function("module", readFileSync(new URL("../static/media-worker.js", import.meta.url), "utf8"))(module);
  return module.exports;
})();
const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (h) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));
const concat = (...parts) => new Uint8Array(parts.flatMap((p) => [...p]));
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// RFC 9605, Appendix C.5 ("SFrame Encryption/Decryption"), the cipher_suite 0x0004 vector.
const RFC = {
  kid: 0x123,
  ctr: 0x4567,
  baseKey: "000102030405060708090a0b0c0d0e0f",
  keyLabel: "534672616d6520312e3020536563726574206b65792000000000000001230004",
  saltLabel: "534672616d6520312e30205365637265742073616c742000000000000001230004",
  sframeSecret: "d926952ca8b7ec4a95941d1ada3a5203ceff8cceee34f574d23909eb314c40c0",
  sframeKey: "d34f547f4ca4f9a7447006fe7fcbf768",
  sframeSalt: "75234edefe07819026751816",
  metadata: "4945544620534672616d65205747",
  nonce: "75234edefe07819026755d71",
  aad: "99012345674945544620534672616d65205747",
  pt: "64726166742d696574662d736672616d652d656e63",
  ct: "9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb",
};

test("RFC 9605 test vector (AES_128_GCM_SHA256_128): labels, key, salt, nonce, ciphertext", async () => {
  assert.equal(hex(S.label("SFrame 1.0 Secret key ", RFC.kid)), RFC.keyLabel);
  assert.equal(hex(S.label("SFrame 1.0 Secret salt ", RFC.kid)), RFC.saltLabel);
  // The labels give the RFC's key through plain HKDF-SHA256 (empty salt); the worker's
  // AES key is not extractable, so the ciphertext below checks that it is the same one.
  assert.equal(hex(hkdfSync("sha256", unhex(RFC.baseKey), new Uint8Array(0), unhex(RFC.keyLabel), 16)), RFC.sframeKey);
  const rec = await S.deriveKey(unhex(RFC.baseKey), RFC.kid);
  assert.equal(hex(rec.salt), RFC.sframeSalt);
  assert.equal(hex(S.nonceFor(rec.salt, RFC.ctr)), RFC.nonce);
  const header = S.encodeHeader(RFC.kid, RFC.ctr);
  const aad = concat(header, unhex(RFC.metadata));
  assert.equal(hex(aad), RFC.aad);
  const ct = await S.seal(rec, RFC.ctr, aad, unhex(RFC.pt));
  assert.equal(hex(header) + hex(ct), RFC.ct);
  const back = await S.open(rec, RFC.ctr, aad, unhex(RFC.ct).subarray(header.length));
  assert.equal(hex(back), RFC.pt);
});

test("header: values under 8 fit in the config byte; larger ones take the fewest bytes", () => {
  const cases = [
    [0, 0, "00"],
    [7, 7, "77"],
    [5, 8, "5808"],
    [8, 1, "8108"],
    [7, 0, "70"],
    [0x123, 0x4567, "9901234567"], // the RFC's example
    [0xff, 0xff, "88ffff"],
    [0x100, 0, "900100"],
    [131072 * 3 + 65536 + 2, 0x1ffff, "aa07000201ffff"],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "ee1fffffffffffff1fffffffffffff"],
  ];
  for (const [kid, ctr, want] of cases) {
    const h = S.encodeHeader(kid, ctr);
    assert.equal(hex(h), want, `kid ${kid} ctr ${ctr}`);
    assert.deepEqual(S.parseHeader(h), { kid, ctr, length: h.length }, `parse kid ${kid} ctr ${ctr}`);
    // With something before and after it, too.
    assert.deepEqual(S.parseHeader(concat([1, 2, 3], h, [9, 9]), 3), { kid, ctr, length: h.length });
  }
  assert.equal(S.parseHeader(unhex("9901")), null, "truncated KID");
  assert.equal(S.parseHeader(unhex("99012345")), null, "truncated CTR");
  assert.equal(S.parseHeader(new Uint8Array(0)), null, "empty");
  assert.equal(S.parseHeader(unhex("f0ffffffffffffffff00")), null, "a KID beyond 2^53 is refused");
  assert.throws(() => S.encodeHeader(-1, 0));
});

test("KID = epoch * 131072 + (video ? 65536 : 0) + participant, and back", () => {
  assert.equal(S.kidOf(0, false, 1), 1);
  assert.equal(S.kidOf(0, true, 1), 65537);
  assert.equal(S.kidOf(3, true, 2), 3 * 131072 + 65536 + 2);
  assert.deepEqual(S.splitKid(S.kidOf(7, true, 65535)), { epoch: 7, video: true, participant: 65535 });
  assert.deepEqual(S.splitKid(S.kidOf(9, false, 4)), { epoch: 9, video: false, participant: 4 });
  assert.throws(() => S.kidOf(0, false, 65536), "a participant number must stay under 65536");
});

const KEY_A = unhex("00112233445566778899aabbccddeeff");
const KEY_B = unhex("ffeeddccbbaa99887766554433221100");
// A VP8 key frame (bit 0 of the first byte clear), a delta frame (set), an Opus frame.
const vp8Key = () => concat([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00], Array.from({ length: 200 }, (_, i) => i & 255));
const vp8Delta = () => concat([0x31, 0x05, 0x00], Array.from({ length: 80 }, (_, i) => (i * 7) & 255));
const opus = () => concat([0x78], Array.from({ length: 60 }, (_, i) => (i * 3) & 255));

test("a frame round-trips; the codec prefix stays in clear, the rest does not", async () => {
  const kid = S.kidOf(2, true, 5);
  const rec = await S.deriveKey(KEY_A, kid);
  for (const [kind, frame, n] of [["video", vp8Key(), 10], ["video", vp8Delta(), 3], ["audio", opus(), 1]]) {
    const k = kind === "video" ? kid : S.kidOf(2, false, 5);
    const r = await S.deriveKey(KEY_A, k);
    const enc = await S.protect(r, 42, kind, frame);
    assert.equal(hex(enc.subarray(0, n)), hex(frame.subarray(0, n)), `${kind}: prefix in clear`);
    const h = S.parseHeader(enc, n);
    assert.deepEqual([h.kid, h.ctr], [k, 42]);
    assert.equal(enc.length, frame.length + h.length + 16);
    assert.notEqual(hex(enc.subarray(n + h.length, n + h.length + 16)), hex(frame.subarray(n, n + 16)), "payload encrypted");
    const dec = await S.unprotect((x) => (x === k ? r : null), kind, enc);
    assert.ok(dec, `${kind} decrypts`);
    assert.equal(hex(dec.data), hex(frame));
    assert.equal(dec.participant, 5);
    assert.equal(dec.epoch, 2);
  }
  assert.ok(rec);
});

test("wrong key, unknown KID, other kind: the frame is dropped", async () => {
  const kid = S.kidOf(1, true, 3);
  const good = await S.deriveKey(KEY_A, kid);
  const wrong = await S.deriveKey(KEY_B, kid);
  const enc = await S.protect(good, 0, "video", vp8Key());
  assert.equal(await S.unprotect((k) => (k === kid ? wrong : null), "video", enc), null, "wrong key");
  assert.equal(await S.unprotect(() => null, "video", enc), null, "unknown KID");
  // A video frame offered to an audio receiver (a relay swapping streams) is refused.
  assert.equal(await S.unprotect(() => good, "audio", enc), null, "other kind");
  // Garbage, and a frame too short to hold a tag.
  assert.equal(await S.unprotect(() => good, "video", new Uint8Array(40)), null, "garbage");
  assert.equal(await S.unprotect(() => good, "video", enc.subarray(0, 20)), null, "truncated");
});

test("a tampered clear prefix, header, ciphertext or tag fails authentication", async () => {
  const kid = S.kidOf(1, true, 3);
  const rec = await S.deriveKey(KEY_A, kid);
  const keyFor = (k) => (k === kid ? rec : null);
  const enc = await S.protect(rec, 300, "video", vp8Key());
  const hlen = S.parseHeader(enc, 10).length;
  assert.ok(await S.unprotect(keyFor, "video", enc), "untouched frame decrypts");
  // Byte 1 (prefix, not the key-frame bit), the header's CTR, the ciphertext, the tag.
  for (const at of [1, 9, 10 + hlen - 1, 10 + hlen + 5, enc.length - 1]) {
    const bad = enc.slice();
    bad[at] ^= 0x40;
    assert.equal(await S.unprotect(keyFor, "video", bad), null, `byte ${at} flipped`);
  }
  // Flipping the key-frame bit moves the header: still nothing decrypts.
  const flipped = enc.slice();
  flipped[0] ^= 1;
  assert.equal(await S.unprotect(keyFor, "video", flipped), null, "key-frame bit flipped");
});

test("CTR starts at 0, increments by one per frame and never repeats for a KID", async () => {
  const posted = [];
  const e = new S.Engine({ post: (m) => posted.push(m) });
  await e.onMessage({ op: "key", participant: 4, epoch: 1, key: KEY_A.slice().buffer, send: true });
  await sleep(S.SEND_DELAY_MS + 60);
  const seen = { audio: [], video: [] };
  for (let i = 0; i < 300; i++) {
    for (const [kind, frame] of [["audio", opus()], ["video", i % 30 ? vp8Delta() : vp8Key()]]) {
      const enc = await e.encrypt(kind, frame);
      const n = S.prefixLength(kind, enc);
      const h = S.parseHeader(enc, n);
      assert.equal(h.kid, S.kidOf(1, kind === "video", 4));
      seen[kind].push(h.ctr);
    }
  }
  for (const kind of ["audio", "video"]) {
    assert.deepEqual(seen[kind], Array.from({ length: 300 }, (_, i) => i), `${kind}: 0, 1, 2, …`);
    assert.equal(new Set(seen[kind]).size, 300);
  }
  // The same key delivered again does not restart the counter (that would reuse nonces).
  await e.onMessage({ op: "key", participant: 4, epoch: 1, key: KEY_A.slice().buffer, send: true });
  await sleep(S.SEND_DELAY_MS + 60);
  const again = await e.encrypt("audio", opus());
  assert.equal(S.parseHeader(again, 1).ctr, 300);
  e.reset();
});

test("engine: a send key is used 250 ms after it arrives; nothing goes out before", async () => {
  const e = new S.Engine();
  await e.onMessage({ op: "key", participant: 1, epoch: 5, key: KEY_A.slice().buffer, send: true });
  assert.equal(await e.encrypt("audio", opus()), null, "no key yet: the frame is dropped, never sent in clear");
  await sleep(S.SEND_DELAY_MS / 2);
  assert.equal(await e.encrypt("audio", opus()), null, "still not yet");
  await sleep(S.SEND_DELAY_MS / 2 + 60);
  const enc = await e.encrypt("audio", opus());
  assert.equal(S.parseHeader(enc, 1).kid, S.kidOf(5, false, 1));
  // A newer epoch takes over after its own delay.
  await e.onMessage({ op: "key", participant: 1, epoch: 6, key: KEY_B.slice().buffer, send: true });
  assert.equal(S.parseHeader(await e.encrypt("audio", opus()), 1).kid, S.kidOf(5, false, 1), "old key for 250 ms");
  await sleep(S.SEND_DELAY_MS + 60);
  assert.equal(S.parseHeader(await e.encrypt("audio", opus()), 1).kid, S.kidOf(6, false, 1), "new key after");
  e.reset();
});

test("engine: sender and receiver; previous epoch kept 5 s; forget and clear drop keys; decrypted is posted once per slot and sender", async () => {
  let clock = 1_000_000;
  const posted = [];
  const sender = new S.Engine();
  const receiver = new S.Engine({ post: (m) => posted.push(m), now: () => clock });
  const key = (e, participant, epoch, k, send) => e.onMessage({ op: "key", participant, epoch, key: k.slice().buffer, send });
  await key(sender, 7, 1, KEY_A, true);
  await key(receiver, 7, 1, KEY_A, false);
  await sleep(S.SEND_DELAY_MS + 60);

  const f1 = await sender.encrypt("video", vp8Key());
  assert.equal(hex(await receiver.decrypt(0, "video", f1)), hex(vp8Key()));
  assert.equal(hex(await receiver.decrypt(0, "video", await sender.encrypt("video", vp8Delta()))), hex(vp8Delta()));
  assert.deepEqual(posted, [{ op: "decrypted", slot: 0, kind: "video", participant: 7 }], "posted once for slot 0 video");
  await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus()));
  assert.equal(posted.length, 2, "and once for slot 0 audio");

  // Epoch 2 arrives at the receiver first; frames of epoch 1 still decrypt for 5 s.
  await key(receiver, 7, 2, KEY_B, false);
  const old = await sender.encrypt("audio", opus());
  assert.ok(await receiver.decrypt(0, "audio", old), "previous epoch within 5 s");
  clock += S.PREVIOUS_MS + 1;
  assert.equal(await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus())), null, "previous epoch after 5 s");
  await key(sender, 7, 2, KEY_B, true);
  await sleep(S.SEND_DELAY_MS + 60);
  assert.ok(await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus())), "current epoch");

  // A key for an older epoch arriving late never replaces the current one.
  await key(receiver, 7, 1, KEY_A, false);
  assert.ok(await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus())), "still epoch 2");

  await receiver.onMessage({ op: "forget", participant: 7 });
  assert.equal(await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus())), null, "forgotten");

  await key(receiver, 7, 2, KEY_B, false);
  assert.ok(await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus())));
  await receiver.onMessage({ op: "clear" });
  assert.equal(await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus())), null, "cleared (receiver)");
  await sender.onMessage({ op: "clear" });
  assert.equal(await sender.encrypt("audio", opus()), null, "cleared (sender)");
});

test("engine: a send key pending when the call is cleared never becomes active", async () => {
  const e = new S.Engine();
  await e.onMessage({ op: "key", participant: 1, epoch: 1, key: KEY_A.slice().buffer, send: true });
  await e.onMessage({ op: "clear" });
  await sleep(S.SEND_DELAY_MS + 60);
  assert.equal(await e.encrypt("audio", opus()), null);
});

test("engine: the base key buffer given to the worker is wiped after use", async () => {
  const e = new S.Engine();
  const buf = KEY_A.slice().buffer;
  await e.onMessage({ op: "key", participant: 1, epoch: 1, key: buf, send: false });
  assert.deepEqual([...new Uint8Array(buf)], new Array(16).fill(0));
  e.reset();
});

test("engine: a frame is accepted once; one 128 or more behind the newest is dropped; reordering within the window passes; a forged high counter moves nothing", async () => {
  const sender = new S.Engine();
  const receiver = new S.Engine();
  const key = (e, k, send) => e.onMessage({ op: "key", participant: 4, epoch: 1, key: k.slice().buffer, send });
  await key(sender, KEY_A, true);
  await key(receiver, KEY_A, false);
  await sleep(S.SEND_DELAY_MS + 60);
  const frames = [];
  for (let i = 0; i < S.REPLAY_WINDOW + 2; i++) frames.push(await sender.encrypt("audio", opus()));
  const newest = frames[frames.length - 1];

  // Out of order: the newest first, then one a little behind it.
  assert.ok(await receiver.decrypt(0, "audio", newest), "newest");
  assert.ok(await receiver.decrypt(0, "audio", frames[frames.length - 5]), "4 behind, first time");
  assert.equal(await receiver.decrypt(0, "audio", newest), null, "newest replayed");
  assert.equal(await receiver.decrypt(0, "audio", frames[frames.length - 5]), null, "4 behind, replayed");
  // CTR 1 is exactly 128 behind the newest (129), CTR 0 further: both too old; CTR 2 passes.
  assert.equal(await receiver.decrypt(0, "audio", frames[0]), null, "129 behind");
  assert.equal(await receiver.decrypt(0, "audio", frames[1]), null, "128 behind");
  assert.ok(await receiver.decrypt(0, "audio", frames[2]), "127 behind");
  // Two copies decrypting at the same time: one passes.
  const both = await Promise.all([receiver.decrypt(0, "audio", frames[3]), receiver.decrypt(0, "audio", frames[3])]);
  assert.equal(both.filter(Boolean).length, 1, "concurrent copies: exactly one accepted");

  // A forged frame far ahead (wrong key, same KID) fails authentication and moves nothing:
  // genuine frames just behind the newest still decrypt.
  const forged = await S.protect(await S.deriveKey(KEY_B, S.kidOf(1, false, 4)), 1_000_000, "audio", opus());
  assert.equal(await receiver.decrypt(0, "audio", forged), null, "forged");
  assert.ok(await receiver.decrypt(0, "audio", frames[10]), "window unmoved by the forgery");
  assert.ok(await receiver.decrypt(0, "audio", await sender.encrypt("audio", opus())), "the next frame");
});

test("replay window of 4: each counter once, nothing 4 or more behind the newest", async () => {
  const w = new S.ReplayWindow(4);
  assert.deepEqual([w.admit(5), w.admit(5), w.admit(2), w.admit(1), w.admit(3), w.admit(9), w.admit(6), w.admit(5)],
    [true, false, true, false, true, true, true, false]);
});
