// The bundle hash the relay prints at start (the one an organisation publishes) is what
// scripts/bundle-hash recomputes from the pages the relay actually serves; a relay serving
// different pages would give another hash. It covers what the page trusts: the integrity
// manifest, and /config.json with the organisation key the page pins (listed in the
// manifest, so the page loads it checked), so another key gives another hash.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { startRelay } from "./harness.mjs";

const script = fileURLToPath(new URL("../../scripts/bundle-hash", import.meta.url));

test("the published bundle hash matches the served pages", async () => {
  const relay = await startRelay();
  try {
    assert.match(relay.bundleHash ?? "", /^[0-9a-f]{64}$/, "the relay prints its bundle hash");
    const served = execFileSync(script, [relay.url], { encoding: "utf8" }).trim();
    assert.equal(served, relay.bundleHash);
    assert.equal((await (await fetch(`${relay.url}/bundle.sha256`)).text()).trim(), relay.bundleHash);

    const manifest = await (await fetch(`${relay.url}/integrity.json`)).json();
    const configBytes = Buffer.from(await (await fetch(`${relay.url}/config.json`)).arrayBuffer());
    const sri = "sha384-" + createHash("sha384").update(configBytes).digest("base64");
    assert.equal(manifest["/config.json"], sri, "the manifest pins /config.json");
    const config = JSON.parse(configBytes.toString("utf8"));
    assert.match(config.org, /^[0-9a-f]{64}$/, "the organisation key is in /config.json");
    assert.match(config.revocations, /^[0-9a-f]+$/, "so is the revocation list");

    // Another deployment (a fresh demo organisation key) has another bundle hash.
    const other = await startRelay();
    try {
      assert.notEqual(other.bundleHash, relay.bundleHash, "the key is covered by the hash");
    } finally {
      await other.stop();
    }
  } finally {
    await relay.stop();
  }
});
