// Six members in one video call: the person (phone, 360×740), the national operator (desk,
// 1366×768) and four interpreters, each invited for a language. Every member decodes video
// from each of the five others (five streams with frames decoded, and five tiles naming
// five different senders: a tile's sender is who its frames decrypted as) and goes on
// decoding all five others' audio; the call fits the phone and the desk with every name
// visible; a seventh is refused with a clear notice; and once everyone has hung up, the
// relay's SFU census is back to 0.
//
// Light for a 2-core machine: one Chromium with a context per member (one fake camera, at
// SIX_FPS frames a second, 10 by default), and the pages themselves send 320×180 at most
// 15 fps in a call this large. Video is measured but not required to keep flowing: on a
// loaded 2-core machine the senders' bandwidth estimates sink and the pages rightly fall
// back to audio only (the call's `CallVideo` fall-back). It prints frames decoded per second
// per stream and the CPU; APPRODO_SIX_SHOTS=dir keeps screenshots of the phone and the desk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startRelay, CHROMIUM, FLAGS, personStarts, deskLogin, deskLanguage, acceptFirst, untilState, callStats, untilStats, interpreterJoins } from "./harness.mjs";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const OTHERS = 5;
/** The inbound streams of a kind, by id, with their counters. */
const inboundOf = (stats, kind) => new Map(stats.filter((s) => s.type === "inbound-rtp" && s.kind === kind).map((s) => [s.id, s]));
const streams = (stats, kind, field, min) => [...inboundOf(stats, kind).values()].filter((s) => (s[field] || 0) > min).length;
/** untilStats, and on a timeout what every member receives and sends. */
async function untilAll(members, page, pred, what, timeout) {
  try {
    return await untilStats(page, pred, what, timeout);
  } catch (e) {
    const seen = [];
    for (const [n, x] of members) seen.push(`${n}: ${summary(await callStats(x.page))}`);
    throw new Error(`${e.message}; what each receives:\n  ${seen.join("\n  ")}`);
  }
}

/** For a failure's message: per inbound stream kind+mid:packets/frames decoded, then what
 * the page sends, its bandwidth estimate and round trip, and the losses either end saw. */
const summary = (stats) => stats.filter((s) => s.type === "inbound-rtp")
  .map((s) => `${s.kind[0]}${s.mid}:${s.packetsReceived || 0}/${s.framesDecoded ?? "-"}`)
  .concat(stats.filter((s) => s.type === "outbound-rtp" && s.kind === "video")
    .map((s) => `sent ${s.framesEncoded}/${s.framesSent} frames ${s.frameWidth}x${s.frameHeight} ${s.qualityLimitationReason} ${s.targetBitrate}`))
  .concat(stats.filter((s) => s.type === "candidate-pair" && s.nominated).map((s) => `bwe ${Math.round((s.availableOutgoingBitrate || 0) / 1000)}k rtt ${s.currentRoundTripTime}`))
  .concat(stats.filter((s) => s.type === "inbound-rtp" && s.kind === "video").reduce((n, s) => n + (s.packetsLost || 0), 0) + " lost")
  .concat(stats.filter((s) => s.type === "remote-inbound-rtp").map((s) => `relay saw ${s.kind} lost ${s.packetsLost} (${s.fractionLost})`))
  .concat(stats.filter((s) => s.type === "outbound-rtp").map((s) => `${s.kind} sent ${s.packetsSent}`))
  .join(" ") || "no call";
const visibleTiles = (page) => page.locator("#call-tiles figure.tile:not([hidden])");

/** The relay's SFU census from its metrics: calls, call participants, peer connections. */
async function census(relay) {
  const text = await (await fetch(relay.metrics)).text();
  const value = (name) => Number(text.match(new RegExp(`^${name} (\\d+)$`, "m"))?.[1] ?? NaN);
  return { calls: value("approdo_calls"), participants: value("approdo_call_participants"), peers: value("approdo_sfu_peer_connections") };
}

/** Busy and total jiffies of the whole machine, and a process's own (utime + stime). */
function cpu(pid) {
  const all = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = all[3] + (all[4] || 0);
  const total = all.reduce((a, b) => a + b, 0);
  const own = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { busy: total - idle, total, proc: Number(own[11]) + Number(own[12]) };
}

