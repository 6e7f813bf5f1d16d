// The person's first load stays within 250 KB compressed, wasm included. Also measures
// (and prints, without asserting a time) how long the page takes to be ready to chat on
// an emulated "Fast 3G" network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, untilState } from "./harness.mjs";

const BUDGET = 250 * 1024;
// DevTools' "Fast 3G" preset (throttling values before Chromium's 1.2× adjustments).
const FAST_3G = { offline: false, latency: 562.5, downloadThroughput: (1.44 * 1024 * 1024) / 8, uploadThroughput: (675 * 1024) / 8 };

test("first load weight within budget; time to chat on Fast 3G", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  try {
    const cdp = await person.context.newCDPSession(person.page);
    await cdp.send("Network.enable");
    // The two events arrive in either order; join them at the end.
    const urls = new Map();
    const bytes = new Map();
    cdp.on("Network.responseReceived", (e) => urls.set(e.requestId, e.response.url));
    cdp.on("Network.loadingFinished", (e) => bytes.set(e.requestId, e.encodedDataLength));
    await cdp.send("Network.emulateNetworkConditions", FAST_3G);
    const started = Date.now();
    await person.page.goto(`${relay.url}/`);
    // The page loads its core while the person reads and chooses; measure that apart.
    await person.page.waitForFunction(() => document.body.dataset.core === "ready", null, { timeout: 60_000 });
    const loaded = Date.now() - started;
    await person.page.locator('#languages [data-lang="en"]').click();
    await untilState(person.page, "intake");
    await person.page.locator("#start").click();
    await untilState(person.page, "waiting", 60_000);
    // Usable: the relay confirmed the session and the queue position (or, with nobody
    // online, the phone numbers) is on screen; from here typed words are kept for the
    // operator.
    await person.page.waitForFunction(() => {
      const q = document.querySelector("#queue-position");
      const f = document.querySelector("#fallback");
      return (q && !q.hidden && q.textContent.trim() !== "") || (f && !f.hidden);
    }, null, { timeout: 60_000 });
    const ready = Date.now() - started;
    const afterStart = ready - loaded;
    // Bytes on the wire per resource (compressed body plus headers), as the page saw them.
    const entries = await person.page.evaluate(() =>
      [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")].map((e) => ({
        url: e.name,
        bytes: e.transferSize,
      })),
    );
    const sizes = new Map(entries.map((e, i) => [i, e]));
    const cdpTotal = [...bytes.values()].reduce((s, b) => s + b, 0);
    const total = [...sizes.values()].reduce((s, r) => s + r.bytes, 0);
    const wasm = [...sizes.values()].filter((r) => r.url.endsWith(".wasm")).reduce((s, r) => s + r.bytes, 0);
    if (process.env.DEBUG_WEIGHT) console.log([...sizes.values()], { cdpTotal, urls: urls.size });
    console.log(`page weight (person, first load to the queue): ${(total / 1024).toFixed(1)} KB on the wire (wasm ${(wasm / 1024).toFixed(1)} KB), ${sizes.size} responses`);
    console.log(
      `Fast 3G: page and core loaded ${(loaded / 1000).toFixed(2)} s after navigation; ` +
        `session confirmed (chat usable) ${(afterStart / 1000).toFixed(2)} s after the taps; ` +
        `${(ready / 1000).toFixed(2)} s in all with instant taps`,
    );
    assert.ok(wasm > 0, "the wasm was loaded");
    assert.ok(total <= BUDGET, `first load ${total} bytes exceeds ${BUDGET}`);
  } finally {
    await person.close();
    await relay.stop();
  }
});
