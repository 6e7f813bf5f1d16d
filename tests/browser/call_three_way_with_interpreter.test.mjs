// Operator, person and interpreter in one call: each decodes the other two (video and
// audio, two senders each). The interpreter leaves the call; the operator and the person
// go on decoding each other, and the interpreter's tile goes away.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, untilState, callStats, untilStats, inbound, interpreterJoins, deskLanguage } from "./harness.mjs";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
/** How many inbound streams of a kind have `field` above `min`. */
const streams = (stats, kind, field, min = 0) => stats.filter((s) => s.type === "inbound-rtp" && s.kind === kind && (s[field] || 0) > min).length;
const visibleTiles = (page) => page.locator("#call-tiles figure.tile:not([hidden])");

test("three-way call with an interpreter, who then leaves", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true, media: true });
  const operator = await openBrowser({ media: true });
  const interpreter = await openBrowser({ media: true });
  try {
    await deskLogin(operator, relay, "operator-national");
    await deskLanguage(operator, "en");
    await deskLogin(interpreter, relay, "interpreter");
    await deskLanguage(interpreter, "en");
    await personStarts(person, relay.url, { language: "ro" });
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await interpreterJoins(operator, interpreter, "ro");

    // The operator calls; the person answers with video; the interpreter joins the call.
    await operator.page.locator("#start-call").click();
    await operator.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
    await person.page.locator("#call-invite").waitFor({ state: "visible", timeout: 20_000 });
    await person.page.locator("#video-call").click();
    const joinCall = interpreter.page.locator("#start-call");
    await interpreter.page.waitForFunction(() => {
      const b = document.querySelector("#start-call");
      return b && !b.hidden && !b.disabled && b.textContent === "Join call";
    }, null, { timeout: 20_000 });
    await joinCall.click();
    await interpreter.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });

    for (const [name, b] of [["operator", operator], ["person", person], ["interpreter", interpreter]]) {
      await untilStats(b.page, (s) => streams(s, "video", "framesDecoded", 5) >= 2 && streams(s, "audio", "packetsReceived", 5) >= 2,
        `the ${name} to decode both others' video and audio`, 45_000);
      await visibleTiles(b.page).nth(1).waitFor({ timeout: 10_000 });
      assert.equal(await visibleTiles(b.page).count(), 2, `${name}: two others shown`);
    }
    const labels = await visibleTiles(operator.page).locator("figcaption").allTextContents();
    assert.ok(labels.some((l) => /Person/.test(l)) && labels.some((l) => /Interpreter/.test(l)), `operator's tiles: ${labels}`);

    // The interpreter leaves the call (not the session).
    await interpreter.page.locator("#hang-up").click();
    await interpreter.page.locator("#call-view").waitFor({ state: "hidden", timeout: 10_000 });
    for (const [name, b] of [["operator", operator], ["person", person]]) {
      await b.page.waitForFunction(() => document.querySelectorAll("#call-tiles figure.tile:not([hidden])").length === 1, null, { timeout: 20_000 });
      const before = inbound(await callStats(b.page), "video", "framesDecoded");
      await sleep(2500);
      const after = inbound(await callStats(b.page), "video", "framesDecoded");
      assert.ok(after > before, `${name} keeps decoding after the interpreter left (${before} -> ${after})`);
      assert.ok(await b.page.locator("#call-view").isVisible(), `${name} still in the call`);
    }
    assert.equal(await interpreter.page.locator("#chat").isVisible(), true, "the interpreter is still in the session");
  } finally {
    for (const b of [person, operator, interpreter]) await b.close();
    await relay.stop();
  }
});
