// The audio-only fall-back (static/call-quality.js) fed with synthetic getStats() samples.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QUALITY, initialQuality, sampleOf, decide, cameraTurnedOn } from "../static/call-quality.js";

const good = { kbps: 900, loss: 0, limited: false };
const slow = { kbps: 90, loss: 0.01, limited: true };
const lossy = { kbps: 800, loss: 0.3, limited: false };
const meh = { kbps: 250, loss: 0.05, limited: false }; // neither bad nor good

/** Feed samples; returns the final state and every action taken, in order. */
function run(samples, { state = initialQuality(), cameraOn = true } = {}) {
  const actions = [];
  for (const s of samples) {
    const r = decide(state, s, typeof cameraOn === "function" ? cameraOn(state) : cameraOn);
    state = r.state;
    if (r.action) actions.push(r.action);
  }
  return { state, actions };
}

test("three bad samples in a row (low bandwidth) switch to audio only", () => {
  assert.deepEqual(run([good, slow, slow]).actions, [], "two are not enough");
  const r = run([good, slow, slow, slow]);
  assert.deepEqual(r.actions, ["audio-only"]);
  assert.equal(r.state.mode, "audio-only");
});

test("heavy loss counts as bad too", () => {
  assert.deepEqual(run([lossy, lossy, lossy]).actions, ["audio-only"]);
});

test("a good sample in between resets the count (hysteresis)", () => {
  assert.deepEqual(run([slow, slow, good, slow, slow, good, lossy, lossy]).actions, []);
});

test("nothing happens while the camera is off by choice, however bad the network", () => {
  assert.deepEqual(run(Array(20).fill(slow), { cameraOn: false }).actions, []);
});

test("video is offered back only after a long good stretch, once, and the camera is never turned on by itself", () => {
  const down = run([slow, slow, slow]).state;
  const almost = run(Array(QUALITY.goodSamples - 1).fill(good), { state: down, cameraOn: false });
  assert.deepEqual(almost.actions, [], "not before the stretch is long enough");
  const interrupted = run([...Array(QUALITY.goodSamples - 1).fill(good), meh, ...Array(QUALITY.goodSamples - 1).fill(good)], { state: down, cameraOn: false });
  assert.deepEqual(interrupted.actions, [], "a mediocre sample restarts the stretch");
  const back = run(Array(QUALITY.goodSamples * 3).fill(good), { state: down, cameraOn: false });
  assert.deepEqual(back.actions, ["offer-video"], "offered exactly once");
  assert.equal(back.state.mode, "audio-only", "still audio only: only the person turns the camera on");
});

test("after the person turns the camera on again, a new drop falls back again", () => {
  const s = cameraTurnedOn();
  assert.deepEqual(run([slow, slow, slow], { state: s }).actions, ["audio-only"]);
});

test("sampleOf reads the selected pair's bandwidth, the encoder's limitation and the reported loss", () => {
  const report = new Map(Object.entries({
    T: { id: "T", type: "transport", selectedCandidatePairId: "P2" },
    P1: { id: "P1", type: "candidate-pair", availableOutgoingBitrate: 2_000_000, nominated: false, state: "failed" },
    P2: { id: "P2", type: "candidate-pair", availableOutgoingBitrate: 120_000, nominated: true, state: "succeeded" },
    OV: { id: "OV", type: "outbound-rtp", kind: "video", qualityLimitationReason: "bandwidth", packetsSent: 500 },
    OA: { id: "OA", type: "outbound-rtp", kind: "audio", qualityLimitationReason: "none", packetsSent: 300 },
    RV: { id: "RV", type: "remote-inbound-rtp", kind: "video", fractionLost: 0.2, packetsLost: 40 },
    RA: { id: "RA", type: "remote-inbound-rtp", kind: "audio", fractionLost: 0.01, packetsLost: 2 },
  }));
  const s = sampleOf(report);
  assert.equal(s.kbps, 120);
  assert.equal(s.loss, 0.2);
  assert.equal(s.limited, true);
});

test("sampleOf without fractionLost uses packet deltas; without an estimate, kbps is null", () => {
  const at = (sent, lost) => new Map(Object.entries({
    O: { id: "O", type: "outbound-rtp", kind: "audio", packetsSent: sent },
    R: { id: "R", type: "remote-inbound-rtp", kind: "audio", packetsLost: lost },
  }));
  const first = sampleOf(at(100, 0));
  assert.equal(first.loss, null, "no previous sample, no delta");
  assert.equal(first.kbps, null);
  const second = sampleOf(at(200, 25), first);
  assert.equal(second.loss, 0.25);
  // And such samples drive the decision like any other.
  assert.deepEqual(run([second, second, second]).actions, ["audio-only"]);
});

test("with the camera off, heavy loss on the video we receive falls back to audio only", () => {
  const weakDownload = { kbps: 900, loss: 0, limited: false, inLoss: 0.25 };
  assert.deepEqual(run([weakDownload, weakDownload]).actions, [], "two are not enough");
  const r = run([weakDownload, weakDownload, weakDownload], { cameraOn: false });
  assert.deepEqual(r.actions, ["audio-only"]);
  assert.equal(r.state.mode, "audio-only");
});

test("sampleOf measures the loss of received video from packet deltas", () => {
  const at = (received, lost) => [{ id: "in", type: "inbound-rtp", kind: "video", packetsReceived: received, packetsLost: lost }];
  const first = sampleOf(at(100, 0));
  assert.equal(first.inLoss, null, "no delta on the first sample");
  const second = sampleOf(at(160, 40), first);
  assert.equal(second.inLoss, 0.4);
});
