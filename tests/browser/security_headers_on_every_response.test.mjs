// Every response the browser received during a session (pages, scripts, wasm, JSON,
// translations, the WebSocket upgrade) carries the security headers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, untilState } from "./harness.mjs";

const REQUIRED = {
  "content-security-policy": /default-src 'none'.*script-src 'self' 'wasm-unsafe-eval'.*connect-src 'self'.*frame-ancestors 'none'/,
  "cache-control": /no-store/,
  "referrer-policy": /no-referrer/,
  "x-content-type-options": /nosniff/,
  "cross-origin-opener-policy": /same-origin/,
  "cross-origin-resource-policy": /same-origin/,
  "permissions-policy": /camera=\(self\), microphone=\(self\)/,
};

test("security headers on every response", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  try {
    await personStarts(person, relay.url, { language: "it" });
    await untilState(person.page, "waiting");
    await person.page.goto(`${relay.url}/desk`);
    await untilState(person.page, "login");
    const seen = person.record.responses;
    assert.ok(seen.length >= 6, `responses recorded: ${seen.map((r) => r.url)}`);
    for (const r of seen) {
      for (const [name, pattern] of Object.entries(REQUIRED)) {
        assert.match(r.headers[name] ?? "", pattern, `${r.url} (${r.status}): ${name}`);
      }
    }
    const wasm = seen.find((r) => r.url.endsWith(".wasm"));
    assert.ok(wasm, "the wasm was loaded");
    assert.equal(wasm.headers["content-type"], "application/wasm");
  } finally {
    await person.close();
    await relay.stop();
  }
});
