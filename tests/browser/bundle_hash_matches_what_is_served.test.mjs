// The bundle hash the relay prints at start (the one an organisation publishes) is what
// scripts/bundle-hash recomputes from the pages the relay actually serves; a relay serving
// different pages would give another hash.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startRelay } from "./harness.mjs";

const script = fileURLToPath(new URL("../../scripts/bundle-hash", import.meta.url));

test("the published bundle hash matches the served pages", async () => {
  const relay = await startRelay();
  try {
    assert.match(relay.bundleHash ?? "", /^[0-9a-f]{64}$/, "the relay prints its bundle hash");
    const served = execFileSync(script, [relay.url], { encoding: "utf8" }).trim();
    assert.equal(served, relay.bundleHash);
  } finally {
    await relay.stop();
  }
});
