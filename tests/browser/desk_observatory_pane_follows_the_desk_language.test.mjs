// The coordinator's observatory pane speaks the desk's language: Italian by default, every
// heading, caption, column, label, chart name and note from web-client/i18n/desk/, and
// all of it redrawn in English when the coordinator switches (no English left on the
// Italian desk, no Italian left on the English one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startRelay, openBrowser, deskLogin, deskLanguage, conversation, untilState } from "./harness.mjs";

const desk = (l) => JSON.parse(readFileSync(new URL(`../../web-client/i18n/desk/${l}.json`, import.meta.url), "utf8"));
const it = desk("it");
const en = desk("en");
const OBS = Object.keys(en).filter((k) => k.startsWith("obs_") && it[k] !== en[k]);
const DIMENSIONS = ["month", "emerged", "exploited", "exploitation", "gender", "age", "activator", "outcome"];
// A text's fixed words: the longest piece between its {placeholders}.
const words = (s) => s.split(/\{[a-z_]+\}/).map((x) => x.trim()).sort((a, b) => b.length - a.length)[0];

// Every text of the pane a person sees or a screen reader reads.
const paneTexts = (page) => page.evaluate(() => {
  const pane = document.querySelector("#coordinator-pane");
  return [pane.innerText, ...[...pane.querySelectorAll("[aria-label]")].map((e) => e.getAttribute("aria-label")),
    ...[...pane.querySelectorAll("title")].map((e) => e.textContent)].join("\n");
});
const headings = (page) => page.locator("#observatory h3").allTextContents();

test("the observatory pane is in Italian by default and follows a switch to English", async () => {
  const relay = await startRelay();
  const talk = await conversation(relay);
  const coordinator = await openBrowser();
  try {
    // One filed case, so the pane draws its tables and charts.
    const { operator, person } = talk;
    await operator.page.locator("#close-case").click();
    await operator.page.locator('#record-form [name="outcome"]').selectOption("referral");
    await operator.page.locator("#record-submit").click();
    await untilState(person.page, "ended");

    await deskLogin(coordinator, relay, "coordinator");
    await coordinator.page.waitForFunction((t) => document.querySelector("#load-observatory").textContent === t, it.obs_load);
    assert.equal(await coordinator.page.locator("#coordinator-pane h2").textContent(), it.obs_title);
    await coordinator.page.locator("#load-observatory").click();
    await coordinator.page.locator("#observatory-csv").waitFor({ timeout: 20_000 });

    const dims = DIMENSIONS.map((d) => (d === "month" ? "obs_by_month" : `obs_dim_${d}`));
    assert.deepEqual(await headings(coordinator.page), dims.map((k) => it[k]), "Italian table headings");
    const italian = await paneTexts(coordinator.page);
    for (const k of OBS) {
      if (words(en[k]).length > 3) assert.ok(!italian.includes(words(en[k])), `no English "${words(en[k])}" (${k}) on the Italian desk`);
    }
    for (const k of ["obs_intro", "obs_value", "obs_all_months", "obs_csv", "obs_download", "obs_chart", "obs_summary"]) {
      assert.ok(italian.includes(words(it[k])), `the Italian "${words(it[k])}" (${k}) is shown`);
    }

    await deskLanguage(coordinator, "en");
    assert.deepEqual(await headings(coordinator.page), dims.map((k) => en[k]), "English table headings after the switch");
    const english = await paneTexts(coordinator.page);
    for (const k of OBS) {
      if (words(it[k]).length > 3) assert.ok(!english.includes(words(it[k])), `no Italian "${words(it[k])}" (${k}) on the English desk`);
    }
  } finally {
    await coordinator.close();
    await talk.close();
    await relay.stop();
  }
});