/** What openBrowser gives, as a context of the one shared browser, with calls recorded. */
async function member(browser, { mobile = false } = {}) {
  const context = await browser.newContext(mobile
    ? { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
    : { viewport: { width: 1366, height: 768 } });
  await context.addInitScript(() => {
    // As the harness's spy: every RTCPeerConnection, for callStats().
    window.__pcs = [];
    const PC = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends PC { constructor(...a) { super(...a); window.__pcs.push(this); } };
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return { context, page, errors };
}

/** Whether the call view, its tiles and their names fit the viewport (no scrolling sideways). */
async function layout(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const box = (el) => el.getBoundingClientRect();
    const view = box(document.querySelector("#call-view"));
    const tiles = [...document.querySelectorAll("#call-tiles figure.tile:not([hidden])")].map((t) => {
      const b = box(t), c = box(t.querySelector("figcaption"));
      return {
        inside: b.left >= 0 && b.right <= vw + 0.5,
        height: Math.round(b.height),
        caption: t.querySelector("figcaption").textContent,
        captionShown: c.width > 0 && c.height > 0 && c.left >= b.left - 0.5 && c.right <= b.right + 0.5 && c.bottom <= b.bottom + 0.5,
      };
    });
    const wide = [...document.querySelectorAll("body *")].filter((el) => box(el).right > vw + 0.5 && box(el).width > 0)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className}:${Math.round(box(el).right)}`).slice(0, 8);
    return { vw, scrollWidth: document.documentElement.scrollWidth, viewHeight: Math.round(view.height), tiles, wide };
  });
}

test("six members in one call: everyone decodes everyone, the seventh is refused", { timeout: 420_000 }, async () => {
  const relay = await startRelay();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, "--use-fake-device-for-media-stream=fps=" + (process.env.SIX_FPS || 10) + "", "--use-fake-ui-for-media-stream", "--allow-loopback-in-peer-connection"],
  });
  const members = [];
  try {
    const person = await member(browser, { mobile: true });
    const operator = await member(browser);
    const interpreters = [];
    for (let i = 0; i < 4; i++) interpreters.push(await member(browser));
    members.push(["person", person], ["operator", operator], ...interpreters.map((b, i) => [`interpreter ${i + 1}`, b]));

    await deskLogin(operator, relay, "operator-national");
    await deskLanguage(operator, "en");
    const labels = ["interpreter", "interpreter-2", "interpreter-3", "interpreter-4"];
    for (const [i, b] of interpreters.entries()) {
      await deskLogin(b, relay, labels[i]);
      await deskLanguage(b, "en");
    }
    await personStarts(person, relay.url, { language: "ro" });
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    for (const [i, language] of ["ro", "ar", "zh", "sq"].entries()) await interpreterJoins(operator, interpreters[i], language);

    // The operator calls, the person answers with video, the four interpreters join.
    await operator.page.locator("#start-call").click();
    await operator.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
    await person.page.locator("#call-invite").waitFor({ state: "visible", timeout: 20_000 });
    await person.page.locator("#video-call").click();
    for (const b of interpreters) {
      await b.page.waitForFunction(() => {
        const s = document.querySelector("#start-call");
        return s && !s.hidden && !s.disabled && s.textContent === "Join call";
      }, null, { timeout: 20_000 });
      await b.page.locator("#start-call").click();
      await b.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
    }

    // Everyone: video decoded from each of five others (a frame decodes only once it has
    // decrypted with its sender's key), five tiles naming five different senders, audio
    // from all five.
    for (const [name, b] of members) {
      await untilAll(members, b.page, (s) => streams(s, "video", "framesDecoded", 0) >= OTHERS && streams(s, "audio", "packetsReceived", 5) >= OTHERS,
        `the ${name} to decode the five others' video and audio`, 120_000);
      await b.page.waitForFunction((n) => document.querySelectorAll("#call-tiles figure.tile:not([hidden])").length === n, OTHERS, { timeout: 30_000 });
      const senders = await visibleTiles(b.page).evaluateAll((ts) => ts.map((t) => t.dataset.participant));
      assert.equal(new Set(senders).size, OTHERS, `${name}: five tiles of five different senders (${senders})`);
    }
    const during = await census(relay);
    assert.deepEqual(during, { calls: 1, participants: 6, peers: 6 }, "the SFU holds one call of six");

    // Decoding goes on, from each of the five others: audio decoded (samples that were not
    // concealment, so decrypted and decoded) rises on all five audio streams, polled for at
    // most 45 s. Video is measured, not required to keep rising: on this 2-core machine
    // the senders' bandwidth estimate sinks and the pages fall back to audio only.
    // Figures: frames decoded per second per video stream over 10 s,
    // the machine's CPU and the relay's.
    const heard = (st) => new Map([...inboundOf(st, "audio")].map(([id, a]) => [id, (a.totalSamplesReceived || 0) - (a.concealedSamples || 0)]));
    const before = new Map(), beforeAudio = new Map();
    for (const [name, b] of members) {
      const st = await callStats(b.page);
      before.set(name, inboundOf(st, "video"));
      beforeAudio.set(name, heard(st));
    }
    const cpu0 = cpu(relay.proc.pid);
    const t0 = Date.now();
    await sleep(10_000);
    const cpu1 = cpu(relay.proc.pid);
    const seconds = (Date.now() - t0) / 1000;
    const figures = [];
    for (const [name, b] of members) {
      const after = inboundOf(await callStats(b.page), "video");
      const fps = [...after].map(([id, st]) => ((st.framesDecoded || 0) - (before.get(name).get(id)?.framesDecoded || 0)) / seconds);
      const sizes = [...after.values()].filter((st) => st.frameWidth).map((st) => `${st.frameWidth}x${st.frameHeight}`);
      figures.push(`${name}: ${fps.map((f) => f.toFixed(1)).join(" ")} video fps decoded (${[...new Set(sizes)].join(", ")}); camera ${await b.page.locator("#camera").textContent()}`);
    }
    const jiffies = cpu1.total - cpu0.total;
    figures.push(`machine CPU busy ${((100 * (cpu1.busy - cpu0.busy)) / jiffies).toFixed(0)}% of 2 cores, load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}; relay ${(((cpu1.proc - cpu0.proc) / 100) / seconds * 100).toFixed(0)}% of one core`);
    console.log(`six-member call over ${seconds.toFixed(1)} s:\n  ${figures.join("\n  ")}`);
    for (const [name, b] of members) {
      const rose = (st) => [...heard(st)].filter(([id, n]) => n > (beforeAudio.get(name).get(id) ?? Infinity)).length;
      await untilAll(members, b.page, (st) => rose(st) >= OTHERS, `the ${name} to go on decoding all five others' audio`, 45_000);
    }

    // The call fits the phone and the desk: nothing sideways, every tile's name shown.
    const shots = process.env.APPRODO_SIX_SHOTS;
    for (const [name, b, height] of [["person", person, 740], ["operator", operator, 768]]) {
      if (shots) {
        await b.page.locator("#call-view").scrollIntoViewIfNeeded();
        await b.page.screenshot({ path: join(shots, `six-${name}.png`) });
      }
      const l = await layout(b.page);
      assert.ok(l.scrollWidth <= l.vw, `${name}: no sideways scrolling (${l.scrollWidth} > ${l.vw}: ${l.wide.join(" ")})`);
      assert.equal(l.tiles.length, OTHERS);
      for (const t of l.tiles) {
        assert.ok(t.inside && t.captionShown && t.caption.trim(), `${name}: tile "${t.caption}" inside the screen, named: ${JSON.stringify(t)}`);
      }
      assert.ok(l.viewHeight <= height, `${name}: the whole call (tiles and buttons) fits one ${height} px screen: ${l.viewHeight}`);
    }
    const captions = (await visibleTiles(operator.page).locator("figcaption").allTextContents()).join(" | ");
    assert.ok(/Person/.test(captions) && (captions.match(/Interpreter/g) || []).length === 4, `operator's tiles: ${captions}`);
    const personCaptions = (await visibleTiles(person.page).locator("figcaption").allTextContents()).join(" | ");
    // The person's page speaks Romanian: "Operator", "Interpret".
    assert.ok(/Operator/.test(personCaptions) && (personCaptions.match(/Interpret/g) || []).length === 4, `person's tiles: ${personCaptions}`);

    // A seventh: the operator's invitation is refused, and the desk says why.
    await operator.page.locator("#invite-language").selectOption("ur");
    await operator.page.locator("#invite").click();
    await operator.page.locator("#desk-status").getByText("already has six people").waitFor({ timeout: 10_000 });

    // Everyone hangs up (the last one is left alone and leaves by itself): the SFU's
    // census returns to 0.
    for (const [, b] of members.slice(1)) {
      await b.page.locator("#hang-up").click();
      await b.page.locator("#call-view").waitFor({ state: "hidden", timeout: 20_000 });
    }
    await person.page.locator("#call-view").waitFor({ state: "hidden", timeout: 20_000 });
    const end = Date.now() + 20_000;
    let after = await census(relay);
    while (Date.now() < end && (after.calls || after.participants || after.peers)) {
      await sleep(250);
      after = await census(relay);
    }
    assert.deepEqual(after, { calls: 0, participants: 0, peers: 0 }, "the SFU let everything go");
    for (const [name, b] of members) assert.deepEqual(b.errors, [], `${name}: no page errors`);
  } finally {
    for (const [, b] of members) await b.context.close().catch(() => {});
    await browser.close();
    await relay.stop();
  }
});
