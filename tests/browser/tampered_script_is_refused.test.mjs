// Subresource Integrity holds for every script, including ES modules loaded by `import`: a
// module altered on the way (here by intercepting the response) is refused, so the page
// never loads its core; the same page unaltered does. The page fails closed: a file the
// integrity manifest does not list is not loaded at all, and an altered /config.json (say,
// another organisation key) is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser } from "./harness.mjs";

async function coreLoads(relay, tamper, { dropEntry = null } = {}) {
  const b = await openBrowser({ mobile: true });
  try {
    if (dropEntry) {
      await b.page.route("**/integrity.json", async (route) => {
        const original = await route.fetch();
        const manifest = await original.json();
        delete manifest[dropEntry];
        await route.fulfill({ response: original, body: JSON.stringify(manifest) });
      });
    }
    if (tamper === "/config.json") {
      await b.page.route("**/config.json", async (route) => {
        const original = await route.fetch();
        const config = await original.json();
        config.org = "ab".repeat(32);
        await route.fulfill({ response: original, body: JSON.stringify(config) });
      });
    } else if (tamper) {
      await b.page.route(`**${tamper}`, async (route) => {
        const original = await route.fetch();
        const body = (await original.text()) + "\n;globalThis.__tampered = true;\n";
        await route.fulfill({ response: original, body });
      });
    }
    await b.page.goto(`${relay.url}/`);
    const ready = await b.page
      .waitForFunction(() => document.body.dataset.core === "ready", null, { timeout: 8_000 })
      .then(() => true, () => false);
    const ran = await b.page.evaluate(() => globalThis.__tampered === true);
    const configLoads = await b.page.evaluate(() =>
      import("/common.js").then((m) => m.config()).then(() => true, () => false),
    );
    return { ready, ran, configLoads, console: b.record.console };
  } finally {
    await b.close();
  }
}

test("an altered module is refused; the unaltered page loads", async () => {
  const relay = await startRelay();
  try {
    const clean = await coreLoads(relay, null);
    assert.equal(clean.ready, true, "control: the untouched page loads its core");
    for (const path of ["/common.js", "/pkg/approdo_wasm.js"]) {
      const r = await coreLoads(relay, path);
      assert.equal(r.ran, false, `${path}: the altered code never ran`);
      assert.equal(r.ready, false, `${path}: the page refused to go on`);
      assert.ok(r.console.some((l) => /integrity/i.test(l)), `${path}: the browser reported the integrity failure`);
    }
    assert.equal(clean.configLoads, true, "control: the untouched config loads");
    const noEntry = await coreLoads(relay, null, { dropEntry: "/pkg/approdo_wasm_bg.wasm" });
    assert.equal(noEntry.ready, false, "a core the manifest does not list is not loaded");
    const otherKey = await coreLoads(relay, "/config.json");
    assert.equal(otherKey.configLoads, false, "an altered /config.json is refused");
    assert.equal(otherKey.ready, false, "and the page does not go on with it");
  } finally {
    await relay.stop();
  }
});
