// Subresource Integrity holds for every script, including ES modules loaded by `import`: a
// module altered on the way (here by intercepting the response) is refused, so the page
// never loads its core; the same page unaltered does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser } from "./harness.mjs";

async function coreLoads(relay, tamper) {
  const b = await openBrowser({ mobile: true });
  try {
    if (tamper) {
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
    return { ready, ran, console: b.record.console };
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
  } finally {
    await relay.stop();
  }
});
