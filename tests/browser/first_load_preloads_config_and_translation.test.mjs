// The person's page gets everything it needs in one round trip after the page itself: the
// relay's `Link` header on `/` preloads /config.json and the translation of the browser's
// language with the rest, so the page does not ask for them only after the integrity
// manifest arrived. The page's own integrity-checked fetches take the preloaded responses:
// each file is downloaded once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser } from "./harness.mjs";

// A slow network (DevTools' "Fast 3G" latency), so that one round trip more or less shows
// in the order of the requests.
const SLOW = { offline: false, latency: 562.5, downloadThroughput: (1.44 * 1024 * 1024) / 8, uploadThroughput: (675 * 1024) / 8 };

test("config.json and the browser language's translation are requested with the page, once", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true, locale: "ru-RU" });
  try {
    const cdp = await person.context.newCDPSession(person.page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", SLOW);
    const response = await person.page.goto(`${relay.url}/`);
    const link = (await response.allHeaders()).link ?? "";
    assert.match(link, /<\/config\.json>; rel=preload; as=fetch; crossorigin/, "the page's response preloads /config.json");
    assert.match(link, /<\/i18n\/ru\.json>; rel=preload; as=fetch; crossorigin; integrity="sha384-/, "and the browser language's translation");
    await person.page.waitForFunction(() => document.body.dataset.core === "ready", null, { timeout: 60_000 });
    // The page opened in the browser's language with the preloaded translation.
    await person.page.waitForFunction(() => document.documentElement.lang === "ru", null, { timeout: 60_000 });
    const timing = await person.page.evaluate(() =>
      performance.getEntriesByType("resource").map((e) => ({ path: new URL(e.name).pathname, start: e.startTime, end: e.responseEnd })),
    );
    const only = (path) => {
      const found = timing.filter((e) => e.path === path);
      assert.equal(found.length, 1, `${path} downloaded once (found ${found.length})`);
      return found[0];
    };
    const manifest = only("/integrity.json");
    for (const path of ["/config.json", "/i18n/ru.json"]) {
      // Without the preload, the page can only ask for it once the manifest is in.
      assert.ok(only(path).start < manifest.end, `${path} was requested before the integrity manifest arrived`);
    }
    // Nothing the header preloads is fetched a second time by the page (the modules, the
    // stylesheet and the core included).
    for (const path of new Set(timing.map((e) => e.path))) only(path);
    only("/pkg/approdo_wasm_bg.wasm");
    assert.deepEqual(await person.cspViolations(), []);
  } finally {
    await person.close();
    await relay.stop();
  }
});
