// Where the quick exit lands: by default the relay's own neutral page in the person's
// language (`/exit?l=…`, nothing stored); with `quick_exit_url` set by the deployer, that
// page on another origin, replacing the conversation's history entry.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFileSync } from "node:fs";
import { startRelay, conversation, send, sees, storageOf } from "./harness.mjs";

const ar = JSON.parse(readFileSync(new URL("../../web-client/i18n/ar.json", import.meta.url), "utf8"));

test("by default: the relay's neutral page, in the person's language", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay, { language: "ar" });
  const { person, operator } = talk;
  try {
    await send(person.page, "مرحبا");
    await sees(operator.page, "مرحبا");
    await person.page.locator("#exit").click();
    await person.page.waitForURL((u) => u.pathname === "/exit" && u.searchParams.get("l") === "ar");
    await person.page.waitForFunction((t) => document.querySelector("h1")?.textContent.trim() === t, ar.weather_title);
    assert.equal(await person.page.evaluate(() => document.documentElement.dir), "rtl");
    assert.equal(await person.page.title(), ar.weather_title);
    assert.doesNotMatch(await person.page.content(), /مرحبا/);
    assert.deepEqual(await person.cspViolations(), [], "the translated exit page keeps the CSP");
    const s = await storageOf(person.page, person.context);
    assert.deepEqual(s, { cookies: 0, localStorage: 0, sessionStorage: 0, indexedDB: 0, caches: 0, serviceWorkers: 0, cookie: "" });
    await operator.page.locator("#ended-note").waitFor({ state: "visible", timeout: 20_000 });
  } finally {
    await talk.close();
    await relay.stop();
  }
});

test("a deployer's landing page on another origin", async () => {
  // The deployer's page: another loopback origin (a relay accepts http only for loopback).
  const landing = http.createServer((req, res) => {
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end("<!doctype html><title>News</title><h1>Today's news</h1>");
  });
  await new Promise((ok) => landing.listen(0, "127.0.0.1", ok));
  const landingUrl = `http://127.0.0.1:${landing.address().port}/news`;
  const relay = await startRelay({ args: ["--quick-exit-url", landingUrl] });
  const talk = await conversation(relay);
  const { person, operator } = talk;
  try {
    await send(person.page, "please help");
    await sees(operator.page, "please help");
    const historyBefore = await person.page.evaluate(() => history.length);
    const exitRequests = [];
    person.page.on("request", (r) => { if (new URL(r.url()).pathname === "/exit") exitRequests.push(r.url()); });
    await person.page.locator("#message-input").click();
    for (let i = 0; i < 3; i++) await person.page.keyboard.press("Shift");
    await person.page.waitForURL(landingUrl);
    assert.equal((await person.page.locator("h1").textContent()).trim(), "Today's news");
    assert.equal(await person.page.evaluate(() => history.length), historyBefore, "history entry replaced, not added");
    assert.deepEqual(exitRequests, [], "straight to the deployer's page");
    await operator.page.locator("#ended-note").waitFor({ state: "visible", timeout: 20_000 });
    // Nothing of the relay's origin kept in this tab's storage.
    const relayPage = await person.context.newPage();
    await relayPage.goto(`${relay.url}/exit`);
    const s = await storageOf(relayPage, person.context);
    assert.deepEqual(s, { cookies: 0, localStorage: 0, sessionStorage: 0, indexedDB: 0, caches: 0, serviceWorkers: 0, cookie: "" });
  } finally {
    await talk.close();
    await relay.stop();
    await new Promise((ok) => landing.close(ok));
  }
});

test("a relay refuses a quick exit address that is not https or a path of its own", async () => {
  await assert.rejects(startRelay({ args: ["--quick-exit-url", "javascript:alert(1)"] }), /exited early/);
  await assert.rejects(startRelay({ args: ["--quick-exit-url", "http://news.example/"] }), /exited early/);
});
