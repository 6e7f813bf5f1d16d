// When to fall back to audio only, from periodic getStats() samples. Pure functions, no DOM
// and no clock: the call controller samples every SAMPLE_MS and applies what this says.
//
// Going down is quick (a few bad samples in a row); coming back is slow (a long good
// stretch), and even then the camera is only *offered* back: it is never turned on again
// without the person asking, and never at all if they turned it off themselves.

export const SAMPLE_MS = 2000;
export const QUALITY = {
  /** A sample is bad below this estimated outgoing bandwidth (kb/s)… */
  badKbps: 150,
  /** …or with at least this fraction of packets lost. */
  badLoss: 0.15,
  /** This many bad samples in a row switch the camera off (about 6 s). */
  badSamples: 3,
  /** A sample is good from this bandwidth (kb/s) up, when the estimate is known… */
  goodKbps: 400,
  /** …and with at most this loss. */
  goodLoss: 0.03,
  /** This many good samples in a row offer the camera back (about 60 s). */
  goodSamples: 30,
};

/** The state a call starts with. */
export function initialQuality() {
  return { mode: "video", bad: 0, good: 0, offered: false };
}

/**
 * One sample from an RTCStatsReport (a Map-like of stats objects) and the previous sample
 * (for packet deltas): {kbps, loss, limited}. kbps: the selected candidate pair's
 * availableOutgoingBitrate in kb/s, or null if the browser gives none; loss: the fraction
 * lost that the relay reported back (remote-inbound-rtp fractionLost, the largest over
 * our streams, or else from packetsLost/packetsSent deltas), or null; limited: whether
 * the video encoder says it is held back by bandwidth.
 */
export function sampleOf(report, previous = null) {
  const stats = [...(report?.values?.() ?? report ?? [])];
  const byId = new Map(stats.map((s) => [s.id, s]));
  let pair = null;
  for (const s of stats) {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId) || pair;
  }
  pair ||= stats.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded") || null;
  const bps = pair?.availableOutgoingBitrate;
  const kbps = typeof bps === "number" && Number.isFinite(bps) ? bps / 1000 : null;

  let limited = false;
  const counts = { sent: 0, lost: 0, inReceived: 0, inLost: 0 };
  const fractions = [];
  for (const s of stats) {
    if (s.type === "outbound-rtp" && s.kind === "video" && s.qualityLimitationReason === "bandwidth") limited = true;
    if (s.type === "outbound-rtp") counts.sent += s.packetsSent || 0;
    if (s.type === "inbound-rtp" && s.kind === "video") {
      counts.inReceived += s.packetsReceived || 0;
      counts.inLost += Math.max(0, s.packetsLost || 0);
    }
    if (s.type === "remote-inbound-rtp") {
      if (typeof s.fractionLost === "number") fractions.push(s.fractionLost);
      counts.lost += Math.max(0, s.packetsLost || 0);
    }
  }
  let loss = fractions.length ? Math.max(...fractions) : null;
  if (loss === null && previous?.counts) {
    const sent = counts.sent - previous.counts.sent;
    const lost = counts.lost - previous.counts.lost;
    if (sent > 0 && lost >= 0) loss = Math.min(1, lost / sent);
  }
  // What we lose of the video we receive: our own download, which no sender estimate shows.
  let inLoss = null;
  if (previous?.counts) {
    const got = counts.inReceived - previous.counts.inReceived;
    const lost = counts.inLost - previous.counts.inLost;
    if (got + lost > 0 && lost >= 0) inLoss = lost / (got + lost);
  }
  return { kbps, loss, limited, inLoss, counts };
}

const inboundBad = (s) => typeof s.inLoss === "number" && s.inLoss >= QUALITY.badLoss;
const isBad = (s) => (s.kbps !== null && s.kbps < QUALITY.badKbps) || (s.loss !== null && s.loss >= QUALITY.badLoss);
const isGood = (s) => (s.kbps === null || s.kbps >= QUALITY.goodKbps) &&
  (s.loss === null || s.loss <= QUALITY.goodLoss) && !s.limited;

/**
 * The next state after one sample, and what to do now:
 *   "audio-only"  — turn the camera off and say why;
 *   "offer-video" — say that video works again (the person decides);
 *   null          — nothing.
 * `cameraOn`: whether video is being sent now. With the camera off by choice only the
 * video we receive can be dropped (heavy loss on it); "audio-only" then means: stop
 * receiving video. The camera is never turned on again by this module.
 */
export function decide(state, sample, cameraOn) {
  const next = { ...state };
  if (state.mode === "video") {
    next.bad = (cameraOn && isBad(sample)) || inboundBad(sample) ? state.bad + 1 : 0;
    if (next.bad >= QUALITY.badSamples) {
      return { state: { mode: "audio-only", bad: 0, good: 0, offered: false }, action: "audio-only" };
    }
    return { state: next, action: null };
  }
  // Audio only because of the network: wait for a long good stretch, then offer once.
  next.good = isGood(sample) ? state.good + 1 : 0;
  if (next.good >= QUALITY.goodSamples && !state.offered) {
    next.offered = true;
    return { state: next, action: "offer-video" };
  }
  return { state: next, action: null };
}

/** The person turned the camera on again: back to watching for a drop. */
export function cameraTurnedOn() {
  return initialQuality();
}
