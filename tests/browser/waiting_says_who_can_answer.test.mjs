// While waiting, the person reads who can answer, never "someone will answer soon" beside
// "nobody can answer online": an Arabic speaker with nobody online gets the numbers and no
// estimate; with an operator online who does not speak Arabic, that an operator can take the
// case and look for an interpreter (the numbers only as an alternative); with an Arabic
// interpreter online too, that an operator will answer with an interpreter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startRelay, openBrowser, personStarts, deskLogin } from "./harness.mjs";

const ar = JSON.parse(readFileSync(new URL("../../web-client/i18n/ar.json", import.meta.url), "utf8"));
const en = JSON.parse(readFileSync(new URL("../../web-client/i18n/en.json", import.meta.url), "utf8"));

/** What the waiting screen shows, visible elements only. */
const waiting = (page) => page.evaluate(() => {
  const shown = (sel) => {
    const el = document.querySelector(sel);
    return el && el.checkVisibility() ? el.textContent.trim() : null;
  };
  return {
    title: shown("#queue-box h2"),
    outlook: shown("#outlook"),
    wait: shown("#wait-time"),
    nobody: shown("#nobody-online"),
    numbers: shown("#call-numbers"),
  };
});

/** Wait until `sel` is shown with exactly `text`. */
const until = (page, sel, text) => page.waitForFunction(([sel, text]) => {
  const el = document.querySelector(sel);
  return el && el.checkVisibility() && el.textContent.trim() === text;
}, [sel, text], { timeout: 30_000 });

test("the waiting screen says who can answer, in the person's language", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  const interpreter = await openBrowser();
  try {
    await personStarts(person, relay.url, { language: "ar" });
    await until(person.page, "#nobody-online", ar.nobody_online);
    let w = await waiting(person.page);
    assert.match(w.numbers, /800 290 290/);
    assert.equal(w.outlook, null, "no promise of an answer beside 'nobody'");
    assert.equal(w.wait, null, "no estimate when nobody is online");
    assert.equal(w.title, ar.waiting_title);
    for (const s of Object.values(w)) assert.ok(!s?.includes(en.waiting_title), "nothing in English");

    // The national operator (Italian, English, French, Spanish) logs in.
    await deskLogin(operator, relay, "operator-national");
    await until(person.page, "#outlook", ar.outlook_seeking_interpreter);
    w = await waiting(person.page);
    assert.equal(w.nobody, null, "not 'nobody can answer' while an operator can take the case");
    assert.match(w.numbers ?? "", /800 290 290/, "the numbers stay as an alternative");
    assert.equal(w.wait, null, "no accept observed yet: no estimate");

    // An interpreter for Arabic logs in.
    await deskLogin(interpreter, relay, "interpreter");
    await until(person.page, "#outlook", ar.outlook_with_interpreter);
    w = await waiting(person.page);
    assert.equal(w.nobody, null);
    assert.equal(w.numbers, null, "someone can answer: no fallback numbers");
  } finally {
    await person.close();
    await operator.close();
    await interpreter.close();
    await relay.stop();
  }
});
